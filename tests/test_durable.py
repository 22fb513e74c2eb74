"""``flyte.durable``: time, now and sleep as traced calls, sync and ``.aio``."""

from __future__ import annotations

import asyncio
import datetime
import time
from pathlib import Path

import reuse_runtime as flyte
import reuse_runtime.durable
from reuse_runtime import runlog
from tests.helpers import run_python


def test_outside_a_task_they_are_the_clock() -> None:
    before = time.time()
    assert before <= reuse_runtime.durable.time() <= time.time()
    assert before <= asyncio.run(reuse_runtime.durable.time.aio()) <= time.time()
    assert isinstance(reuse_runtime.durable.now(), datetime.datetime)
    assert isinstance(asyncio.run(reuse_runtime.durable.now.aio()), datetime.datetime)
    started = time.monotonic()
    reuse_runtime.durable.sleep(0.05)
    asyncio.run(reuse_runtime.durable.sleep.aio(0.05))
    assert time.monotonic() - started >= 0.1
    assert repr(flyte.durable.sleep) == "<function flyte.durable.sleep>"


def test_tasks_call_them_sync_and_async_and_each_call_is_traced(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        """
        import asyncio, time
        import reuse_runtime as flyte
        import reuse_runtime.durable
        from reuse_runtime import paths, runlog

        env = flyte.TaskEnvironment(name="durable", reusable=flyte.ReusePolicy(replicas=1))

        @env.task
        async def in_async() -> float:
            t = await flyte.durable.time.aio()
            dt = await flyte.durable.now.aio()
            started = time.monotonic()
            # Eight sleeps at once: .aio holds no thread, so they overlap.
            await asyncio.gather(*(flyte.durable.sleep.aio(0.5) for _ in range(8)))
            assert abs(dt.timestamp() - t) < 5
            return time.monotonic() - started

        @env.task
        def in_sync() -> float:
            assert flyte.durable.now().year > 2000 and flyte.durable.time() > 0
            started = time.monotonic()
            flyte.durable.sleep(0.2)
            return time.monotonic() - started

        @env.task
        async def main() -> list:
            return list(await asyncio.gather(in_async(), in_sync.aio()))

        if __name__ == "__main__":
            r = flyte.run(main)
            print(r.outputs()[0])
            print(open(runlog.find_run_log(paths.state_dir() / "runs", r.name)).read())
        """,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    slept_async, slept_sync = eval(lines[0])
    assert 0.45 <= slept_async < 2.0  # eight 0.5 s sleeps, together
    assert slept_sync >= 0.19
    traced = [
        (line.task, line.text.split(":")[0])
        for line in map(runlog.parse_line, lines[1:])
        if line is not None and line.stream == "trace"
    ]
    assert traced.count(("in_async", "trace sleep_start")) == 8
    for name in ("durable_time", "durable_now", "sleep_start"):
        assert ("in_sync", f"trace {name}") in traced
        assert ("in_async", f"trace {name}") in traced
