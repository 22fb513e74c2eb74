"""A user's task module, as the tests of reuse_runtime.testing use it."""

from __future__ import annotations

import asyncio
import secrets

import reuse_runtime as flyte

env = flyte.TaskEnvironment(
    name="harnessed",
    reusable=flyte.ReusePolicy(replicas=(1, 3), concurrency=2, scaledown_ttl=60, idle_ttl=300),
)

#: How many times this replica loaded the model (the seeds' lazy-load pattern).
LOADS = 0
_model: dict[str, float] | None = None
#: Tasks running at once on this replica, and the most seen.
ACTIVE = 0
PEAK = 0


class Rejected(Exception):
    """A user's own exception type."""


@env.task
async def predict(x: float) -> float:
    global _model, LOADS
    if _model is None:
        LOADS += 1
        _model = {"w": 2.0}
    return x * _model["w"]


@env.task
async def busy(seconds: float) -> str:
    global ACTIVE, PEAK
    ACTIVE += 1
    PEAK = max(PEAK, ACTIVE)
    try:
        await asyncio.sleep(seconds)
    finally:
        ACTIVE -= 1
    return "done"


@env.task
async def fan_out(n: int) -> float:
    return sum(await asyncio.gather(*(predict(float(i)) for i in range(n))))


@env.task
async def reject(x: int) -> int:
    raise Rejected(f"no {x}")


recycled = flyte.TaskEnvironment(
    name="harness-recycled",
    reusable=flyte.ReusePolicy(replicas=1, concurrency=1, max_tasks=2, idle_ttl=300),
)


#: Drawn when a replica imports this module: one value per replica.
COPY = secrets.token_hex(8)


@recycled.task
async def which() -> str:
    return COPY
