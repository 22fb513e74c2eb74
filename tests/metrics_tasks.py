"""Environments and tasks for the metrics tests, imported by the replicas."""

from __future__ import annotations

import asyncio
import os

import reuse_runtime as flyte

metered = flyte.TaskEnvironment(
    name="metered", reusable=flyte.ReusePolicy(replicas=2, concurrency=20, idle_ttl=60)
)


@metered.task
async def ok(i: int) -> int:
    return i


@metered.task
async def boom(i: int) -> int:
    raise ValueError(f"boom {i}")


@metered.task
def flaky(i: int, marker_dir: str) -> int:
    """Fails on its first attempt and succeeds on the second, on whichever replica."""
    marker = os.path.join(marker_dir, str(i))
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError(f"first attempt of {i}")
    return i


recycled = flyte.TaskEnvironment(
    name="recycled",
    reusable=flyte.ReusePolicy(replicas=1, concurrency=1, max_tasks=3, idle_ttl=60),
)


@recycled.task
async def pid() -> int:
    return os.getpid()


@recycled.task
async def sleeper(seconds: float) -> int:
    await asyncio.sleep(seconds)
    return os.getpid()
