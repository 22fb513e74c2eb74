"""Shared pieces of the benchmarks: worker subprocesses, timing, and statistics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reuse_runtime.model import FunctionRef, TaskSpec, dumps_args

if TYPE_CHECKING:
    from prometheus_client.samples import Sample

ROOT = Path(__file__).resolve().parent.parent


def env() -> dict[str, str]:
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    environ.setdefault("REUSE_RUNTIME_LOG_LEVEL", "warning")
    return environ


def spawn_server(module: str, *args: str) -> tuple[subprocess.Popen[str], int]:
    """``python -m module ARGS`` from the repository, a server that prints its port first;
    the process and that port."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    return process, int(process.stdout.readline())


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


def scrape(url: str, timeout: float = 30.0) -> list[Sample]:
    """Every sample a Prometheus endpoint (a controller's ``/metrics``) serves now."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=timeout) as response:
        text = response.read().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


# ---------------------------------------------------------------- child processes
#
# Each measurement of `python -m benchmarks.run` runs in its own process and
# reports one JSON object on a line of stdout that starts with RESULT_MARK.

RESULT_MARK = "BENCH-RESULT "


def emit(result: object) -> None:
    """Report a child's measurement to `benchmarks.run`."""
    print(RESULT_MARK + json.dumps(result), flush=True)


def parse_result(stdout: str) -> object:
    """The measurement a child reported; raises if it reported none."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    raise RuntimeError("the benchmark process reported no result")


class RssSampler:
    """Peak RSS of this process and of its child processes, sampled in a thread.

    Bounded: it stops at :meth:`stop` or after ``limit_s`` seconds, whichever is first.
    Listing child processes scans /proc, so it is done every ``list_every_s``, not per
    sample: the sampler must not tax the process it measures (the embedded controller).
    """

    def __init__(
        self, interval_s: float = 0.05, list_every_s: float = 1.0, limit_s: float = 600.0
    ) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval_s = interval_s
        self._list_every_s = list_every_s
        self._limit_s = limit_s
        self._stop = threading.Event()
        self.peak_self = 0
        self.peak_child = 0
        self.peak_children = 0  # most child processes alive at one listing
        self.peaks: dict[int, int] = {}  # peak RSS of each process seen, by pid
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _sample(self) -> None:
        import psutil

        deadline = time.monotonic() + self._limit_s
        children: list[psutil.Process] = []
        listed_at = 0.0
        while not self._stop.is_set() and time.monotonic() < deadline:
            if time.monotonic() - listed_at >= self._list_every_s:
                children, listed_at = self._process.children(recursive=True), time.monotonic()
                self.peak_children = max(self.peak_children, len(children))
            self.peak_self = max(self.peak_self, self._process.memory_info().rss)
            self.peaks[self._process.pid] = self.peak_self
            for child in children:
                with contextlib.suppress(psutil.Error):
                    rss = child.memory_info().rss
                    self.peak_child = max(self.peak_child, rss)
                    self.peaks[child.pid] = max(self.peaks.get(child.pid, 0), rss)
            self._stop.wait(self._interval_s)


def thread_times(pids: list[int]) -> dict[int, dict[int, tuple[int, int]]]:
    """Per process in ``pids``, per thread: nanoseconds run on a CPU and nanoseconds
    spent runnable but waiting for one, so far (``/proc/PID/task/TID/schedstat``;
    empty where the kernel keeps no such counts)."""
    times: dict[int, dict[int, tuple[int, int]]] = {}
    for pid in pids:
        threads: dict[int, tuple[int, int]] = {}
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError, ValueError):
                    with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                        ran, waited, _ = f.read().split()
                    threads[int(tid)] = (int(ran), int(waited))
        times[pid] = threads
    return times


def busiest_thread(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]], wall_s: float
) -> tuple[float, float]:
    """Of one process's threads between two :func:`thread_times`: the busiest one's
    share of ``wall_s`` on a CPU, and its share spent waiting for a CPU. A thread
    near 1.0 on a CPU is the bound of whatever it runs."""
    best = (0.0, 0.0)
    for tid, (ran, waited) in after.items():
        ran0, waited0 = before.get(tid, (0, 0))
        share = ((ran - ran0) / 1e9 / wall_s, (waited - waited0) / 1e9 / wall_s)
        best = max(best, share)
    return best


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds so far of each live process in ``pids``."""
    import psutil

    times = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            times[pid] = t.user + t.system
    return times
