"""Containers against local subprocesses: cold start and warm throughput, in one run.

    python -m benchmarks.container [--reps 3] [--n 5000] [--network bridge|host]

Needs an engine (``reuse-runtime engine start``) and the Debian base image
(``reuse-runtime image base``). It first builds the workload's image (not
timed), then, for each repetition, runs ``benchmarks.sdk_probe gather`` in a
fresh process with ``REUSE_RUNTIME_BACKEND=local`` and then ``=container``:
the seed's ``reuse_concurrency`` workload (``replicas=2, concurrency=100``,
noop children gathered by one parent, see ``benchmarks.sdk_tasks``).

* **cold start**: ``run()`` to the first task executing, on a fresh pool (for
  containers: two containers created and started, their workers attached);
* **warm**: tasks/s of ``n`` children on the warm pool, and CPU time per task
  (the driver, which holds the embedded controller, plus the replicas: their
  processes locally, their containers' cgroups as the engine reports them).

Medians of the repetitions, and container/local ratios from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.run import ROOT, child_environment, run_child

BACKENDS = ("local", "container")


def _measure(backend: str, n: int, state_dir: str, network: str) -> dict[str, Any]:
    extra = {"REUSE_RUNTIME_BACKEND": backend, "REUSE_RUNTIME_CONTAINER_NETWORK": network}
    environ = child_environment(state_dir, extra)
    return run_child("benchmarks.sdk_probe", ["gather", "--n", str(n)], environ, 600.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument(
        "--network", default="bridge", help="the containers' network: bridge (default) or host"
    )
    args = parser.parse_args()

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-containers-") as state_dir:
        build = subprocess.run(
            [sys.executable, "-m", "reuse_runtime", "image", "build", "benchmarks/sdk_tasks.py"],
            cwd=ROOT,
            env=child_environment(state_dir),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if build.returncode != 0:
            raise SystemExit(f"image build failed:\n{build.stderr}{build.stdout}")
        print(build.stdout.strip().splitlines()[-1], file=sys.stderr)
        runs: dict[str, list[dict[str, Any]]] = {b: [] for b in BACKENDS}
        for rep in range(args.reps):
            for backend in BACKENDS:  # interleaved, so a slow moment hits both alike
                result = _measure(backend, args.n, state_dir, args.network)
                runs[backend].append(result)
                print(
                    f"rep {rep + 1} {backend}: cold {result['cold_start_s']:.2f} s, "
                    f"{result['tasks_per_s']:,.0f} tasks/s",
                    file=sys.stderr,
                )
    took = time.monotonic() - started

    def median(backend: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[backend])

    def cpu_per_task_ms(backend: str) -> float:
        return statistics.median(
            (r["cpu_controller_s"] + sum(r["cpu_replicas_s"])) / r["n"] * 1000
            for r in runs[backend]
        )

    rows = {
        b: {
            "cold_start_s": median(b, "cold_start_s"),
            "tasks_per_s": median(b, "tasks_per_s"),
            "cpu_ms_per_task": cpu_per_task_ms(b),
        }
        for b in BACKENDS
    }
    print(
        f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores), {args.reps} reps of "
        f"n={args.n}, {args.network} network, medians, {took:.0f} s with the image build"
    )
    print("| backend | cold start: run() to first task | warm tasks/s | CPU per task |")
    print("|---|---|---|---|")
    for b in BACKENDS:
        r = rows[b]
        print(
            f"| {b} | {r['cold_start_s']:.2f} s | {r['tasks_per_s']:,.0f} | "
            f"{r['cpu_ms_per_task'] * 1000:.0f} µs |"
        )
    local, cont = rows["local"], rows["container"]
    print(
        f"| container / local | {cont['cold_start_s'] / local['cold_start_s']:.1f}x | "
        f"{cont['tasks_per_s'] / local['tasks_per_s']:.2f}x | "
        f"{cont['cpu_ms_per_task'] / local['cpu_ms_per_task']:.2f}x |"
    )
    print(json.dumps({"runs": runs}), file=sys.stderr)


if __name__ == "__main__":
    main()
