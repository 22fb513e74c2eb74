"""Tasks for the owned-runs tests: a parent of children that count themselves."""

from __future__ import annotations

import asyncio
import os

import reuse_runtime as flyte

owned = flyte.TaskEnvironment(
    name="owned", reusable=flyte.ReusePolicy(replicas=1, concurrency=2, idle_ttl=60)
)


@owned.task
async def child(i: int, seconds: float, counts: str) -> int:
    """Sleeps, then counts itself (one line per time it finished) in ``counts/i``."""
    await asyncio.sleep(seconds)
    fd = os.open(os.path.join(counts, str(i)), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, b"ran\n")
    finally:
        os.close(fd)
    print(f"child {i} done", flush=True)
    return i * i


@owned.task
async def parent(n: int, seconds: float, counts: str) -> int:
    print("parent starts", flush=True)
    return sum(await asyncio.gather(*(child(i, seconds, counts) for i in range(n))))


@owned.task
async def fails(why: str) -> int:
    raise ValueError(f"it fails: {why}")


@owned.task(retries=1)
async def flaky(counts: str) -> str:
    """Fails its first attempt (it counts attempts in ``counts/flaky``), then succeeds."""
    path = os.path.join(counts, "flaky")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, b"ran\n")
    finally:
        os.close(fd)
    if os.stat(path).st_size == len(b"ran\n"):
        raise ValueError("the first attempt fails")
    return "second time lucky"
