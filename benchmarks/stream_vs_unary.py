"""Which wire shape should carry tasks to a worker? Measure, then choose.

    python -m benchmarks.stream_vs_unary

Compares, against one real worker subprocess on 127.0.0.1:
* unary: one `Execute` call per task;
* stream: one long-lived `Dispatch` stream, batched both ways.
Reports sequential p50/p99 and throughput with 100 in flight (median of 3).
"""

from __future__ import annotations

import asyncio
import platform

from benchmarks.harness import median_of, noop_spec, sequential, windowed, worker
from reuse_runtime.client import WorkerClient

N_SEQ = 2000
N_PAR = 20000
WINDOW = 100


async def main() -> None:
    async with worker(concurrency=WINDOW) as address, WorkerClient(address) as client:
        await client.wait_ready()

        async def unary(i: int) -> None:
            (await client.execute(noop_spec(i))).unwrap()

        async def stream(i: int) -> None:
            (await client.run(noop_spec(i))).unwrap()

        rows = []
        for name, call in (("unary Execute", unary), ("stream Dispatch", stream)):
            await windowed(call, 500, WINDOW)  # warm up
            lat = [await sequential(call, N_SEQ) for _ in range(3)]
            tput = [await windowed(call, N_PAR, WINDOW) for _ in range(3)]
            rows.append(
                (
                    name,
                    median_of([x.p50_ms for x in lat]),
                    median_of([x.p99_ms for x in lat]),
                    median_of(tput),
                )
            )

    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, 2 cores"
    )
    print(f"{'shape':<18}{'seq p50 ms':>12}{'seq p99 ms':>12}{'tasks/s @100':>14}")
    for name, p50, p99, tput in rows:
        print(f"{name:<18}{p50:>12.3f}{p99:>12.3f}{tput:>14.0f}")


if __name__ == "__main__":
    asyncio.run(main())
