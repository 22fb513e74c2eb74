"""Cold: a fresh Python process per task, with no runtime at all.

    python -m benchmarks.cold_process --tasks 100 [--init-s 1] [--parallel 4]

Each task is ``python -c`` that reads ``cloudpickle.dumps(((i,), {}))`` on stdin,
runs the noop and writes the pickled result on stdout. ``--init-s`` makes each
process sleep first, standing for loading a model at import. ``--parallel``
processes run at once (by default as many as the runtime's non-reusable
environments may, ``NON_REUSABLE_MAX_REPLICAS``). Reports one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import cloudpickle

from benchmarks.harness import ROOT, emit, env
from reuse_runtime.sdk.environment import NON_REUSABLE_MAX_REPLICAS

CODE = """\
import asyncio, sys, time
import cloudpickle
time.sleep({init_s})
from benchmarks.workloads import noop
args, kwargs = cloudpickle.loads(sys.stdin.buffer.read())
sys.stdout.buffer.write(cloudpickle.dumps(asyncio.run(noop(*args, **kwargs))))
"""

TIMEOUT_S = 60.0


async def one(i: int, code: str, semaphore: asyncio.Semaphore) -> int:
    async with semaphore:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env(),
            cwd=str(ROOT),
        )
        try:
            out, _ = await asyncio.wait_for(
                process.communicate(cloudpickle.dumps(((i,), {}))), TIMEOUT_S
            )
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if process.returncode != 0:
            raise RuntimeError(f"task {i} exited with {process.returncode}")
        return int(cloudpickle.loads(out))


async def measure(tasks: int, init_s: float, parallel: int) -> dict[str, Any]:
    code = CODE.format(init_s=init_s)
    semaphore = asyncio.Semaphore(parallel)
    began = time.perf_counter()
    results = await asyncio.gather(*(one(i, code, semaphore) for i in range(tasks)))
    wall_s = time.perf_counter() - began
    if sum(results) != tasks * (tasks - 1) // 2:
        raise RuntimeError("wrong sum of results")
    return {
        "tasks": tasks,
        "init_s": init_s,
        "parallel": parallel,
        "wall_s": wall_s,
        "tasks_per_s": tasks / wall_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--init-s", type=float, default=0.0)
    parser.add_argument("--parallel", type=int, default=NON_REUSABLE_MAX_REPLICAS)
    args = parser.parse_args()
    emit(asyncio.run(measure(args.tasks, args.init_s, args.parallel)))


if __name__ == "__main__":
    main()
