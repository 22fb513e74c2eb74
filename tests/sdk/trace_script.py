"""A run with a call tree two levels deep, for the tracing and `logs` tests."""

import asyncio
import sys

import reuse_runtime as flyte

env = flyte.TaskEnvironment(name="traced", reusable=flyte.ReusePolicy(replicas=2, concurrency=8))


@env.task
async def leaf(i: int, j: int) -> int:
    print(f"leaf {i}.{j}")
    if j == 1:
        print(f"leaf {i}.{j} warns", file=sys.stderr)
    return i * 10 + j


@env.task
async def mid(i: int) -> int:
    print(f"mid {i}")
    return sum(await asyncio.gather(*(leaf(i, j) for j in range(3))))


@env.task
async def main(pause: float = 0.0) -> int:
    print("main starts")
    total = sum(await asyncio.gather(*(mid(i) for i in range(3))))
    await asyncio.sleep(pause)
    print("main ends")
    return total


if __name__ == "__main__":
    run = flyte.run(main, pause=float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)
    print(run.name, flush=True)
    run.wait()
    print("result", run.outputs()[0])
