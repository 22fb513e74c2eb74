"""Tasks the browser tests run on real replicas (imported by them)."""

from __future__ import annotations

import asyncio
import os
import time

import reuse_runtime as flyte
import reuse_runtime.report

env = flyte.TaskEnvironment(
    "ui-live", reusable=flyte.ReusePolicy(replicas=(1, 2), concurrency=8, idle_ttl=120)
)


@env.task
async def leaf(x: int) -> int:
    print(f"leaf {x} says hello")
    return x


@env.task
async def prepare(x: int) -> list[int]:
    return [await leaf(x * 10 + i) for i in range(2)]


@env.task
async def square(x: int) -> int:
    print(f"squaring {x}")
    return x * x


@env.task
async def main(n: int) -> int:
    """Three levels: main -> group "prep" of prepare -> leaf; main -> a map of square."""
    with flyte.group("prep"):
        await asyncio.gather(*(prepare(i) for i in range(3)))
    return sum([y async for y in flyte.map.aio(square, range(n))])


@env.task
def waits_for(path: str) -> str:
    """Prints a line, waits (at most a minute) for ``path`` to exist, prints another."""
    print("the first line", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    print("the second line", flush=True)
    return "done"


@env.task
async def sleeps(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "woke"


@env.task(report=True)
async def reports(epochs: int) -> float:
    loss = 1.0
    for epoch in range(epochs):
        loss /= 2
        await flyte.report.log.aio(f"<p class='epoch'>epoch {epoch}: loss {loss}</p>")
    flyte.report.get_tab("Summary").log("<h2 id='summary'>trained</h2>")
    return loss
