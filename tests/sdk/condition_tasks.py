"""Tasks that wait on conditions, for the conditions tests."""

from __future__ import annotations

import reuse_runtime as flyte

env = flyte.TaskEnvironment(
    name="conditions", reusable=flyte.ReusePolicy(replicas=1, concurrency=8)
)


@env.task
async def approve() -> str:
    approval = await flyte.new_condition.aio(
        "approval", prompt="Ship it?", prompt_type="markdown", data_type=bool
    )
    return "approved" if await approval.wait.aio() else "rejected"


@env.task
def count() -> int:
    # The blocking forms, from a sync task's thread.
    batch = flyte.new_condition("batch", prompt="How many?", data_type=int)
    return batch.wait() + 1


@env.task
async def timed() -> str:
    soon = await flyte.new_condition.aio("soon", data_type=str, timeout=0.5)
    try:
        return await soon.wait.aio()
    except flyte.errors.ConditionTimedoutError as exc:
        return f"{type(exc).__name__}: {exc}"


@env.task
async def hold() -> str:
    forever = await flyte.new_condition.aio("forever", data_type=float)
    return str(await forever.wait.aio())
