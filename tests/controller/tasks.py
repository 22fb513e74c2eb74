"""Environments and tasks for the controller tests, imported by the replicas."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import reuse_runtime as flyte

elastic = flyte.TaskEnvironment(
    name="elastic",
    reusable=flyte.ReusePolicy(replicas=(1, 3), concurrency=2, scaledown_ttl=2, idle_ttl=5),
)


@elastic.task
async def interval(seconds: float) -> tuple[float, float, int]:
    """Sleep; return (start, end, pid) so the test can count overlaps across replicas."""
    start = time.time()
    await asyncio.sleep(seconds)
    return start, time.time(), os.getpid()


single = flyte.TaskEnvironment(
    name="single", reusable=flyte.ReusePolicy(replicas=1, concurrency=1, idle_ttl=60)
)


@single.task
async def child(x: int) -> int:
    return x + 1


@single.task
async def parent(x: int) -> int:
    # On one replica with one slot, the parent must not starve its child.
    return await child(x) * 10


@single.task
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "ok"


warm = flyte.TaskEnvironment(
    name="warm", reusable=flyte.ReusePolicy(replicas=2, concurrency=4, idle_ttl=60)
)

_model: dict[str, float] | None = None
_loads = 0
_lock = asyncio.Lock()


@warm.task
async def predict(x: float) -> tuple[float, int, int]:
    """The seeds' load-the-model-once pattern: returns (prediction, pid, loads in this pid)."""
    global _model, _loads
    async with _lock:
        if _model is None:
            _loads += 1
            await asyncio.sleep(0.1)  # an expensive model load
            _model = {"w": 2.0}
    await asyncio.sleep(0.01)
    return x * _model["w"], os.getpid(), _loads


def broken_image_environment(fake_site: str) -> flyte.TaskEnvironment:
    """An environment whose replicas cannot start: its PYTHONPATH shadows the runtime."""
    broken = flyte.TaskEnvironment(
        name="broken", reusable=flyte.ReusePolicy(replicas=1), env_vars={"PYTHONPATH": fake_site}
    )
    broken.task(child)
    return broken


joinable = flyte.TaskEnvironment(
    name="joinable",
    reusable=flyte.ReusePolicy(replicas=(0, 1), concurrency=2, scaledown_ttl=1, idle_ttl=1),
)


@joinable.task
async def where() -> int:
    return os.getpid()


@single.task
async def sized(payload: bytes) -> int:
    await asyncio.sleep(0.001)
    return len(payload)


queued = flyte.TaskEnvironment(
    name="queued", reusable=flyte.ReusePolicy(replicas=1, concurrency=10, idle_ttl=60)
)


@queued.task
async def pause(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


# A pool whose first replica is ready while the others still start (test_prefetch.py):
# each replica's on_start marks it in $REUSE_TEST_MARKS, and all but the first to get
# there load a model for a second first.
def start_all_but_the_first_late() -> None:
    marks = Path(os.environ["REUSE_TEST_MARKS"])
    try:
        (marks / "first").touch(exist_ok=False)
    except FileExistsError:
        time.sleep(1.0)  # a model load
    (marks / f"started-{os.getpid()}").touch()


staggered = flyte.TaskEnvironment(
    name="staggered",
    reusable=flyte.ReusePolicy(replicas=(1, 3), concurrency=2, scaledown_ttl=60, idle_ttl=60),
    on_start=start_all_but_the_first_late,
)


@staggered.task
async def hold_until_started(replicas: int) -> int:
    """Runs until ``replicas`` replicas have started (at most a minute), and a second
    more for their ready reports to reach the controller; returns its pid."""
    marks = os.environ["REUSE_TEST_MARKS"]
    for _ in range(1200):
        if sum(name.startswith("started-") for name in os.listdir(marks)) >= replicas:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    return os.getpid()
