"""Containers killed with real signals through the engine (what `podman kill` does)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from reuse_runtime.backends.container import CONTROLLER_LABEL, ENVIRONMENT_LABEL
from reuse_runtime.errors import ReplicaLostError
from tests.container import tasks
from tests.container.harness import ContainerController, container_controller
from tests.controller import storm_tasks as st
from tests.controller.test_reliability import kill_storm
from tests.helpers import eventually, submit, until_in_flight

pytestmark = [pytest.mark.container, pytest.mark.timeout(420)]


async def test_kill_storm_in_containers_loses_nothing() -> None:
    """2,000 tasks of 10-50 ms; a random replica's container is killed every 2 s."""
    current: list[ContainerController] = []

    @contextlib.asynccontextmanager
    async def controller(**config: Any) -> AsyncIterator[tuple[object, object]]:
        async with container_controller(**config) as cc:
            current.append(cc)
            # Warm up first (the image build, two replicas), so the kills land on the storm.
            warm = [await submit(cc.client, st.jitter, i, 10) for i in range(16)]
            assert all(r.ok for r in await asyncio.gather(*warm))
            yield cc.server, cc.client

    async def kill_container(client: object, rng: random.Random) -> bool:
        cc = current[0]
        running = await asyncio.to_thread(
            cc.backend.client.containers.list,
            filters={
                "label": [
                    f"{CONTROLLER_LABEL}={cc.backend.controller_id}",
                    f"{ENVIRONMENT_LABEL}=storm",
                ]
            },
        )
        if not running:
            return False
        with contextlib.suppress(Exception):  # it may have just gone
            await asyncio.to_thread(rng.choice(running).kill)  # SIGKILL, as `podman kill`
        return True

    # Paced over 20 s, so about ten kills land while tasks run.
    await kill_storm(
        2000, pace=1.0, controller=controller, kill_replica=kill_container, limit=360.0
    )


async def test_killed_container_retries_elsewhere_and_then_names_the_cause() -> None:
    async with container_controller() as cc:
        # A task on a container that is killed runs again on another one.
        assert (await (await submit(cc.client, tasks.slow, 0.0))).ok
        (first,) = await asyncio.to_thread(cc.containers, "draining")
        running = await submit(cc.client, tasks.slow, 2.0)
        await until_in_flight(cc.client)
        await asyncio.to_thread(first.kill)
        result = await running
        assert result.ok and result.unwrap() == "finished"
        assert result.attempts == 2
        # Past the loss budget, the caller gets a ReplicaLostError naming each cause.
        budget = cc.server.config.replica_loss_budget
        doomed = await submit(cc.client, tasks.slow, 30.0)
        for _ in range(budget + 1):
            victim = await eventually(
                lambda: _running_the_task(cc), timeout=60, what="the container running it"
            )
            await asyncio.to_thread(cc.backend.client.api.kill, victim)
            await eventually(lambda v=victim: _gone(cc, v), timeout=30, what="the kill")
        lost = await doomed
        with pytest.raises(ReplicaLostError) as caught:
            lost.unwrap("slow")
        assert "killed by SIGKILL" in str(caught.value), caught.value
        assert "quarantined" in str(caught.value)


async def _running_the_task(cc: ContainerController) -> str | None:
    """The id of the container whose replica is running a task, as the controller sees it."""
    status = await cc.client.status()
    for env in status.environments:
        for replica in env.replicas:
            if env.name == "draining" and replica.assigned and replica.state == "ready":
                short = replica.where.split()[1]  # "container 1234abcd5678 (name)"
                for container in await asyncio.to_thread(cc.containers, "draining"):
                    if container.id.startswith(short):
                        return str(container.id)
    return None


def _gone(cc: ContainerController, victim: str) -> bool:
    return all(c.id != victim for c in cc.containers("draining"))
