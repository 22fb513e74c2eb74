"""How many tasks beyond its slots a replica is sent (its prefetch), end to end.

A real controller on 127.0.0.1 and a real replica of 10 slots; the tasks at the
replica (``assigned`` in the controller's status: running plus queued there) are
read while a burst of half-second tasks runs.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from reuse_runtime.controller.dispatch import PREFETCH_DIVISOR
from reuse_runtime.model import Submission
from tests.controller import tasks
from tests.helpers import running_controller, submit

SLOTS = 10


async def _peak_at_the_replica(client: object, seconds: float, count: int = 30) -> int:
    pending = [await submit(client, tasks.pause, seconds) for _ in range(count)]
    peak = 0
    while not all(p.done() for p in pending):  # type: ignore[attr-defined]
        status = await client.status()  # type: ignore[attr-defined]
        at_replica = sum(
            r.assigned for e in status.environments if e.name == "queued" for r in e.replicas
        )
        peak = max(peak, at_replica)
        await asyncio.sleep(0.02)
    assert all(p.result().ok for p in pending)  # type: ignore[attr-defined]
    return peak


async def test_a_replica_is_sent_its_share_beyond_its_slots_for_short_or_long_tasks() -> None:
    async with running_controller() as (_, client):
        # Tasks that take no time: the environment's tasks are short.
        noops = [await submit(client, tasks.pause, 0) for _ in range(20)]
        assert all(r.ok for r in await asyncio.gather(*noops))
        short = await _peak_at_the_replica(client, 0.5)
        # The half-second tasks that just ran made them long: the same share.
        long = await _peak_at_the_replica(client, 0.5)
    assert short == long == SLOTS + SLOTS // PREFETCH_DIVISOR


async def test_long_tasks_are_queued_at_a_replica_only_while_more_wait_than_it_holds() -> None:
    async with running_controller() as (_, client):
        noops = [await submit(client, tasks.pause, 0) for _ in range(20)]
        assert all(r.ok for r in await asyncio.gather(*noops))
        # 15 tasks for 10 slots. Short tasks as far as the controller knows: the 5 left
        # over are queued at the replica.
        short = await _peak_at_the_replica(client, 0.5, count=SLOTS + SLOTS // 2)
        # Long ones now: the 5 left over wait at the controller for a free slot,
        # wherever it frees, instead of in a replica's queue.
        long = await _peak_at_the_replica(client, 0.5, count=SLOTS + SLOTS // 2)
    assert short == SLOTS + SLOTS // 2
    assert long == SLOTS


async def test_a_burst_spreads_over_the_replicas_still_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Up to 3 replicas of 2 slots; the first is ready a second before the others. The
    # burst's 6 tasks are what the pool holds at full size: none is queued at the first
    # replica ready (beyond its 2 slots) while the others start; each replica runs 2.
    monkeypatch.setenv("REUSE_TEST_MARKS", str(tmp_path))
    async with running_controller() as (_, client):
        pending = [await submit(client, tasks.hold_until_started, 3) for _ in range(6)]
        peak = 0
        deadline = asyncio.get_running_loop().time() + 90  # the tasks wait a minute at most
        while not all(p.done() for p in pending):  # type: ignore[attr-defined]
            assert asyncio.get_running_loop().time() < deadline, "the burst never finished"
            status = await client.status()  # type: ignore[attr-defined]
            for env in status.environments:
                if env.name == "staggered":
                    peak = max([peak, *(r.assigned for r in env.replicas)])
            await asyncio.sleep(0.02)
        pids = Counter(p.result().unwrap() for p in pending)  # type: ignore[attr-defined]
    assert peak == 2
    assert sorted(pids.values()) == [2, 2, 2], pids


async def test_a_task_with_a_timeout_is_never_queued_behind_busy_slots() -> None:
    # The controller's backstop for a task that ignores its timeout counts from the
    # dispatch; the replica's timeout, from the task's start. One queued behind busy
    # slots would wait there a whole task, and be taken for one that ignored it (its
    # replica killed): it waits at the controller for a free slot instead.
    async with running_controller(cancel_grace=1.0) as (_, client):
        key = await client.register(tasks.pause.environment_spec())  # type: ignore[attr-defined]
        pending = []
        for _ in range(3 * SLOTS):
            spec = replace(tasks.pause.task_spec((2.0,), {}, run_id="test-run"), timeout=2.5)
            pending.append(client.submit(Submission(key, spec)))  # type: ignore[attr-defined]
        results = await asyncio.gather(*pending)
        status = await client.status()  # type: ignore[attr-defined]
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    (env,) = [e for e in status.environments if e.name == "queued"]
    assert env.failed == 0 and not env.last_error
    assert [e.kind for e in env.events if e.kind in ("lost", "recycled", "stopped")] == []
