"""Tasks for the client-disconnect test: a parent that gathers and spawns many children."""

from __future__ import annotations

import asyncio
import os
import time

import reuse_runtime as flyte

fan = flyte.TaskEnvironment(
    name="fan", reusable=flyte.ReusePolicy(replicas=(2, 4), concurrency=8, idle_ttl=60)
)


@fan.task
async def leaf(i: int, log: str) -> int:
    """Records when it starts: the test checks none starts after its client died."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, f"{time.time():.6f} {i}\n".encode())
    finally:
        os.close(fd)
    await asyncio.sleep(0.01)
    return i


@fan.task
async def fan_out(n: int, log: str) -> int:
    """Spawns n children it awaits later, and gathers n more."""
    print("fanning out", flush=True)
    spawned = [asyncio.ensure_future(leaf(i, log)) for i in range(n)]
    gathered = await asyncio.gather(*(leaf(n + i, log) for i in range(n)))
    return sum(gathered) + sum(await asyncio.gather(*spawned))


bystander = flyte.TaskEnvironment(
    name="bystander", reusable=flyte.ReusePolicy(replicas=1, concurrency=8, idle_ttl=60)
)


@bystander.task
async def steady(i: int) -> int:
    await asyncio.sleep(0.01)
    return i


@bystander.task
async def steady_main(n: int) -> int:
    print("steady", flush=True)
    total = 0
    for start in range(0, n, 100):
        total += sum(await asyncio.gather(*(steady(i) for i in range(start, start + 100))))
    return total
