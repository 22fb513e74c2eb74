"""Tasks for the flyte.remote test."""

from __future__ import annotations

import asyncio

import reuse_runtime as flyte

env = flyte.TaskEnvironment(name="remote", reusable=flyte.ReusePolicy(replicas=1, concurrency=4))


@env.task
async def double(x: int) -> int:
    return 2 * x


@env.task
async def square(x: int, label: str = "sq") -> int:
    print(f"{label} of {x}", flush=True)
    return await double(x) * x // 2


@env.task
async def slow(seconds: float) -> None:
    await asyncio.sleep(seconds)
