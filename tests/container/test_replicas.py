"""Replicas as real containers under Podman: the same promises as local replicas."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from reuse_runtime.backends.container import REPLICA_LABEL
from reuse_runtime.errors import OOMError
from reuse_runtime.model import ErrorKind
from tests.container import tasks
from tests.container.harness import container_controller
from tests.helpers import eventually, submit, until_in_flight
from tests.test_metrics import scrape, value

pytestmark = [pytest.mark.container, pytest.mark.timeout(300)]


async def test_lazy_model_loads_once_per_container_across_20_calls() -> None:
    async with container_controller() as cc:
        results = []
        for i in range(20):
            results.append(await (await submit(cc.client, tasks.predict, i)))
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
        values = [r.unwrap() for r in results]
        # Each container loaded the model once, and every call after that found it warm.
        loads = {host: max(n for h, n, _ in values if h == host) for host, _, _ in values}
        assert set(loads.values()) == {1}, loads
        assert [v[2] for v in values] == [i + 1000 for i in range(20)]
        # The hostnames are the containers' own: the replicas ran in the engine's containers.
        engine_ids = {c.id[:12] for c in await asyncio.to_thread(cc.containers, "lazy")}
        assert set(loads) <= engine_ids, (loads, engine_ids)


async def test_ttl_timeline_grows_to_three_falls_to_one_then_zero_and_wakes() -> None:
    async with container_controller() as cc:
        counts: list[tuple[float, int]] = []
        stop = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                counts.append((time.monotonic(), await cc.count("celastic")))
                await asyncio.sleep(0.2)

        watcher = asyncio.create_task(watch())
        try:
            burst = [await submit(cc.client, tasks.interval, 3.0) for _ in range(6)]
            results = await asyncio.gather(*burst)
            assert all(r.ok for r in results)
            assert len({r.unwrap() for r in results}) == 3  # three containers served them
            await eventually(lambda: counts[-1][1] == 1, timeout=20, what="one container")
            await eventually(lambda: counts[-1][1] == 0, timeout=20, what="no container")
            again = await (await submit(cc.client, tasks.interval, 0.1))
            assert again.ok
            await eventually(lambda: counts[-1][1] >= 1, timeout=20, what="a container again")
        finally:
            stop.set()
            await watcher
        assert max(c for _, c in counts) == 3


async def test_out_of_memory_says_so_with_the_limit_and_the_pool_goes_on() -> None:
    async with container_controller(metrics_port=0) as cc:
        result = await (await submit(cc.client, tasks.hog, 400))
        assert result.error is not None and result.error.kind is ErrorKind.REPLICA_LOST
        with pytest.raises(OOMError) as caught:
            result.unwrap("hog")
        message = str(caught.value)
        assert "out of memory" in message and "200Mi" in message, message
        status = await cc.client.status()
        (env,) = [e for e in status.environments if e.name == "hungry"]
        assert "out of memory" in env.last_error and "200Mi" in env.last_error
        # Prometheus sees the loss with its cause (issue 13).
        _, samples = await scrape(cc.server.metrics_url)
        assert value(
            samples, "reuse_runtime_replica_losses_total", environment="hungry", cause="oom"
        )
        # The pool goes on serving.
        assert (await (await submit(cc.client, tasks.small, 1))).unwrap() == 2


async def test_stopped_container_finishes_its_task_and_exits_0() -> None:
    async with container_controller() as cc:
        assert (await (await submit(cc.client, tasks.slow, 0.0))).ok
        (container,) = await asyncio.to_thread(cc.containers, "draining")
        running = await submit(cc.client, tasks.slow, 3.0)
        await until_in_flight(cc.client)
        events = cc.backend.client.events(
            decode=True, filters={"label": f"{REPLICA_LABEL}={container.labels[REPLICA_LABEL]}"}
        )
        try:
            started = time.monotonic()
            # As a user would: `podman stop` with the grace the backend gave the container.
            await asyncio.to_thread(container.stop)
            die = await asyncio.wait_for(asyncio.to_thread(_first_die, events), 30)
        finally:
            events.close()
        result = await running
        assert result.ok and result.unwrap() == "finished"
        assert die["Actor"]["Attributes"]["exitCode"] == "0", die
        assert time.monotonic() - started < 10  # drained, not killed at a timeout


def _first_die(events: Any) -> dict[str, Any]:
    for event in events:
        if event.get("Action") == "die" or event.get("status") == "die":
            return dict(event)
    raise AssertionError("the event stream ended before the container died")


async def test_env_vars_limits_store_and_no_token_on_the_command_line() -> None:
    async with container_controller() as cc:
        seen = (await (await submit(cc.client, tasks.environment))).unwrap()
        assert seen["env"] == "yes"
        assert seen["token_on_command_line"] == "False"
        assert seen["memory_limit"] == str(256 * 2**20)
        assert seen["cpu_quota"] in ("50000", "50000 100000"), seen  # 500m
        assert seen["cwd"] == str(Path.cwd())
        path = (await (await submit(cc.client, tasks.write_store, "hello.txt", "hi"))).unwrap()
        assert await asyncio.to_thread(Path(path).read_text) == "hi"  # the same path in and out


async def test_host_network_runs_tasks_too() -> None:
    async with container_controller(network="host") as cc:
        assert cc.server.address.startswith("127.0.0.1:")  # everything stays on loopback
        results = await asyncio.gather(
            *[await submit(cc.client, tasks.predict, i) for i in range(4)]
        )
        assert [r.unwrap()[2] for r in results] == [1000, 1001, 1002, 1003]
        assert Counter(r.unwrap()[0] for r in results)
