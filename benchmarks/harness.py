"""Shared pieces of the benchmarks: worker subprocesses, timing, and statistics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from reuse_runtime.model import FunctionRef, TaskSpec, dumps_args

ROOT = Path(__file__).resolve().parent.parent


def env() -> dict[str, str]:
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    environ.setdefault("REUSE_RUNTIME_LOG_LEVEL", "warning")
    return environ


@contextlib.asynccontextmanager
async def worker(concurrency: int) -> AsyncIterator[str]:
    """A real worker subprocess; yields its address."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reuse_runtime",
        "worker",
        "--port",
        "0",
        "--concurrency",
        str(concurrency),
        stdout=asyncio.subprocess.PIPE,
        env=env(),
        cwd=str(ROOT),
    )
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        match = re.search(r"listening on (\S+)", line)
        if not match:
            raise RuntimeError(f"worker did not start: {line!r}")
        yield match.group(1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        await process.wait()


def noop_spec(i: int) -> TaskSpec:
    return TaskSpec(
        task_id=uuid.uuid4().hex,
        name="noop",
        args=dumps_args((i,), {}),
        ref=FunctionRef("benchmarks.workloads", "noop"),
    )


@dataclass
class Latency:
    p50_ms: float
    p99_ms: float


def percentiles(samples: list[float]) -> Latency:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Latency(statistics.median(ordered) * 1e3, p99 * 1e3)


async def sequential(call: Callable[[int], Awaitable[object]], n: int) -> Latency:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


async def windowed(call: Callable[[int], Awaitable[object]], n: int, window: int) -> float:
    """Throughput (calls/s) with ``window`` calls in flight."""
    semaphore = asyncio.Semaphore(window)

    async def one(i: int) -> None:
        async with semaphore:
            await call(i)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - started)


def median_of(values: list[float]) -> float:
    return statistics.median(values)
