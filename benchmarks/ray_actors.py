"""Ray, for comparison: two async actors with ``max_concurrency=100``, the same noop.

    python -m benchmarks.ray_actors --n 500 5000 50000 [--n-seq 1000]

One repetition in a fresh process: ``ray.init()`` of a local, lean cluster
(2 CPUs, no dashboard), two actors, then for each n all calls submitted from
the driver round-robin over the two actors and collected with one ``ray.get``
(calls/s), then sequential calls (p50/p99). Also reports the time from just
before ``ray.init()`` to the first actor call executing (Ray's cold start).

Ray is optional (``pip install -e '.[bench]'``); without it this reports
``{"installed": false}``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import statistics
import time
from typing import Any

import psutil

from benchmarks.harness import emit

TIMEOUT_S = 180.0


def measure(ns: list[int], n_seq: int) -> dict[str, Any]:
    began = time.perf_counter()
    import ray

    import_s = time.perf_counter() - began

    @ray.remote(max_concurrency=100)
    class Noop:
        async def noop(self, x: int) -> int:
            return x

        async def now(self) -> float:
            return time.time()

    before_init = time.time()
    began = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - began
    try:
        actors = [Noop.remote() for _ in range(2)]  # type: ignore[attr-defined]
        first_call_at = ray.get(actors[0].now.remote(), timeout=TIMEOUT_S)
        cold_start_s = first_call_at - before_init
        ray.get([a.noop.remote(i) for i, a in enumerate(actors * 100)], timeout=TIMEOUT_S)

        rates = {}
        for n in ns:
            began = time.perf_counter()
            refs = [actors[i % 2].noop.remote(i) for i in range(n)]
            total = sum(ray.get(refs, timeout=TIMEOUT_S))
            rates[str(n)] = n / (time.perf_counter() - began)
            if total != n * (n - 1) // 2:
                raise RuntimeError("wrong sum of results")
            del refs

        samples = []
        for i in range(n_seq):
            began = time.perf_counter()
            ray.get(actors[i % 2].noop.remote(i), timeout=TIMEOUT_S)
            samples.append(time.perf_counter() - began)
        ordered = sorted(samples)
        escaped_cpu_s = _grandchildren_cpu_s()
    finally:
        ray.shutdown()
    return {
        "installed": True,
        "version": ray.__version__,
        "import_s": import_s,
        "init_s": init_s,
        "cold_start_s": cold_start_s,
        "calls_per_s": rates,
        "seq_p50_ms": statistics.median(ordered) * 1e3 if ordered else None,
        "seq_p99_ms": (
            ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3 if ordered else None
        ),
        "escaped_cpu_s": escaped_cpu_s,
    }


def _grandchildren_cpu_s() -> float:
    """CPU so far of Ray's processes below its daemons (the actors' workers).

    Nobody in this process tree reaps them, so ``benchmarks.run`` would count
    their CPU as other processes' load; it subtracts this instead.
    """
    me = psutil.Process()
    direct = {p.pid for p in me.children()}
    total = 0.0
    for process in me.children(recursive=True):
        if process.pid not in direct:
            with contextlib.suppress(psutil.Error):
                t = process.cpu_times()
                total += t.user + t.system
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[500, 5000, 50000])
    parser.add_argument("--n-seq", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if importlib.util.find_spec("ray") is None:
        emit({"installed": False})
        return
    emit(measure(args.n, args.n_seq))


if __name__ == "__main__":
    main()
