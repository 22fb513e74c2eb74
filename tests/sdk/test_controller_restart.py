"""A driver whose standalone controller restarts says so in one line, and follows its run,
which the restarted controller finishes (it owns the run, not the driver)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import start_controller, stop_process, subprocess_env

DRIVER = """
import asyncio
import reuse_runtime as flyte

env = flyte.TaskEnvironment(name="survivor", reusable=flyte.ReusePolicy(replicas=2, concurrency=8))

@env.task
async def leaf(i: int) -> int:
    if i == 0:
        print("children running", flush=True)
    await asyncio.sleep(0.01)
    return i

@env.task
async def main(n: int) -> int:
    print("fanning out", flush=True)
    return sum(await asyncio.gather(*(leaf(i) for i in range(n))))

if __name__ == "__main__":
    flyte.init()  # $REUSE_RUNTIME_ENDPOINT; the token is found in the state directory
    run = flyte.run(main, n=3000)
    print(run.name, flush=True)
    run.wait()
    print("result", run.outputs()[0], flush=True)
"""


@pytest.mark.parametrize(
    "how", [pytest.param(signal.SIGKILL, marks=pytest.mark.slow), signal.SIGTERM]
)
@pytest.mark.timeout(180)
def test_the_driver_waits_for_its_controller_and_finishes(tmp_path: Path, how: int) -> None:
    home = tmp_path / "home"
    controller = start_controller(home)  # no token: it makes one, recorded in home
    (tmp_path / "driver.py").write_text(DRIVER)
    driver = subprocess.Popen(
        [sys.executable, str(tmp_path / "driver.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(REUSE_RUNTIME_HOME=str(home), REUSE_RUNTIME_ENDPOINT=controller.address),
    )
    try:
        assert driver.stdout is not None
        name = driver.stdout.readline()
        assert driver.stdout.readline() == "[main] fanning out\n"
        assert driver.stdout.readline() == "[leaf] children running\n"
        stop_process(controller.process, how)
        time.sleep(1.0)
        # The restarted controller makes a new token; the driver finds it.
        controller = start_controller(home, port=controller.port)
        out, err = driver.communicate(timeout=120)
    finally:
        stop_process(driver)
        stop_process(controller.process, signal.SIGTERM)
    assert driver.returncode == 0, err
    assert out.splitlines()[-1] == f"result {sum(range(3000))}"
    lines = [line for line in err.splitlines() if line.startswith("reuse-runtime: ")]
    assert len(lines) == 2, err
    assert lines[0].startswith(f"reuse-runtime: lost the controller at {controller.address} (")
    assert "waiting for it to come back, up to 300 s" in lines[0]
    assert lines[1] == (
        f"reuse-runtime: the controller at {controller.address} is back; following run "
        f"{name.strip()} again"
    )
    assert "Traceback" not in err
