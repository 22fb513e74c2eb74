"""Tasks for the network tests: children that log every execution, parents that gather them.

Every host of a test network shares this machine's filesystem, so each execution
appends one line to a log file the test reads: what ran, on which test host
(``$NETFAULT_HOST``, set on every process a test starts), in which process, and when.
A parent also logs how many results its process's client received for tasks it was
no longer waiting for (a result delivered twice), when it ends or is cancelled.
"""

from __future__ import annotations

import asyncio
import os
import time

import reuse_runtime as flyte

HOST_ENV = "NETFAULT_HOST"

# The environment of issue 29's hang: one replica of the controller's own, four slots;
# workers on other hosts join it with --environment netfaults.
faults = flyte.TaskEnvironment(
    name="netfaults",
    reusable=flyte.ReusePolicy(replicas=1, concurrency=4, idle_ttl=300, scaledown_ttl=300),
)


def append(log: str, kind: str, index: int | str) -> None:
    """One line per execution: ``kind index host pid time``."""
    host = os.environ.get(HOST_ENV, "?")
    line = f"{kind} {index} {host} {os.getpid()} {time.time():.3f}\n"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


# Throughput through the network: the controller's own replica has one slot, so
# nearly every task runs on the workers across the network (with --concurrency 50).
rate = flyte.TaskEnvironment(
    name="netrate",
    reusable=flyte.ReusePolicy(replicas=1, concurrency=1, idle_ttl=300, scaledown_ttl=300),
)


@faults.task
async def leaf(i: int, seconds: float, log: str, pad: bytes = b"") -> int:
    append(log, "leaf", i)
    if seconds:
        await asyncio.sleep(seconds)
    return i


@rate.task
async def timed(i: int, seconds: float, log: str) -> int:
    append(log, "timed", i)
    if seconds:
        await asyncio.sleep(seconds)
    return i


@faults.task
async def fanout(n: int, seconds: float, log: str, pad: int = 0) -> list[int]:
    append(log, "parent", n)
    padding = os.urandom(pad)  # arguments of this size each: bytes for a slow link
    try:
        return list(await asyncio.gather(*(leaf(i, seconds, log, padding) for i in range(n))))
    finally:
        append(log, "dupes", _duplicates())


def _duplicates() -> int:
    from reuse_runtime.sdk.replica_client import replica_client

    return int(getattr(replica_client(), "duplicate_results", 0))


# A run the controller owns (flyte.run), in the client partition test: on the
# controller's own replicas, apart from the workers' slots, so it goes on beside the
# other client's tasks instead of queueing behind them.
runs = flyte.TaskEnvironment(
    name="netrun",
    reusable=flyte.ReusePolicy(replicas=2, concurrency=8, idle_ttl=300, scaledown_ttl=300),
)


@runs.task
async def run_leaf(i: int, seconds: float, log: str) -> int:
    append(log, "leaf", i)
    await asyncio.sleep(seconds)
    return i


@runs.task
async def run_fanout(n: int, seconds: float, log: str) -> list[int]:
    append(log, "parent", n)
    try:
        return list(await asyncio.gather(*(run_leaf(i, seconds, log) for i in range(n))))
    finally:
        append(log, "dupes", _duplicates())
