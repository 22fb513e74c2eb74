"""One Ctrl-C in ``Run.wait()`` does one thing and says it in one line, with no traceback:
with the embedded controller (the process itself) it cancels the run; against a standalone
controller it stops waiting, and the run goes on there. ``reuse-runtime run`` too."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_cli, start_controller, stop_process, subprocess_env

SCRIPT = """
import asyncio
import reuse_runtime as flyte

env = flyte.TaskEnvironment(name="ctrlc", reusable=flyte.ReusePolicy(replicas=1))

@env.task
async def forever() -> None:
    print("started", flush=True)
    await asyncio.sleep(3600)

if __name__ == "__main__":
    flyte.init()
    r = flyte.run(forever)
    print(r.name, flush=True)
    r.wait()
    print("never here", flush=True)
"""


def _interrupt(script: Path, home: Path, *args: str, **env: str) -> tuple[str, str, int, str]:
    process = subprocess.Popen(
        [sys.executable, *args] if args else [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=script.parent,
        env=subprocess_env(REUSE_RUNTIME_HOME=str(home), PYTHONPATH=str(ROOT), **env),
    )
    try:
        assert process.stdout is not None
        name = ""
        while True:
            line = process.stdout.readline()
            assert line, "the script ended before its task started"
            if line.startswith("r") and not name:
                name = line.strip()
            if "started" in line:
                break
        process.send_signal(signal.SIGINT)  # once
        out, err = process.communicate(timeout=60)
    finally:
        stop_process(process)
    return name, err, process.returncode, out


@pytest.mark.timeout(120)
def test_one_ctrl_c_cancels_an_embedded_run_in_one_line(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    home = tmp_path / "home"
    name, err, code, out = _interrupt(script, home)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [
        f"reuse-runtime: cancelled {name} (Ctrl-C): its controller is this process; for runs "
        f"that go on without it, start `reuse-runtime controller`"
    ], err
    assert code != 0 and "never here" not in out
    assert (
        (home / "runs" / f"{name}.log")
        .read_text()
        .splitlines()[-1]
        .startswith(f"run {name} cancelled")
    )
    # Recorded in the local store: read back with no controller running.
    shown = run_cli(tmp_path, "get", "run", name)
    assert "phase:        ABORTED" in shown.stdout, shown.stderr


@pytest.mark.timeout(120)
def test_one_ctrl_c_lets_a_standalone_controllers_run_go_on(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    home = tmp_path / "home"
    # Its run sleeps for an hour: at the end, the default drain would wait 30 s for it.
    controller = start_controller(home, "--drain-grace", "1")
    try:
        name, err, code, out = _interrupt(script, home, REUSE_RUNTIME_ENDPOINT=controller.address)
        shown = run_cli(tmp_path, "get", "run", name, REUSE_RUNTIME_ENDPOINT=controller.address)
    finally:
        stop_process(controller.process, signal.SIGTERM)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [
        f"reuse-runtime: stopped waiting for run {name} (Ctrl-C); it goes on at the controller "
        f"at {controller.address}: `reuse-runtime abort run {name}` stops it"
    ], err
    assert code != 0 and "never here" not in out
    assert "phase:        RUNNING" in shown.stdout, shown.stdout + shown.stderr


@pytest.mark.timeout(120)
def test_one_ctrl_c_in_reuse_runtime_run_says_one_line(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    name, err, code, _ = _interrupt(
        script, tmp_path / "home", "-m", "reuse_runtime", "run", str(script), "forever"
    )
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [
        f"reuse-runtime: cancelled {name} (Ctrl-C): its controller is this process; for runs "
        f"that go on without it, start `reuse-runtime controller`"
    ], err
    assert code == 130
