"""A driver killed with kill -9 leaves no replica behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.helpers import subprocess_env

SCRIPT = """
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


def test_replicas_exit_when_their_driver_is_killed(tmp_path: Path) -> None:
    """Their stderr pipe breaks with the controller: logging that must not stop the exit."""
    path = tmp_path / "driver.py"
    path.write_text(SCRIPT)
    driver = subprocess.Popen(
        [sys.executable, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(REUSE_RUNTIME_HOME=str(tmp_path / "home")),
    )
    try:
        assert driver.stdout is not None
        seen = 0
        deadline = time.monotonic() + 30
        while seen < 2 and time.monotonic() < deadline:
            seen += "hanging" in driver.stdout.readline()
        assert seen == 2, "the tasks never started"
        replicas = psutil.Process(driver.pid).children()
        assert len(replicas) == 2
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        _, alive = psutil.wait_procs(replicas, timeout=20)
        assert not alive, f"replicas outlived their driver: {alive}"
    finally:
        if driver.poll() is None:
            driver.kill()
        driver.wait(10)
        if driver.stdout is not None:
            driver.stdout.close()
        for child in psutil.Process().children(recursive=True):
            if "reuse_runtime" in " ".join(child.cmdline()):
                child.kill()
