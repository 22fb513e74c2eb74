"""A worker container started by hand joins a registered environment of a controller."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from docker.types import Mount, Ulimit

from reuse_runtime import engine
from reuse_runtime.images.recipe import parse_image_field
from tests.container import tasks
from tests.container.harness import container_controller
from tests.helpers import ROOT, eventually, submit

pytestmark = [pytest.mark.container, pytest.mark.timeout(300)]


async def test_a_worker_started_by_hand_runs_tasks_and_outlives_idle_ttl(run_label: str) -> None:
    async with container_controller() as cc:
        spec = tasks.whoami.environment_spec()
        await cc.client.register(spec)
        built = await asyncio.to_thread(cc.backend.builder.ensure, parse_image_field(spec.image))
        key, value = run_label.split("=")
        # As a user would, with `podman run IMAGE --controller ... --environment joinable`.
        worker = await asyncio.to_thread(
            cc.backend.client.containers.run,
            built.tag,
            [
                "--controller",
                cc.server._replica_address(),
                "--environment",
                "joinable",
                "--concurrency",
                "4",
            ],
            detach=True,
            labels={key: value},
            environment={
                "REUSE_RUNTIME_TOKEN": cc.security.token,
                "PYTHONPATH": str(ROOT),
                "REUSE_RUNTIME_MIN_TTL_SECONDS": "0",
            },
            mounts=[Mount(str(ROOT), str(ROOT), type="bind", read_only=True)],
            working_dir=str(ROOT),
            ulimits=[
                Ulimit(name=u.name, soft=u.soft, hard=u.hard) for u in engine.container_ulimits()
            ],
        )
        try:
            external = await eventually(
                lambda: _external(cc), timeout=60, what="the worker to attach"
            )
            assert "external" in external.where
            # It runs the environment's tasks.
            first = await (await submit(cc.client, tasks.whoami))
            assert first.unwrap() == worker.id[:12]
            assert first.replica_id == external.replica_id
            # After idle_ttl (2 s) the environment is dormant, and the worker is still there.
            await eventually(lambda: _dormant(cc), timeout=30, what="the environment to idle")
            await asyncio.sleep(3)
            assert await _external(cc) is not None
            worker.reload()
            assert worker.status == "running"
            again = await (await submit(cc.client, tasks.whoami))
            assert again.unwrap() == worker.id[:12]
            assert await cc.count("joinable") == 0  # the controller started none of its own
        finally:
            await asyncio.to_thread(worker.remove, force=True)


async def _external(cc: Any) -> Any:
    status = await cc.client.status()
    for env in status.environments:
        for replica in env.replicas:
            if env.name == "joinable" and replica.external and replica.state == "ready":
                return replica
    return None


async def _dormant(cc: Any) -> bool:
    status = await cc.client.status()
    return any(env.name == "joinable" and env.dormant for env in status.environments)
