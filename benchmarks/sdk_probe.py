"""One measurement through the SDK, in a fresh process with its own embedded controller.

    python -m benchmarks.sdk_probe gather --n 5000 [--window 0] [--seq 300] [--metrics] [--no-store]
    python -m benchmarks.sdk_probe cold --tasks 100 --reusable off

``benchmarks.run`` starts one of these per repetition, so no state leaks from one
measurement into the next. Each reports one JSON object (see ``harness.emit``).

``gather``: the seed's ``reuse_concurrency`` workload (``benchmarks.sdk_tasks``).
  1. ``run(main, n=warmup)`` on the fresh pool: the cold start is the time from
     just before ``run()`` to ``main`` executing (its ``time.time()``).
  2. optionally ``run(sequential, n=seq)``: per-child latency with nothing queued.
  3. ``run(main, n=n)`` on the now warm pool: tasks/s and per-child latency as
     measured inside ``main`` (after one untimed child, see ``sdk_tasks.main``),
     the end-to-end wall time in the driver, and the peak RSS of this process
     (which holds the embedded controller) and of the replicas, sampled every 20 ms.
  With ``--metrics`` the embedded controller serves Prometheus metrics, and the
  probe scrapes ``/metrics`` once at the end (its counters must match the run).
  With ``--no-store`` it records nothing in its runs store (``REUSE_RUNTIME_RUNS_RECORD=0``);
  by default every action of the run is recorded, and the probe reports how many.

``makespan``: after a warm-up, ``sdk_tasks.makespan``: ``--n`` children of ``--ms``
  each, gathered at once on the seed pool (capacity 200); the time inside the parent
  from the first call to the last result, against the ideal ``n * ms / 200``.

``bytes``: after a warm-up, ``sdk_tasks.bytes_fanout``: ``--n`` children each given
  ``--size`` bytes and returning as many, gathered at once; tasks/s, and the peak RSS
  of every process (this one, which holds the embedded controller, and each replica).

``pools``: the cold start of ``--pools`` fresh pools one after another, each
  ``run(first_seen)`` on an environment of its own, on the controller the warm-up
  started: a local replica's start when the controller is running (the first pool's
  also pays the controller's start).

``cold``: ``--tasks`` top-level runs of the noop, all started at once, from a
fresh pool; ``--reusable off`` gives each its own fresh worker process. Set
``REUSE_BENCH_INIT_SECONDS`` to make every import of the task module sleep.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import psutil

import reuse_runtime as flyte
from benchmarks import sdk_tasks
from benchmarks.harness import (
    RssSampler,
    busiest_thread,
    cpu_seconds,
    emit,
    scrape,
    thread_times,
)
from reuse_runtime.sdk.runtime import runtime
from reuse_runtime.store.settings import RECORD_ENV

TIMEOUT_S = 300.0


def gather(n: int, window: int, warmup: int, seq: int, prime: bool = True) -> dict[str, Any]:
    before_run = time.time()
    first = flyte.run(sdk_tasks.main, n=warmup).outputs(timeout=TIMEOUT_S)[0]
    cold_start_s = first["started_at"] - before_run
    cold_run_wall_s = time.time() - before_run

    result: dict[str, Any] = {}
    if seq:
        result["sequential"] = flyte.run(sdk_tasks.sequential, n=seq).outputs(timeout=TIMEOUT_S)[0]

    me = psutil.Process()
    rss_before = me.memory_info().rss
    replicas = [p.pid for p in me.children(recursive=True)]
    cpu_before = cpu_seconds([me.pid, *replicas])
    threads_before = thread_times([me.pid, *replicas])
    containers_before = _container_cpu()
    with RssSampler() as rss:
        began = time.perf_counter()
        measured_run = flyte.run(sdk_tasks.main, n=n, window=window, prime=prime)
        measured = measured_run.outputs(timeout=TIMEOUT_S)[0]
        wall_s = time.perf_counter() - began
    cpu_after = cpu_seconds([me.pid, *replicas])
    threads_after = thread_times([me.pid, *replicas])
    cpu = {pid: cpu_after[pid] - cpu_before[pid] for pid in cpu_after if pid in cpu_before}
    # Each process's busiest thread: its share of the window on a CPU, and waiting for one.
    busiest = {
        pid: busiest_thread(threads_before[pid], threads_after[pid], wall_s)
        for pid in cpu
        if threads_after.get(pid)
    }
    containers_after = _container_cpu()
    for cid, seconds in containers_after.items():
        if cid in containers_before:  # replicas in containers are not this process's children
            cpu[hash(cid)] = seconds - containers_before[cid]
    controller_cpu = cpu.pop(me.pid, 0.0)
    busiest_first = sorted(cpu, key=cpu.__getitem__, reverse=True)  # the replicas
    status = runtime().call(runtime().client.status(), timeout=30)
    if runtime().metrics_url:
        result["metrics_succeeded"] = _scraped_successes(runtime().metrics_url)
    store = _runs_store()
    if store is not None:  # what the embedded controller recorded, and what it dropped
        store.flush(timeout=60)
        stats = store.statistics()
        result["store_records"] = stats.records
        result["store_dropped"] = stats.dropped
        result["recorded_actions"] = sum(store.phase_counts(measured_run.name).values())
        writer = store.writer_thread_id
        if writer is not None and threads_after.get(me.pid):
            # The writer thread's CPU over the measured run, per task (schedstat: ns).
            ran = threads_after[me.pid].get(writer, (0, 0))[0]
            ran -= threads_before[me.pid].get(writer, (0, 0))[0]
            result["store_writer_us_per_task"] = ran / 1000 / n
    result.update(
        n=n,
        window=window,
        cold_start_s=cold_start_s,
        cold_run_wall_s=cold_run_wall_s,
        elapsed_s=measured["elapsed_s"],
        tasks_per_s=n / measured["elapsed_s"],
        wall_s=wall_s,
        p50_ms=measured["p50_ms"],
        p99_ms=measured["p99_ms"],
        rss_before=rss_before,
        rss_peak=rss.peak_self,
        rss_after=status.rss_bytes,
        replica_rss_peak=rss.peak_child,
        # CPU over the measured run: this process (the controller and the SDK
        # client) and the replicas, busiest first (normally the parent's replica).
        cpu_controller_s=controller_cpu,
        cpu_replicas_s=[cpu[pid] for pid in busiest_first],
        # [on a CPU, waiting for one] as shares of the window, in the same order.
        busiest_thread_controller=busiest.get(me.pid, (0.0, 0.0)),
        busiest_thread_replicas=[busiest.get(pid, (0.0, 0.0)) for pid in busiest_first],
    )
    return result


def _measured_cpu(
    run: Any,
) -> tuple[Any, float, dict[int, float], RssSampler]:
    """Run ``run()``; its result, wall time, CPU seconds per process, and RSS peaks."""
    me = psutil.Process()
    pids = [me.pid, *(p.pid for p in me.children(recursive=True))]
    before = cpu_seconds(pids)
    with RssSampler(interval_s=0.02, list_every_s=0.2) as rss:
        began = time.perf_counter()
        result = run()
        wall_s = time.perf_counter() - began
    after = cpu_seconds(pids)
    return result, wall_s, {p: after[p] - before[p] for p in after if p in before}, rss


def makespan(n: int, ms: float) -> dict[str, Any]:
    flyte.run(sdk_tasks.main, n=200).outputs(timeout=TIMEOUT_S)
    measured, wall_s, _, _ = _measured_cpu(
        lambda: flyte.run(sdk_tasks.makespan, n=n, ms=ms).outputs(timeout=TIMEOUT_S)[0]
    )
    ideal_s = n * ms / 1e3 / 200
    return {
        "n": n,
        "ms": ms,
        "elapsed_s": measured["elapsed_s"],
        "ideal_s": ideal_s,
        "ratio": measured["elapsed_s"] / ideal_s,
        "wall_s": wall_s,
    }


def bytes_case(n: int, size: int) -> dict[str, Any]:
    flyte.run(sdk_tasks.main, n=200).outputs(timeout=TIMEOUT_S)
    me = psutil.Process().pid
    measured, wall_s, cpu, rss = _measured_cpu(
        lambda: flyte.run(sdk_tasks.bytes_fanout, n=n, size=size).outputs(timeout=TIMEOUT_S)[0]
    )
    replicas = sorted((rss.peaks[p] for p in rss.peaks if p != me), reverse=True)
    return {
        "n": n,
        "size": size,
        "elapsed_s": measured["elapsed_s"],
        "tasks_per_s": n / measured["elapsed_s"],
        "wall_s": wall_s,
        "rss_controller_peak": rss.peaks.get(me, 0),
        "rss_replicas_peak": replicas,
        "cpu_controller_s": cpu.pop(me, 0.0),
        "cpu_replicas_s": sorted(cpu.values(), reverse=True),
    }


def _scraped_successes(url: str) -> float:
    return sum(
        s.value
        for s in scrape(url)
        if s.name == "reuse_runtime_tasks_total" and s.labels.get("state") == "succeeded"
    )


def _container_cpu() -> dict[str, float]:
    """CPU seconds of each replica container, from the engine (empty for local replicas)."""
    backend = getattr(runtime()._controller, "_backend", None)
    if getattr(backend, "name", "") != "container":
        return {}
    used = {}
    for replica in backend.list():
        stats = backend.client.api.stats(replica.container_id, stream=False)
        used[replica.container_id] = stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9
    return used


def pools(count: int) -> dict[str, Any]:
    before_run = time.time()
    first = flyte.run(sdk_tasks.main, n=200).outputs(timeout=TIMEOUT_S)[0]
    cold_start_s = first["started_at"] - before_run
    fresh = []
    for i in range(count):
        pool = sdk_tasks.fresh_pool(f"bench_fresh_pool_{i}")
        task = pool.tasks[f"bench_fresh_pool_{i}.first_seen"]
        before_run = time.time()
        fresh.append(flyte.run(task).outputs(timeout=TIMEOUT_S)[0] - before_run)
    return {"cold_start_s": cold_start_s, "fresh_pool_s": fresh}


def cold(tasks: int, reusable: bool) -> dict[str, Any]:
    task = sdk_tasks.noop if reusable else sdk_tasks.noop.override(reusable="off")
    with RssSampler(interval_s=0.1, list_every_s=0.1) as sampler:
        began = time.perf_counter()
        runs = [flyte.run(task, i) for i in range(tasks)]
        total = sum(r.outputs(timeout=TIMEOUT_S)[0] for r in runs)
        wall_s = time.perf_counter() - began
    if total != tasks * (tasks - 1) // 2:
        raise RuntimeError(f"wrong sum of results: {total}")
    return {
        "tasks": tasks,
        "reusable": reusable,
        "init_s": sdk_tasks.INIT_SECONDS,
        "wall_s": wall_s,
        "tasks_per_s": tasks / wall_s,
        "peak_workers": sampler.peak_children,
    }


def _runs_store() -> Any:
    """The embedded controller's runs store, or None (recording off)."""
    controller = runtime()._controller
    return None if controller is None else controller.runs.store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    g = modes.add_parser("gather")
    g.add_argument("--n", type=int, required=True)
    g.add_argument("--window", type=int, default=0, help="children in flight; 0: all at once")
    g.add_argument("--warmup", type=int, default=200)
    g.add_argument("--seq", type=int, default=0, help="also time this many sequential children")
    g.add_argument(
        "--no-prime",
        dest="prime",
        action="store_false",
        help="no untimed first child (see sdk_tasks.main): reproduces the register stampede",
    )
    g.add_argument("--metrics", action="store_true", help="the embedded controller serves /metrics")
    g.add_argument(
        "--no-store", action="store_true", help="the embedded controller records no runs"
    )
    m = modes.add_parser("makespan")
    m.add_argument("--n", type=int, default=10_000)
    m.add_argument("--ms", type=float, default=10.0)
    b = modes.add_parser("bytes")
    b.add_argument("--n", type=int, default=1_000)
    b.add_argument("--size", type=int, default=2**20)
    f = modes.add_parser("pools")
    f.add_argument("--pools", type=int, default=3)
    c = modes.add_parser("cold")
    c.add_argument("--tasks", type=int, default=100)
    c.add_argument("--reusable", choices=("on", "off"), required=True)
    args = parser.parse_args()

    if getattr(args, "no_store", False):
        os.environ[RECORD_ENV] = "0"
    # The embedded controller, whatever the config files say.
    flyte.init(metrics_port=0 if getattr(args, "metrics", False) else None)
    try:
        if args.mode == "gather":
            emit(gather(args.n, args.window, args.warmup, args.seq, args.prime))
        elif args.mode == "makespan":
            emit(makespan(args.n, args.ms))
        elif args.mode == "bytes":
            emit(bytes_case(args.n, args.size))
        elif args.mode == "pools":
            emit(pools(args.pools))
        else:
            emit(cold(args.tasks, args.reusable == "on"))
    finally:
        flyte.shutdown()


if __name__ == "__main__":
    main()
