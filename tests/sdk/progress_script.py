"""A run that fans out to many children, some printing, some failing (test_progress)."""

import asyncio
import sys

import reuse_runtime as flyte

env = flyte.TaskEnvironment(name="fan", reusable=flyte.ReusePolicy(replicas=2, concurrency=100))


@env.task
async def leaf(i: int) -> int:
    if i % 2000 == 0:
        print(f"leaf {i} says hello, and this line stays whole")
    if i % 5000 == 1:
        raise ValueError(f"leaf {i} fails")
    await asyncio.sleep(0.005)
    return i


@env.task
async def main(n: int) -> int:
    results = await asyncio.gather(*(leaf(i) for i in range(n)), return_exceptions=True)
    return sum(r for r in results if isinstance(r, int))


if __name__ == "__main__":
    run = flyte.run(main, n=int(sys.argv[1]))
    run.wait()
    print("result", run.outputs()[0])


@env.task
async def slow_leaf(i: int) -> int:
    await asyncio.sleep(0.01)
    return i


@env.task
async def slow_fan(n: int) -> int:
    return sum(await asyncio.gather(*(slow_leaf(i) for i in range(n))))
