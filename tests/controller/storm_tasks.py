"""Tasks for the reliability tests, imported by the replicas."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time

import reuse_runtime as flyte

storm = flyte.TaskEnvironment(
    name="storm", reusable=flyte.ReusePolicy(replicas=(2, 4), concurrency=8, idle_ttl=60)
)


@storm.task
async def jitter(i: int, ms: int) -> int:
    await asyncio.sleep(ms / 1000)
    return i * 2


fragile = flyte.TaskEnvironment(
    name="fragile", reusable=flyte.ReusePolicy(replicas=(1, 2), concurrency=4, idle_ttl=60)
)


@fragile.task
async def crash(code: int) -> None:
    os._exit(code)


@fragile.task
async def pid_after(seconds: float) -> int:
    await asyncio.sleep(seconds)
    return os.getpid()


@fragile.task
async def stubborn(seconds: float) -> str:
    """Ignores CancelledError and keeps going."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.05)
    return "finished anyway"


@fragile.task
async def obedient(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "finished"


@fragile.task(timeout=1.0)
async def overrun(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "too late"


@fragile.task(timeout=1.0)
async def overrun_stubborn(seconds: float) -> str:
    return await stubborn.func(seconds)


@fragile.task
async def blocks_loop(seconds: float) -> str:
    time.sleep(seconds)  # noqa: ASYNC251 - the mistake the watchdog names
    return "unblocked"


@fragile.task
async def family(n: int, seconds: float) -> int:
    """A parent with children in flight, on the same environment."""
    return sum(await asyncio.gather(*(pid_child(i, seconds) for i in range(n))))


@fragile.task
async def pid_child(i: int, seconds: float) -> int:
    await asyncio.sleep(seconds)
    return i


leaky = flyte.TaskEnvironment(
    name="leaky",
    reusable=flyte.ReusePolicy(replicas=1, concurrency=1, idle_ttl=60, max_rss="400Mi"),
)
_hoard: list[bytes] = []


@leaky.task
async def leak(mb: int) -> tuple[int, int]:
    """Keeps `mb` more megabytes alive on every call: a leaky replica."""
    _hoard.append(os.urandom(mb * 2**20))
    return os.getpid(), len(_hoard)


counted = flyte.TaskEnvironment(
    name="counted",
    reusable=flyte.ReusePolicy(replicas=1, concurrency=1, idle_ttl=60, max_tasks=3),
)


@counted.task
async def whoami() -> int:
    return os.getpid()


counted_wide = flyte.TaskEnvironment(
    name="counted_wide",
    reusable=flyte.ReusePolicy(replicas=1, concurrency=8, idle_ttl=60, max_tasks=3),
)


@counted_wide.task
async def whoami_slowly() -> int:
    await asyncio.sleep(0.05)
    return os.getpid()


@fragile.task
async def freeze_self() -> None:
    """Stops its own replica with SIGSTOP: it stops reporting, for good."""
    os.kill(os.getpid(), signal.SIGSTOP)


@fragile.task
async def fork_and_return() -> tuple[str, int]:
    """Forks, and both copies of the replica return from the task."""
    child = os.fork()
    if child == 0:
        return "child", os.getpid()
    return "parent", child


def _note(log: str, text: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, f"{text} {os.getpid()} {time.time():.6f}\n".encode())
    finally:
        os.close(fd)


@storm.task
async def logged_child(i: int, ms: int, log: str) -> int:
    """Notes when it starts and when it finishes, so the test counts executions."""
    _note(log, f"start {i}")
    await asyncio.sleep(ms / 1000)
    _note(log, f"end {i}")
    return i * 2


@storm.task
async def replayed_parent(n: int, log: str) -> int:
    """A parent on the storm environment itself: its replica dies too."""
    _note(log, "parent -1")
    rng = random.Random(n)
    return sum(await asyncio.gather(*(logged_child(i, rng.randint(10, 50), log) for i in range(n))))


@storm.task
async def replayed_grandparent(n: int, log: str) -> int:
    """Calls a parent: when it runs again, so does the parent, and neither reruns children."""
    _note(log, "grandparent -1")
    return await replayed_parent(n, log)


@storm.task
async def parent_that_fails_once(n: int, log: str) -> int:
    """Raises once all its children have finished, the first time it runs: its retry
    (the task's own ``retries``) gets their results replayed."""
    _note(log, "parent -1")
    total = sum(await asyncio.gather(*(logged_child(i, 5, log) for i in range(n))))
    with open(log) as notes:  # noqa: ASYNC230 - a small file, read once
        if sum(line.startswith("parent ") for line in notes) == 1:
            raise RuntimeError("the first run fails after its children finished")
    return total


@fragile.task
async def busy_turn(n: int, ms: float) -> int:
    """Keeps its loop in one long turn that runs many tasks: all n steps start in it."""

    async def step(i: int) -> int:
        time.sleep(ms / 1000)  # noqa: ASYNC251 - each task holds the loop a little
        return i

    return sum(await asyncio.gather(*(step(i) for i in range(n))))
