"""A driver killed with kill -9 leaves no replica behind: each exits within its grace."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers import stop_process, subprocess_env

HANGING = """
import asyncio
import reuse_runtime as flyte

env = flyte.TaskEnvironment(name="orphans", reusable=flyte.ReusePolicy(replicas=2, concurrency=2))

@env.task
async def hang() -> None:
    print("hanging", flush=True)
    await asyncio.sleep(3600)

@env.task
async def main() -> None:
    await asyncio.gather(hang(), hang())

if __name__ == "__main__":
    run = flyte.run(main)
    run.wait()
"""

STUBBORN = """
import asyncio, contextlib
import reuse_runtime as flyte

env = flyte.TaskEnvironment(
    name="stubborn", reusable=flyte.ReusePolicy(replicas=1, concurrency=2), stop_grace=2
)

@env.task
async def ignores_cancel() -> None:
    print("started", flush=True)
    while True:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)

if __name__ == "__main__":
    flyte.run(ignores_cancel).wait()
"""

LOADED = """
import asyncio
import reuse_runtime as flyte

env = flyte.TaskEnvironment(
    name="loaded", reusable=flyte.ReusePolicy(replicas=(2, 4), concurrency=8)
)

@env.task
async def work(i: int) -> int:
    await asyncio.sleep(0.01)
    return i

@env.task
async def main(n: int) -> int:
    print("started", flush=True)
    return sum(await asyncio.gather(*(work(i) for i in range(n))))

if __name__ == "__main__":
    flyte.run(main, n=50_000).wait()
"""


def _kill_driver_and_count_survivors(
    tmp_path: Path, script: str, ready: str, lines: int, after: float = 0.0, within: float = 15.0
) -> list[psutil.Process]:
    """Start the driver, wait for `lines` ready lines, kill -9 it; the replicas alive `within` s
    later."""
    path = tmp_path / "driver.py"
    path.write_text(script)
    driver = subprocess.Popen(
        [sys.executable, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(REUSE_RUNTIME_HOME=str(tmp_path / "home")),
    )
    replicas: list[psutil.Process] = []
    try:
        assert driver.stdout is not None
        seen = 0
        deadline = time.monotonic() + 30
        while seen < lines and time.monotonic() < deadline:
            seen += ready in driver.stdout.readline()
        assert seen == lines, "the tasks never started"
        time.sleep(after)
        replicas = psutil.Process(driver.pid).children()
        assert replicas
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        _, alive = psutil.wait_procs(replicas, timeout=within)
        return alive
    finally:
        stop_process(driver)
        for replica in replicas:  # only what this test started, by pid
            if replica.is_running():
                replica.kill()


def test_replicas_exit_when_their_driver_is_killed(tmp_path: Path) -> None:
    """Their stderr pipe breaks with the controller: logging that must not stop the exit."""
    alive = _kill_driver_and_count_survivors(tmp_path, HANGING, "hanging", 2, within=20)
    assert not alive, f"replicas outlived their driver: {alive}"


def test_a_task_that_ignores_cancellation_does_not_keep_its_replica_alive(tmp_path: Path) -> None:
    """The replica exits within its grace (2 s here) even when a task will not stop."""
    alive = _kill_driver_and_count_survivors(tmp_path, STUBBORN, "started", 1, within=10)
    assert not alive, f"a replica outlived its driver: {alive}"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_no_replica_outlives_a_driver_killed_under_load_20_tries(tmp_path: Path) -> None:
    rng = random.Random(10)
    survivors = []
    for attempt in range(20):
        where = tmp_path / f"try-{attempt}"
        where.mkdir()
        alive = _kill_driver_and_count_survivors(
            where, LOADED, "started", 1, after=rng.uniform(0.5, 2.5), within=15
        )
        survivors.append(len(alive))
    print(f"\ndriver kill -9 under load: replicas alive 15 s later, per try: {survivors}")
    assert sum(survivors) == 0, survivors
