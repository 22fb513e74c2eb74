"""Straight to one worker: no controller, no SDK.

    python -m benchmarks.worker_direct [--n-seq 2000] [--n-par 20000] [--reps 3]

A ``reuse-runtime worker --concurrency 100`` subprocess on 127.0.0.1, driven
with ``WorkerClient.run`` (the long-lived, batched ``Dispatch`` stream):
sequential p50/p99, and tasks/s with 100 in flight. Reports one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from benchmarks.harness import emit, noop_spec, sequential, windowed, worker
from reuse_runtime.client import WorkerClient

WINDOW = 100


async def measure(n_seq: int, n_par: int, reps: int) -> dict[str, Any]:
    async with worker(concurrency=WINDOW) as address, WorkerClient(address) as client:
        await client.wait_ready()

        async def call(i: int) -> None:
            (await client.run(noop_spec(i))).unwrap()

        await windowed(call, 500, WINDOW)  # warm up
        latencies = [await sequential(call, n_seq) for _ in range(reps)]
        rates = [await windowed(call, n_par, WINDOW) for _ in range(reps)]
    return {
        "n_seq": n_seq,
        "n_par": n_par,
        "window": WINDOW,
        "seq_p50_ms": [x.p50_ms for x in latencies],
        "seq_p99_ms": [x.p99_ms for x in latencies],
        "tasks_per_s": rates,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-seq", type=int, default=2000)
    parser.add_argument("--n-par", type=int, default=20000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    emit(asyncio.run(asyncio.wait_for(measure(args.n_seq, args.n_par, args.reps), 300)))


if __name__ == "__main__":
    main()
