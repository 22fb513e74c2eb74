"""Durable replay: a parent that runs again does not run again the children that finished."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import defaultdict
from pathlib import Path

import pytest

from reuse_runtime.context import TaskContext
from reuse_runtime.controller.replay import ReplayBudget, ReplayLog, result_bytes
from reuse_runtime.model import ErrorKind, TaskResult, TaskState
from reuse_runtime.sdk.replay import DIGEST_ABOVE, call_key
from tests.controller import storm_tasks as st
from tests.controller.test_reliability import _replica_pids
from tests.helpers import run_cli, running_controller, submit

# ---------------------------------------------------------------- the pure parts


def _context(task_id: str = "parent-1", key: str = "") -> TaskContext:
    async def reclaim() -> None:
        return None

    return TaskContext(
        task_id,
        "run",
        "p",
        lambda line: None,
        lambda: None,
        reclaim,
        None,
        call_key=key,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("size", [1, DIGEST_ABOVE + 1], ids=["small", "large"])
def test_call_keys_are_the_same_on_every_run_of_the_parent(size: int) -> None:
    # Small arguments go into the key as they are, large ones by their digest.
    first, second = _context(), _context()
    one, two = b"1" * size, b"1" * (size - 1) + b"2"
    calls = [("m:f", one), ("m:f", two), ("m:f", one), ("m:g", one)]
    keys = [call_key(first, site, args) for site, args in calls]
    assert len(set(keys)) == 4  # identical calls are told apart by their order
    # A second run that makes them in another order gets each call's own key.
    reordered = [calls[3], calls[1], calls[0], calls[2]]
    assert sorted(call_key(second, s, a) for s, a in reordered) == sorted(keys)
    assert call_key(second, "m:f", two) not in keys  # a second call of f(two) is a new one
    # Another parent, or the same call one level down, gets other keys.
    assert call_key(_context("parent-2"), "m:f", one) not in keys
    assert call_key(_context("x", key="abc"), "m:f", one) != call_key(_context("x"), "m:f", one)


def test_a_call_key_is_blake2b_over_the_parent_the_call_and_its_order() -> None:
    """The key's definition, pinned: a replay log filled by one build answers another's
    calls. The parent's part is hashed once per parent (TaskContext.key_prefix); the
    keys are what hashing it all at once gives."""
    import hashlib

    import xxhash

    def expected(parent: str, site: str, order: int, content: bytes) -> str:
        return hashlib.blake2b(
            f"{parent}\0{site}\0{order}\0".encode() + content, digest_size=16
        ).hexdigest()

    small, large = b"abc", b"z" * (DIGEST_ABOVE + 1)
    for ctx, parent in ((_context("parent-1"), "parent-1"), (_context("x", "k1"), "k1")):
        assert call_key(ctx, "m:f", small) == expected(parent, "m:f", 0, b"=" + small)
        assert call_key(ctx, "m:f", small) == expected(parent, "m:f", 1, b"=" + small)
        assert call_key(ctx, "m:g", small) == expected(parent, "m:g", 0, b"=" + small)
        digest = xxhash.xxh3_128_digest(large)
        assert call_key(ctx, "m:f", large) == expected(parent, "m:f", 0, b"#" + digest)


def test_the_log_replays_only_what_a_child_did_itself() -> None:
    log = ReplayLog()
    ok = TaskResult("c1", TaskState.SUCCEEDED, value=b"v")
    raised = TaskResult.failure("c2", ErrorKind.USER, "ValueError", "bad")
    cancelled = TaskResult.failure(
        "c3", ErrorKind.CANCELLED, "CancelledError", "x", state=TaskState.CANCELLED
    )
    nested = log.nested_log("k3", create=True)
    assert nested is not None
    nested.record("grandchild", ok)
    log.record("k1", ok)
    log.record("k2", raised)
    log.record("k3", cancelled)
    assert log.lookup("k1") is ok and log.lookup("k2") is raised
    assert log.lookup("k3") is None  # it runs again...
    again = log.nested_log("k3", create=False)
    assert again is nested and again.lookup("grandchild") is ok  # ...from its own children
    log.record("k3", ok)  # once it finishes, its own log is dropped
    assert log.nested_log("k3", create=False) is None


def test_the_logs_keep_results_within_their_byte_budget_and_give_it_back() -> None:
    one = TaskResult("c", TaskState.SUCCEEDED, value=b"x" * 1000)
    budget = ReplayBudget(3 * result_bytes(one))
    log = ReplayLog(budget=budget)
    nested = log.nested_log("n", create=True)
    assert nested is not None and nested.budget is budget
    nested.record("g1", one)
    for key in ("k1", "k2", "k3"):
        log.record(key, one)
    assert nested.lookup("g1") is one
    assert log.lookup("k1") is one and log.lookup("k2") is one
    assert log.lookup("k3") is None and budget.refused == 1  # it runs again if asked
    log.record("k1", one)  # a key recorded again replaces its result, not counted twice
    assert budget.used == 3 * result_bytes(one)
    del nested
    log.nested.clear()  # the nested parent finished: its bytes are free again
    log.record("k3", one)
    assert log.lookup("k3") is one
    del log  # the parent ended
    assert budget.used == 0


# ---------------------------------------------------------------- real processes


def _executions(
    log: Path,
) -> tuple[dict[int, list[tuple[str, str, float]]], list[tuple[int, float]]]:
    """Per child: its (start|end, pid, time) notes; and the parent's (pid, time) starts."""
    children: dict[int, list[tuple[str, str, float]]] = defaultdict(list)
    parents = []
    for line in log.read_text().splitlines():
        what, index, pid, at = line.split()
        if what == "grandparent":
            continue
        if what == "parent":
            parents.append((int(pid), float(at)))
        else:
            children[int(index)].append((what, pid, float(at)))
    return children, parents


def _rerun_after_finish(notes: list[tuple[str, str, float]], kills: list[tuple[int, float]]) -> int:
    """Executions that started after an earlier one had finished, not explained by the
    death of that one's replica before its result got out (2 s)."""
    unexplained = 0
    ends = [(pid, at) for what, pid, at in notes if what == "end"]
    starts = [at for what, _, at in notes if what == "start"]
    for pid, ended in ends:
        if not any(start > ended for start in starts):
            continue
        lost = any(int(pid) == killed and ended <= at <= ended + 2.0 for killed, at in kills)
        unexplained += not lost
    return unexplained


async def replay_storm(
    tmp_path: Path, n: int, *, every: float, limit: float, kills_max: int = 20
) -> None:
    log = tmp_path / "notes.log"
    kills: list[tuple[int, float]] = []
    async with running_controller(replica_loss_budget=3) as (_, client):
        pending = await submit(client, st.replayed_parent, n, str(log))
        rng = random.Random(11)
        started = time.monotonic()

        async def killer() -> None:
            # Bounded in count and time: a storm of `kills_max` kill -9 (every other one at
            # the parent; at most its victim limit, 5 x (budget + 1) = 20), then quiet, so
            # the parent can finish even on a machine too loaded to outrun the storm.
            for round_ in range(min(int(limit / every), 4 * kills_max)):
                if len(kills) >= kills_max:
                    return
                await asyncio.sleep(every)
                pids = _replica_pids(await client.status(), "storm")
                if not pids or not log.exists():
                    continue
                _, parents = _executions(log)
                parent = parents[-1][0] if parents else None
                # Every other kill goes to the parent's replica, so it surely runs again.
                victim = parent if round_ % 2 == 0 and parent in pids else rng.choice(pids)
                os.kill(victim, signal.SIGKILL)
                kills.append((victim, time.time()))

        storm = asyncio.create_task(killer())
        try:
            result = await asyncio.wait_for(pending, limit)
        finally:
            storm.cancel()
            await asyncio.gather(storm, return_exceptions=True)
        took = time.monotonic() - started
    children, parents = _executions(log)
    executions = sum(sum(what == "start" for what, _, _ in notes) for notes in children.values())
    rerun = sum(_rerun_after_finish(notes, kills) for notes in children.values())
    print(
        f"\nreplay storm: {n} children, {len(kills)} kill -9 ({len(parents) - 1} of the parent), "
        f"{executions} child executions ({executions / n:.3f} x), {rerun} finished children "
        f"run again by a parent's retry; {took:.1f} s"
    )
    assert result.ok, result.error
    assert result.unwrap() == sum(2 * i for i in range(n))
    assert len(parents) >= 2, "the parent never ran again"
    assert len(children) == n
    assert rerun == 0
    assert executions < 1.1 * n


@pytest.mark.slow  # 15-25 s of the default suite's budget: CI's slow suite runs it
@pytest.mark.timeout(240)
async def test_a_parent_killed_mid_fan_out_replays_its_finished_children(tmp_path: Path) -> None:
    await replay_storm(tmp_path, 2_000, every=0.8, limit=180.0)


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_replay_storm_20k(tmp_path: Path) -> None:
    await replay_storm(tmp_path, 20_000, every=2.0, limit=600.0)


async def test_a_parent_retried_after_raising_replays_its_finished_children(
    tmp_path: Path,
) -> None:
    log, n = tmp_path / "notes.log", 200
    async with running_controller() as (_, client):
        result = await asyncio.wait_for(
            await submit(client, st.parent_that_fails_once, n, str(log), retries=1), 120
        )
    children, parents = _executions(log)
    starts = [sum(what == "start" for what, _, _ in notes) for notes in children.values()]
    assert result.unwrap() == sum(2 * i for i in range(n))
    assert result.attempts == 2 and len(parents) == 2
    assert len(children) == n and set(starts) == {1}  # none ran again on the retry


async def test_a_full_replay_log_runs_the_rest_again_and_frees_its_bytes_with_its_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget for about 40 of 200 results: those are replayed on the parent's retry,
    the rest run again; the parent's end gives the budget back."""
    monkeypatch.setenv("REUSE_RUNTIME_REPLAY_BYTES", str(40 * 70))
    log, n = tmp_path / "notes.log", 200
    async with running_controller() as (server, client):
        budget = server.service.replay_budget  # type: ignore[attr-defined]
        result = await asyncio.wait_for(
            await submit(client, st.parent_that_fails_once, n, str(log), retries=1), 120
        )
        assert budget.used == 0
    children, _ = _executions(log)
    starts = [sum(what == "start" for what, _, _ in notes) for notes in children.values()]
    assert result.unwrap() == sum(2 * i for i in range(n))
    assert len(children) == n and set(starts) == {1, 2}
    assert 30 <= starts.count(1) <= 40
    assert budget.refused == 2 * starts.count(2)  # not kept the first time, nor the second


@pytest.mark.timeout(240)
async def test_a_grandparent_run_again_replays_its_grandchildren(tmp_path: Path) -> None:
    """The grandparent's replica dies: its child (a parent itself) is cancelled, and keeps
    the log of its own finished children for when the grandparent calls it again."""
    log, n = tmp_path / "notes.log", 2_000
    killed: list[tuple[int, float]] = []
    async with running_controller(replica_loss_budget=3) as (_, client):
        pending = await submit(client, st.replayed_grandparent, n, str(log))
        for _ in range(2):
            for _ in range(600):  # until the children are well under way (bounded: 60 s)
                if log.exists() and log.read_text().count("end ") >= 300 * (len(killed) + 1):
                    break
                await asyncio.sleep(0.1)
            grand = [int(x.split()[2]) for x in log.read_text().splitlines() if x[:5] == "grand"]
            os.kill(grand[-1], signal.SIGKILL)
            killed.append((grand[-1], time.time()))
        result = await asyncio.wait_for(pending, 180)
    text = log.read_text()
    children, parents = _executions(log)
    executions = sum(sum(what == "start" for what, _, _ in notes) for notes in children.values())
    rerun = sum(_rerun_after_finish(notes, killed) for notes in children.values())
    assert result.unwrap() == sum(2 * i for i in range(n))
    assert text.count("grandparent") == 3 and len(parents) >= 2
    assert rerun == 0
    assert executions < 1.1 * n, executions


def test_a_wrong_replay_budget_is_one_line_and_the_controller_does_not_start(
    tmp_path: Path,
) -> None:
    done = run_cli(tmp_path, "controller", "--port", "0", REUSE_RUNTIME_REPLAY_BYTES="lots")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "reuse-runtime controller: error: REUSE_RUNTIME_REPLAY_BYTES must be a size in bytes, "
        "like 67108864 or 64Mi (0 keeps nothing), got 'lots'"
    ]
