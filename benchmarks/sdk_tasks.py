"""The tasks the SDK benchmarks run. Replicas import this module by name.

``bench_reuse_concurrency`` is the seed guide's ``reuse_concurrency`` environment
(``replicas=2``, ``concurrency=100``, noop async tasks, a parent gathering n
children), with the parent timing its children from the inside.

Set ``REUSE_BENCH_INIT_SECONDS`` to make importing this module sleep that long:
it stands for loading a model, paid once per process (once per replica when
reused, once per task when not).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

import reuse_runtime as flyte

INIT_SECONDS_ENV = "REUSE_BENCH_INIT_SECONDS"
INIT_SECONDS = float(os.environ.get(INIT_SECONDS_ENV) or 0)
if INIT_SECONDS:
    time.sleep(INIT_SECONDS)  # the "model load"

env = flyte.TaskEnvironment(
    name="bench_reuse_concurrency",
    reusable=flyte.ReusePolicy(replicas=2, idle_ttl=60, concurrency=100, scaledown_ttl=60),
    # Explicit, so a replica pays the same init wherever it is started.
    env_vars={INIT_SECONDS_ENV: str(INIT_SECONDS)} if INIT_SECONDS else None,
)


@env.task
async def noop(x: int) -> int:
    return x


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


@env.task
async def main(n: int, window: int = 0, prime: bool = True) -> dict[str, Any]:
    """Gather ``n`` noop children (at most ``window`` in flight when set); time them.

    Returns when this task started (``time.time()``, to compare with the
    driver's clock), the time from the first child call to the gather's end,
    and per-child latency (call to result) percentiles.

    ``prime`` first awaits one child, untimed, so this replica's controller
    client has registered the environment before the gather. Without it, a
    replica that has not yet called a child sends one ``RegisterEnvironment``
    RPC per concurrent child (no single-flight in ``ControllerClient.register``
    as of this writing): slower, and at ~10k children some fail with CANCELLED.
    """
    started_at = time.time()
    if prime:
        await noop(0)
    latencies = [0.0] * n
    semaphore = asyncio.Semaphore(window) if window else None

    async def child(i: int) -> int:
        if semaphore is None:
            begin = time.perf_counter()
            value = await noop(i)
        else:
            async with semaphore:
                begin = time.perf_counter()
                value = await noop(i)
        latencies[i] = time.perf_counter() - begin
        return value

    first_call = time.perf_counter()
    results = await asyncio.gather(*(child(i) for i in range(n)))
    elapsed = time.perf_counter() - first_call
    if sum(results) != n * (n - 1) // 2:
        raise RuntimeError(f"wrong children's sum: {sum(results)}")
    ordered = sorted(latencies)
    return {
        "started_at": started_at,
        "elapsed_s": elapsed,
        "p50_ms": statistics.median(ordered) * 1e3,
        "p99_ms": _percentile(ordered, 0.99) * 1e3,
    }


@env.task
async def sequential(n: int) -> dict[str, Any]:
    """Await ``n`` noop children one at a time: the per-task cost with nothing queued."""
    latencies = []
    for i in range(n):
        begin = time.perf_counter()
        await noop(i)
        latencies.append(time.perf_counter() - begin)
    ordered = sorted(latencies)
    return {
        "p50_ms": statistics.median(ordered) * 1e3,
        "p99_ms": _percentile(ordered, 0.99) * 1e3,
    }


def fresh_pool(name: str) -> flyte.TaskEnvironment:
    """A one-replica environment of its own for ``first_seen``: a fresh pool."""
    pool = flyte.TaskEnvironment(name=name, reusable=flyte.ReusePolicy(replicas=1, idle_ttl=60))
    pool.task(first_seen)
    return pool


@env.task
async def first_seen() -> float:
    """When this task started executing (``time.time()``)."""
    return time.time()


@env.task
async def sleeper(ms: float) -> None:
    await asyncio.sleep(ms / 1e3)


@env.task
async def makespan(n: int, ms: float) -> dict[str, Any]:
    """Gather ``n`` children that each sleep ``ms``; time from the first call to the last result.

    Starts with one untimed child (registering the environment, as ``main`` does).
    """
    await sleeper(0)
    began = time.perf_counter()
    await asyncio.gather(*(sleeper(ms) for _ in range(n)))
    return {"elapsed_s": time.perf_counter() - began}


@env.task
async def echo_bytes(payload: bytes, size: int) -> bytes:
    """Takes ``payload``, returns ``size`` fresh bytes (a new object, as real work would)."""
    return bytes(size) if len(payload) >= 0 else b""


@env.task
async def bytes_fanout(n: int, size: int) -> dict[str, Any]:
    """``n`` children, each given ``size`` bytes and returning ``size`` bytes, all at once.

    Every result is checked and dropped: what stays in memory is the runtime's.
    """
    payload = os.urandom(size)
    await echo_bytes(b"", 0)
    began = time.perf_counter()
    sizes = await asyncio.gather(*(_len(echo_bytes(payload, size)) for _ in range(n)))
    elapsed = time.perf_counter() - began
    if sum(sizes) != n * size:
        raise RuntimeError(f"wrong total of result bytes: {sum(sizes)}")
    return {"elapsed_s": elapsed}


async def _len(result: Any) -> int:
    return len(await result)
