"""A replica that stops reporting is declared lost by a deadline, killed, and replaced."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time

import psutil
import pytest

from reuse_runtime.controller.liveness import (
    IDLE_HEARTBEATS,
    Listening,
    SilenceWatch,
    describe_silence,
    silence,
)
from reuse_runtime.errors import ReplicaLostError
from reuse_runtime.model import Submission
from tests.controller import storm_tasks as st
from tests.controller.test_reliability import _replica_pids
from tests.helpers import running_controller, submit, until_in_flight

# ---------------------------------------------------------------- the pure part


def test_silence_counts_from_the_later_of_the_last_message_and_listening() -> None:
    assert silence(heard_at=10.0, listening_since=0.0, now=16.0) == 6.0
    # The controller itself stalled until t=14: the replica is only 2 s late.
    assert silence(heard_at=10.0, listening_since=14.0, now=16.0) == 2.0
    assert "stopped reporting for 6 s" in describe_silence(6.2)


def test_listening_restarts_after_the_controller_loop_stalls() -> None:
    listening = Listening(stall=1.0)
    assert listening.beat(100.0) == 100.0  # the first beat starts the clock
    assert listening.beat(100.1) == 100.0
    assert listening.beat(100.2) == 100.0
    assert listening.beat(103.5) == 103.5  # a 3.3 s stall: it was not listening
    assert listening.beat(103.6) == 103.5


def test_the_watch_finds_a_replica_silent_past_the_deadline_and_only_then() -> None:
    watch: SilenceWatch[str] = SilenceWatch(granularity=0.1)
    watch.heard("a", 0.0, 5.0)
    watch.heard("b", 0.0, 5.0)
    for t in range(1, 10):  # "a" reports every second; "b" fell silent at 0
        watch.heard("a", float(t), 5.0)
        found = watch.silent(now=t + 0.05, listening_since=0.0)
        assert found == ([("b", 5.05)] if t == 5 else []), t
    assert len(watch) == 1, "b, found, is watched no more"


def test_the_watch_counts_the_last_message_even_between_its_queued_ones() -> None:
    watch: SilenceWatch[str] = SilenceWatch(granularity=1.0)
    watch.heard("a", 0.0, 5.0)
    watch.heard("a", 0.9, 5.0)  # due within the granularity of its entry: not queued
    assert watch.silent(now=5.5, listening_since=0.0) == []
    assert watch.silent(now=6.0, listening_since=0.0) == [("a", pytest.approx(5.1))]


def test_an_idle_replica_has_the_longer_deadline_it_was_heard_with() -> None:
    watch: SilenceWatch[str] = SilenceWatch()
    watch.heard("idle", 0.0, 9.0)
    watch.heard("busy", 0.0, 5.0)
    assert watch.silent(now=6.0, listening_since=0.0) == [("busy", 6.0)]
    assert watch.silent(now=9.5, listening_since=0.0) == [("idle", 9.5)]
    # Busy again (a shorter deadline): found by the shorter one, not the queued longer one.
    watch.heard("r", 10.0, 9.0)
    watch.heard("r", 10.5, 5.0)
    assert watch.silent(now=16.0, listening_since=0.0) == [("r", 5.5)]


def test_an_idle_replica_given_a_task_is_held_to_the_busy_deadline_from_then() -> None:
    watch: SilenceWatch[str] = SilenceWatch()
    watch.heard("r", 0.0, 9.0)  # idle
    watch.tighten("r", 4.0, 5.0)  # a task sent at 4 that blocks its loop at once
    watch.tighten("r", 6.0, 5.0)  # already held to it: counted from 4 still
    assert watch.silent(now=8.5, listening_since=0.0) == []
    assert watch.silent(now=9.2, listening_since=0.0) == [("r", pytest.approx(5.2))]
    watch.tighten("gone", 1.0, 5.0)  # not watched: nothing to tighten
    assert len(watch) == 0


def test_the_watch_blames_no_replica_for_a_stall_of_the_controller() -> None:
    watch: SilenceWatch[str] = SilenceWatch()
    watch.heard("a", 0.0, 5.0)
    # The controller's loop came back at 8: "a" has had 2 s, not 10.
    assert watch.silent(now=10.0, listening_since=8.0) == []
    assert watch.silent(now=13.5, listening_since=8.0) == [("a", 5.5)]


def test_a_forgotten_replica_is_not_found_until_heard_from_again() -> None:
    watch: SilenceWatch[str] = SilenceWatch()
    watch.heard("a", 0.0, 5.0)
    watch.forget("a")
    assert watch.silent(now=100.0, listening_since=0.0) == []
    watch.heard("a", 100.0, 5.0)
    assert watch.silent(now=106.0, listening_since=0.0) == [("a", 6.0)]


# ---------------------------------------------------------------- real processes


async def test_an_idle_replica_reports_less_often_and_is_not_lost_for_it() -> None:
    """Idle, a replica reports every IDLE_HEARTBEATS heartbeats (5 s here), past the 2 s
    deadline of a busy one: the controller allows it, and it serves the next task."""
    assert IDLE_HEARTBEATS * 0.5 == 5.0
    async with running_controller(report_deadline=2.0, heartbeat=0.5) as (_, client):
        first = (await (await submit(client, st.pid_after, 0.0))).unwrap()
        await asyncio.sleep(7.0)  # idle: more than one idle heartbeat
        again = (await (await submit(client, st.pid_after, 0.0))).unwrap()
        status = await client.status()
    assert again == first
    events = [e for env in status.environments for e in env.events]
    assert not [e for e in events if e.kind in ("lost", "killed")], events


async def test_a_stopped_replica_is_killed_and_its_tasks_run_elsewhere() -> None:
    async with running_controller(report_deadline=3.0) as (_, client):
        first = (await (await submit(client, st.pid_after, 0.0))).unwrap()
        pending = [await submit(client, st.pid_after, 1.0) for _ in range(4)]
        await until_in_flight(client, 4)
        os.kill(first, signal.SIGSTOP)
        try:
            results = await asyncio.wait_for(asyncio.gather(*pending), 60)
            assert all(r.ok for r in results), [r.error for r in results]
            assert first not in {r.unwrap() for r in results}
            # It was killed (SIGKILL ends a stopped process), not left frozen.
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(first).wait(10)
            assert not psutil.pid_exists(first)
            after = (await (await submit(client, st.pid_after, 0.0))).unwrap()
            assert after != first
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(first, signal.SIGKILL)


async def test_a_task_that_freezes_its_replica_is_quarantined_naming_the_cause() -> None:
    async with running_controller(report_deadline=2.0, replica_loss_budget=1) as (_, client):
        await (await submit(client, st.pid_after, 0.0))  # warm
        result = await asyncio.wait_for(await submit(client, st.freeze_self), 60)
        assert (await (await submit(client, st.pid_after, 0.0))).ok  # the pool lives on
    with pytest.raises(ReplicaLostError) as raised:
        result.unwrap("freeze_self")
    message = str(raised.value)
    assert "on 2 replicas that died" in message, message
    assert message.count("was replaced because it stopped reporting for") == 2, message


async def test_a_task_that_forks_and_returns_in_the_child_wedges_nothing() -> None:
    async with running_controller(report_deadline=3.0) as (_, client):
        await (await submit(client, st.pid_after, 0.0))  # warm
        forked = await asyncio.wait_for(await submit(client, st.fork_and_return), 30)
        which, child = forked.unwrap()
        assert which == "parent"
        later = [await submit(client, st.pid_after, 0.05) for _ in range(8)]
        results = await asyncio.wait_for(asyncio.gather(*later), 60)
        assert all(r.ok for r in results), [r.error for r in results]
        # The child exits by itself when its task returns (or goes with its group).
        for _ in range(100):
            if _gone(child):
                break
            await asyncio.sleep(0.1)
        assert _gone(child), psutil.Process(child).status()


async def test_a_loop_busy_with_many_tasks_is_not_declared_lost() -> None:
    """One turn of the loop that runs 2,500 tasks for ~5 s (a big gather starts its
    children in one turn) outlasts the 2 s deadline: the watchdog sees the loop move
    from task to task and vouches for it, so the replica is busy, not lost."""
    async with running_controller(report_deadline=2.0, replica_loss_budget=0) as (_, client):
        await (await submit(client, st.pid_after, 0.0))  # warm
        result = await asyncio.wait_for(await submit(client, st.busy_turn, 2_500, 2.0), 120)
    assert result.unwrap() == sum(range(2_500))
    assert result.attempts == 1


async def test_a_task_that_holds_the_loop_past_the_deadline_is_named_in_the_cause() -> None:
    async with running_controller(report_deadline=2.0, replica_loss_budget=0) as (_, client):
        await (await submit(client, st.pid_after, 0.0))  # warm
        result = await asyncio.wait_for(await submit(client, st.blocks_loop, 6.0), 60)
    with pytest.raises(ReplicaLostError) as raised:
        result.unwrap("blocks_loop")
    message = str(raised.value)
    assert "its event loop was blocked by task blocks_loop (" in message, message


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# ---------------------------------------------------------------- the SIGSTOP storm


async def _run(
    client: object, key: str, total: int, *, stop_every: float | None, stopped: list[int]
) -> tuple:
    """Submit `total` 5-20 ms tasks at once; SIGSTOP a random replica every `stop_every` s
    while at least a twentieth of them are left. (At the tail, one task can land on every
    replica stopped, and its fourth loss fails it as a budget of 3 says: that is the
    quarantine test's case, not this one's.)"""
    rng = random.Random(3)
    submissions = [
        Submission(key, st.jitter.task_spec((i, rng.randint(5, 20)), {}, run_id="freeze"))
        for i in range(total)
    ]

    async def stopper() -> None:
        for _ in range(200):  # bounded in count (and by the run's limit)
            await asyncio.sleep(stop_every or 0)
            if sum(1 for f in futures if not f.done()) < total // 20:
                return
            pids = [p for p in _replica_pids(await client.status(), "storm") if p not in stopped]  # type: ignore[attr-defined]
            if pids:
                victim = rng.choice(pids)
                os.kill(victim, signal.SIGSTOP)
                stopped.append(victim)

    started = time.monotonic()
    futures = [client.submit(s) for s in submissions]  # type: ignore[attr-defined]
    storm = asyncio.create_task(stopper()) if stop_every else None
    try:
        results = await asyncio.wait_for(asyncio.gather(*futures), 600)
    finally:
        if storm is not None:
            storm.cancel()
            await asyncio.gather(storm, return_exceptions=True)
    took = time.monotonic() - started
    return results, took


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_sigstop_storm_20k_completes_every_task() -> None:
    total = 20_000
    async with running_controller(replica_loss_budget=3) as (_, client):
        key = await client.register(st.jitter.environment_spec())
        _, no_fault = await _run(client, key, total, stop_every=None, stopped=[])
    async with running_controller(replica_loss_budget=3) as (_, client):
        key = await client.register(st.jitter.environment_spec())
        stopped: list[int] = []
        try:
            results, took = await _run(client, key, total, stop_every=3.0, stopped=stopped)
            for _ in range(150):  # the last ones stopped get their deadline too
                if all(_gone(p) for p in stopped):
                    break
                await asyncio.sleep(0.1)
        finally:
            frozen_left = [p for p in stopped if not _gone(p)]
            for pid in frozen_left:  # only what this test stopped, by pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    failed = [r for r in results if not r.ok]
    print(
        f"\nSIGSTOP storm: {total} tasks, {len(stopped)} replicas stopped, {len(failed)} failed, "
        f"0 lost; {took:.1f} s against {no_fault:.1f} s without faults "
        f"(+{(took - no_fault) / max(1, len(stopped)):.1f} s per stop)"
    )
    assert len(stopped) >= 3
    assert not failed, failed[:3]
    assert [r.unwrap() for r in results] == [i * 2 for i in range(total)]
    assert took <= no_fault + 12.0 * len(stopped) + 30.0
    assert not frozen_left  # the controller killed every stopped replica
