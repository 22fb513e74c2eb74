"""Pools end to end: a real controller on 127.0.0.1 and real replica subprocesses."""

from __future__ import annotations

import asyncio
import time

import pytest

from reuse_runtime.errors import BacklogFullError
from reuse_runtime.model import ErrorKind
from tests.controller import tasks
from tests.helpers import live_replicas, running_controller, submit


@pytest.mark.slow  # 15-25 s of the default suite's budget: CI's slow suite runs it
async def test_pool_grows_to_max_falls_to_min_then_sleeps_and_wakes() -> None:
    async with running_controller() as (_, client):
        counts: list[tuple[float, int]] = []
        stop = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                status = await client.status()
                counts.append((time.monotonic(), live_replicas(status, "elastic")))
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch())
        burst = [await submit(client, tasks.interval, 1.0) for _ in range(12)]
        results = await asyncio.gather(*burst)
        burst_end = time.monotonic()
        assert all(r.ok for r in results)

        async def until(predicate, limit: float) -> float:  # type: ignore[no-untyped-def]
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline:
                if counts and predicate(counts[-1][1]):
                    return counts[-1][0] - burst_end
                await asyncio.sleep(0.05)
            raise AssertionError(f"timed out; counts so far: {[c for _, c in counts[-20:]]}")

        to_one = await until(lambda c: c == 1, 6)
        to_zero = await until(lambda c: c == 0, 9)
        again = await (await submit(client, tasks.interval, 0.1))
        stop.set()
        await watcher

    assert max(c for _, c in counts) == 3
    assert 1.5 <= to_one <= 3.5, to_one
    assert 4.5 <= to_zero <= 6.5, to_zero
    assert again.ok


async def test_never_more_than_max_replicas_times_concurrency_at_once() -> None:
    async with running_controller() as (_, client):
        pending = [await submit(client, tasks.interval, 0.3) for _ in range(20)]
        results = [(await p).unwrap() for p in pending]
    events = sorted([(start, 1) for start, _, _ in results] + [(end, -1) for _, end, _ in results])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak <= 6
    assert peak >= 4  # the pool did scale out
    assert len({pid for _, _, pid in results}) <= 3


async def test_parent_awaiting_child_on_one_slot_does_not_deadlock() -> None:
    async with running_controller() as (_, client):
        result = await asyncio.wait_for(await submit(client, tasks.parent, 4), 30)
    assert result.unwrap() == 50


async def test_model_loads_at_most_once_per_replica() -> None:
    async with running_controller() as (_, client):
        pending = [await submit(client, tasks.predict, float(i)) for i in range(40)]
        results = [(await p).unwrap() for p in pending]
    assert [value for value, _, _ in results] == [2.0 * i for i in range(40)]
    loads_by_pid: dict[int, int] = {}
    for _, pid, loads in results:
        loads_by_pid[pid] = max(loads_by_pid.get(pid, 0), loads)
    assert 1 <= len(loads_by_pid) <= 2
    assert set(loads_by_pid.values()) == {1}


async def test_full_backlog_rejects_clearly_and_keeps_what_it_accepted() -> None:
    async with running_controller(max_backlog=5) as (_, client):
        pending = [await submit(client, tasks.slow, 0.2) for _ in range(20)]
        results = await asyncio.gather(*pending)
    rejected = [r for r in results if r.error is not None and r.error.kind is ErrorKind.REJECTED]
    accepted = [r for r in results if r not in rejected]
    assert rejected, "nothing was rejected"
    assert len(accepted) >= 5
    assert all(r.ok for r in accepted)
    assert "backlog limit" in rejected[0].error.message
    with pytest.raises(BacklogFullError, match="--max-backlog"):
        rejected[0].unwrap("slow")
