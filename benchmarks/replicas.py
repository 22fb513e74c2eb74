"""Many replicas on one controller: what each attached worker costs it, idle and busy.

    python -m benchmarks.replicas [--workers 1000] [--hosts 4] [--small 10] [--idle-s 10]

A standalone ``reuse-runtime controller`` subprocess, and ``--workers`` lightweight
workers attached to it as external replicas of one environment (``worker
--environment``): each a real gRPC ``Connect`` stream on a TCP connection of its own,
opened with the runtime's own :class:`~reuse_runtime.client.ControllerConnection`:
it says hello, takes its init, answers each noop task it is sent at once, and reports
as a worker does (on every busy/idle transition, and every idle heartbeat the
controller asks for). ``--hosts`` processes hold them, so a thousand cost a few
processes, not a thousand interpreters.

Measured, in order:

1. the controller's CPU at idle with the environment registered and no worker
   (``--idle-s`` seconds): the floor of an idle controller;
2. with ``--small`` workers attached: sequential noop tasks (p50/p99, call to result
   through a :class:`~reuse_runtime.client.ControllerClient`; and the routing of each,
   the controller's time from admitting it to dispatching it, read from the
   ``reuse_runtime_task_queue_seconds`` histogram of its ``/metrics`` before and
   after), then ``--n`` tasks with ``--window`` in flight: tasks/s and the
   controller's CPU per task;
3. with all ``--workers`` attached: the controller's CPU at idle (their reports), as
   % of one core, and the same two task measurements: routing among many replicas
   against routing among a few, in one run;
4. the controller's peak RSS, sampled throughout.

Reports one JSON object (``harness.emit``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pickle
import random
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import grpc
import psutil

from benchmarks.harness import ROOT, emit, noop_spec, percentiles, scrape
from reuse_runtime.client import ControllerClient, ControllerConnection
from reuse_runtime.model import (
    DispatchCommand,
    DrainCommand,
    EnvironmentSpec,
    PoolPolicy,
    ReplicaHello,
    ReplicaInit,
    ReplicaReport,
    Submission,
    TaskResult,
    TaskState,
)
from reuse_runtime.security import TOKEN_ENV, Security

ENVIRONMENT = "fleet"
READY = re.compile(r"listening on (\S+)")
METRICS = re.compile(r"metrics on (\S+)")
#: The controller's histogram of a task's wait from admission to dispatch: with a free
#: replica, the time it takes to route the task.
ROUTE_HISTOGRAM = "reuse_runtime_task_queue_seconds"
#: Seconds every wait of the harness may take at most.
WAIT_S = 120.0
#: Workers of one host that dial the controller at once.
ATTACH_CHUNK = 25
#: Dials of one worker before it gives up.
ATTACH_TRIES = 5


# ---------------------------------------------------------------- the fake workers


class FakeWorker:
    """One attached worker: a real Connect stream, a noop executor, a worker's reports."""

    def __init__(
        self, address: str, security: Security, replica_id: str, capacity: int, heartbeat: float
    ) -> None:
        self.replica_id = replica_id
        self.capacity = capacity
        self.heartbeat = heartbeat
        self.completed = 0
        self.attached = asyncio.Event()
        self._started = time.monotonic()
        self._idle_since: float | None = time.time()
        self._hello = ReplicaHello(replica_id, capacity, "", os.getpid(), ENVIRONMENT)
        self._address = address
        self._security = security
        self._conn: ControllerConnection | None = None

    def report(self, active: int = 0) -> ReplicaReport:
        now = time.time()
        return ReplicaReport(
            replica_id=self.replica_id,
            active=active,
            capacity=self.capacity,
            idle_since=self._idle_since if not active else None,
            idle_seconds=now - self._idle_since if self._idle_since and not active else 0.0,
            completed=self.completed,
            rss_bytes=60_000_000,
            uptime=time.monotonic() - self._started,
            sent_at=now,
        )

    async def run(self, first_beat: float) -> None:
        """Serve the stream; the first heartbeat comes after ``first_beat`` intervals.

        A dial that fails before the controller took the worker is tried again, a few
        times: a controller busy taking hundreds of workers lets some handshakes time out.
        """
        for attempt in range(ATTACH_TRIES):
            try:
                await self._serve(first_beat)
                return
            except grpc.aio.AioRpcError:
                if self.attached.is_set() or attempt == ATTACH_TRIES - 1:
                    raise
                await asyncio.sleep(0.5 + random.random())

    async def _serve(self, first_beat: float) -> None:
        conn = self._conn = ControllerConnection(
            self._address, self._security, self._hello, own_connection=True
        )
        beating: asyncio.Task[None] | None = None
        try:
            async for command in conn.commands():
                if isinstance(command, DispatchCommand):
                    self._run(conn, command)
                elif isinstance(command, ReplicaInit):
                    conn.send_report(self.report())
                    self.attached.set()
                    # Idle between batches: it reports as often as an idle worker does.
                    every = max(self.heartbeat, command.idle_heartbeat)
                    beating = asyncio.ensure_future(self._beat(conn, first_beat * every, every))
                elif isinstance(command, DrainCommand):
                    break
        finally:
            if not self.attached.is_set():
                await conn.close()  # its channel, before dialling again
            if beating is not None:
                beating.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beating

    def _run(self, conn: ControllerConnection, command: DispatchCommand) -> None:
        """Run the batch's noops at once: busy, results, idle, as a worker reports them."""
        if not command.tasks:
            return
        conn.send_report(self.report(active=len(command.tasks)))
        results = []
        for spec in command.tasks:
            args, _ = pickle.loads(spec.args)
            value = pickle.dumps(args[0])
            results.append(TaskResult(spec.task_id, TaskState.SUCCEEDED, value=value))
        self.completed += len(results)
        conn.send_results(results, [])
        self._idle_since = time.time()
        conn.send_report(self.report())

    async def _beat(self, conn: ControllerConnection, first: float, every: float) -> None:
        await asyncio.sleep(first)
        while True:
            conn.send_report(self.report())
            await asyncio.sleep(every)


async def host(address: str, first: int, count: int, capacity: int, heartbeat: float) -> None:
    """Attach ``count`` workers; print ``ready`` once each has its init; serve until killed."""
    security = Security(token=os.environ.get(TOKEN_ENV) or None)
    workers = [
        FakeWorker(address, security, f"fake-{i}", capacity, heartbeat)
        for i in range(first, first + count)
    ]
    # Spread the heartbeats over the interval, as replicas started at different times are;
    # and dial in chunks, as replicas started by a scale-up would (a thousand handshakes
    # in one moment time out).
    runs: list[asyncio.Future[None]] = []
    for start in range(0, count, ATTACH_CHUNK):
        chunk = workers[start : start + ATTACH_CHUNK]
        runs += [asyncio.ensure_future(w.run((start + i) / count)) for i, w in enumerate(chunk)]
        attached = asyncio.ensure_future(asyncio.gather(*(w.attached.wait() for w in chunk)))
        await asyncio.wait([attached, *runs], timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
        ended = [r for r in runs if r.done()]
        if ended or not attached.done():
            attached.cancel()
            why = ended[0].exception() if ended and not ended[0].cancelled() else "timed out"
            print(f"failed: {str(why)!r}", flush=True)
            return
    print(f"ready {count}", flush=True)
    await asyncio.gather(*runs, return_exceptions=True)


# ---------------------------------------------------------------- the measurement


class PeakRss:
    """The peak RSS of one process, sampled every ``interval_s`` in a thread."""

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        self._process = psutil.Process(pid)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _sample(self) -> None:
        deadline = time.monotonic() + 3600
        while not self._stop.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(self._interval_s)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _spawn(args: list[str], environ: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=str(ROOT),
        env=environ,
    )


def _expect(process: subprocess.Popen[str], pattern: re.Pattern[str], what: str) -> re.Match[str]:
    """The first line of ``process`` that matches, within WAIT_S (read in a thread)."""
    assert process.stdout is not None
    stdout = process.stdout
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(WAIT_S)
    line = found[0] if found else ""
    match = pattern.search(line)
    if match is None:
        raise RuntimeError(f"{what} did not start: {line.strip()!r}")
    return match


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class Fleet:
    """The controller subprocess, the worker hosts, and a client."""

    def __init__(self, state_dir: str, capacity: int, heartbeat: float) -> None:
        self.token = secrets.token_urlsafe(24)
        self.capacity = capacity
        self.heartbeat = heartbeat
        self.environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith("REUSE_RUNTIME_")},
            "PYTHONPATH": str(ROOT),
            "REUSE_RUNTIME_HOME": state_dir,
            "REUSE_RUNTIME_LOG_LEVEL": "warning",
            TOKEN_ENV: self.token,
        }
        self.hosts: list[subprocess.Popen[str]] = []
        self.attached = 0
        self.controller = _spawn(
            ["reuse_runtime", "controller", "--port", "0", "--metrics-port", "0"], self.environ
        )
        self.address = _expect(self.controller, READY, "the controller").group(1)
        self.metrics_url = _expect(self.controller, METRICS, "the controller's metrics").group(1)
        self.process = psutil.Process(self.controller.pid)

    def attach(self, count: int, hosts: int) -> None:
        """``count`` more workers, over ``hosts`` more processes; returns once each is in."""
        started = []
        per_host = -(-count // hosts)
        for first in range(self.attached, self.attached + count, per_host):
            n = min(per_host, self.attached + count - first)
            args = ["benchmarks.replicas", "--host", self.address, "--first", str(first)]
            args += ["--count", str(n), "--capacity", str(self.capacity)]
            args += ["--heartbeat", f"{self.heartbeat:g}"]
            started.append(_spawn(args, self.environ))
        self.hosts += started
        for process in started:
            _expect(process, re.compile(r"^ready (\d+)"), "a worker host")
        self.attached += count

    def close(self) -> None:
        for process in self.hosts:
            _stop(process)
        _stop(self.controller)


async def _ready_replicas(client: ControllerClient, want: int) -> int:
    """Wait (bounded) until the controller shows ``want`` ready replicas of the fleet."""
    deadline = time.monotonic() + WAIT_S
    ready = 0
    while time.monotonic() < deadline:
        status = await client.status()
        ready = sum(
            1
            for env in status.environments
            if env.name == ENVIRONMENT
            for r in env.replicas
            if r.state == "ready"
        )
        if ready >= want:
            return ready
        await asyncio.sleep(0.2)
    raise RuntimeError(f"only {ready} of {want} workers became ready")


def _route_buckets(metrics_url: str) -> dict[float, float]:
    """The fleet's cumulative ``ROUTE_HISTOGRAM`` buckets, upper bound to count."""
    buckets = {
        float(s.labels["le"]): s.value
        for s in scrape(metrics_url, WAIT_S)
        if s.name == f"{ROUTE_HISTOGRAM}_bucket" and s.labels.get("environment") == ENVIRONMENT
    }
    if not buckets:
        raise RuntimeError(f"{metrics_url} has no {ROUTE_HISTOGRAM} of {ENVIRONMENT}")
    return buckets


def _route_quantiles(before: dict[float, float], after: dict[float, float]) -> dict[str, float]:
    """The routing times observed between two reads of the histogram.

    Its buckets bound each quantile exactly, and no closer: ``route_p99_le_ms`` is the
    upper bound of the bucket the 99th percentile falls in (as ``le``; 0.5 ms is the
    first), and ``route_within_1ms`` the share of tasks routed within 1 ms.
    """
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]  # cumulative
    total = counts[-1]
    if total <= 0:
        raise RuntimeError("no task was routed between the two reads of the histogram")

    def bucket_of(q: float) -> float:
        return next(b for b, count in zip(bounds, counts, strict=True) if count >= q * total)

    return {
        "route_p50_le_ms": bucket_of(0.5) * 1e3,
        "route_p99_le_ms": bucket_of(0.99) * 1e3,
        "route_within_1ms": counts[bounds.index(0.001)] / total,
        "routed": total,
    }


async def _tasks(
    client: ControllerClient, key: str, fleet: Fleet, n_seq: int, n: int, window: int
) -> dict[str, Any]:
    """Sequential latency, then ``n`` tasks with ``window`` in flight and the controller's CPU."""

    async def call(i: int) -> None:
        result = await client.submit(Submission(key, noop_spec(i)))
        if result.unwrap() != i:
            raise RuntimeError(f"task {i} came back wrong")

    for i in range(50):  # warm up
        await call(i)
    routed_before = await asyncio.to_thread(_route_buckets, fleet.metrics_url)
    samples = []
    for i in range(n_seq):
        began = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - began)
    latency = percentiles(samples)
    routing = _route_quantiles(
        routed_before, await asyncio.to_thread(_route_buckets, fleet.metrics_url)
    )
    room = asyncio.Semaphore(window)

    async def windowed(i: int) -> None:
        async with room:
            await call(i)

    cpu_before = _cpu(fleet.process)
    began = time.perf_counter()
    await asyncio.gather(*(windowed(i) for i in range(n)))
    elapsed = time.perf_counter() - began
    cpu = _cpu(fleet.process) - cpu_before
    return {
        "seq_p50_ms": latency.p50_ms,
        "seq_p99_ms": latency.p99_ms,
        **routing,
        "tasks_per_s": n / elapsed,
        "controller_cpu_us_per_task": cpu / n * 1e6,
    }


async def _idle_cpu_pct(fleet: Fleet, seconds: float) -> float:
    before, began = _cpu(fleet.process), time.monotonic()
    await asyncio.sleep(seconds)
    return 100 * (_cpu(fleet.process) - before) / (time.monotonic() - began)


async def measure(args: argparse.Namespace, fleet: Fleet) -> dict[str, Any]:
    client = ControllerClient(fleet.address, Security(token=fleet.token))
    try:
        await client.wait_ready()
        spec = EnvironmentSpec(
            ENVIRONMENT,
            PoolPolicy(
                min_replicas=0,
                max_replicas=1,
                concurrency=args.capacity,
                scaledown_ttl=600,
                idle_ttl=3600,
            ),
        )
        key = await client.register(spec)
        idle_base = await _idle_cpu_pct(fleet, args.idle_s)
        small = min(args.small, args.workers)
        fleet.attach(small, 1)
        await _ready_replicas(client, small)
        few = await _tasks(
            client, key, fleet, args.n_seq, args.n, min(args.window, small * args.capacity)
        )
        rss_few = fleet.process.memory_info().rss
        began = time.monotonic()
        fleet.attach(args.workers - small, args.hosts)
        await _ready_replicas(client, args.workers)
        attach_s = time.monotonic() - began
        rss_idle = fleet.process.memory_info().rss
        idle = await _idle_cpu_pct(fleet, args.idle_s)
        window = min(args.window, args.workers * args.capacity)
        many = await _tasks(client, key, fleet, args.n_seq, args.n, window)
        status = await client.status()
        local = sum(1 for env in status.environments for r in env.replicas if not r.external)
    finally:
        await client.close()
    return {
        "workers": args.workers,
        "hosts": args.hosts,
        "small": small,
        "capacity": args.capacity,
        "heartbeat": args.heartbeat,
        "idle_s": args.idle_s,
        "attach_s": attach_s,
        "idle_cpu_pct_no_workers": idle_base,
        "idle_cpu_pct": idle,
        "reports_cpu_pct": max(0.0, idle - idle_base),
        "rss_few": rss_few,
        "rss_idle": rss_idle,
        "few": few,
        "many": many,
        "local_replicas": local,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=4, help="processes holding the workers")
    parser.add_argument("--small", type=int, default=10, help="workers of the 'few' measurement")
    parser.add_argument("--capacity", type=int, default=1, help="each worker's slots")
    parser.add_argument("--heartbeat", type=float, default=1.0)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--n-seq", type=int, default=500)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--host", help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.host:
        import uvloop

        uvloop.run(host(args.host, args.first, args.count, args.capacity, args.heartbeat))
        return
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as state_dir:
        fleet = Fleet(state_dir, args.capacity, args.heartbeat)
        try:
            with PeakRss(fleet.controller.pid) as rss:
                result = asyncio.run(asyncio.wait_for(measure(args, fleet), 900))
            result["rss_peak"] = rss.peak
        finally:
            fleet.close()
    emit(result)


if __name__ == "__main__":
    main()
    sys.exit(0)
