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


@env.task
async def fan(n: int, seconds: float) -> list[str]:
    """Children that sleep; one aborted from outside is seen here as aborted."""
    got = await asyncio.gather(*(slow(seconds) for _ in range(n)), return_exceptions=True)
    return [
        "aborted" if isinstance(r, flyte.errors.ActionAbortedError) else type(r).__name__
        for r in got
    ]
