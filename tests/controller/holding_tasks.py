"""Tasks for the retried-task placement tests: parents that hold every replica while
they wait, and children that count their executions."""

from __future__ import annotations

import asyncio
import os

import reuse_runtime as flyte


def _holding(replicas: int, concurrency: int) -> flyte.TaskEnvironment:
    return flyte.TaskEnvironment(
        name=f"holding{replicas}",
        reusable=flyte.ReusePolicy(replicas=replicas, concurrency=concurrency, idle_ttl=60),
    )


holding1 = _holding(1, concurrency=4)
# One slot each: two parents submitted together land on the two replicas, one each.
holding2 = _holding(2, concurrency=1)


async def _leaf(i: int, seconds: float, log: str) -> int:
    """Appends one line per execution (its index and its process), then sleeps."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, f"{i} {os.getpid()}\n".encode())
    finally:
        os.close(fd)
    await asyncio.sleep(seconds)
    return i


@holding1.task
async def leaf1(i: int, seconds: float, log: str) -> int:
    return await _leaf(i, seconds, log)


@holding1.task
async def gather1(n: int, seconds: float, log: str) -> list[int]:
    return list(await asyncio.gather(*(leaf1(i, seconds, log) for i in range(n))))


@holding2.task
async def leaf2(i: int, seconds: float, log: str) -> int:
    return await _leaf(i, seconds, log)


@holding2.task
async def gather2(n: int, seconds: float, log: str) -> list[int]:
    # Holds its slot for a moment before it lends it to its children: a second parent
    # submitted meanwhile has to take the other replica.
    await asyncio.sleep(1.0)
    return list(await asyncio.gather(*(leaf2(i, seconds, log) for i in range(n))))
