"""The environment the fuzz test keeps warm, and its one task, imported by the replicas."""

from __future__ import annotations

import reuse_runtime as flyte

# One replica that stays up for the whole run: a fuzz case that replaces it is a bug.
fuzz_target = flyte.TaskEnvironment(
    name="fuzz-target",
    reusable=flyte.ReusePolicy(replicas=1, concurrency=4, scaledown_ttl=3600, idle_ttl=3600),
)


@fuzz_target.task
async def echo(value: object) -> object:
    return value
