"""Runs recorded by the embedded controller in the local store: a retried action's
attempts, and a run name two scripts both want."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.helpers import ROOT, run_cli, run_python, start_controller, stop_process

RETRIED = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import reuse_runtime as flyte
from tests.controller import run_tasks as t

flyte.init()
run = flyte.with_runcontext(name="retried").run(t.flaky, counts=sys.argv[1])
run.wait()
print("outputs", run.outputs()[0])
"""

READ = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from reuse_runtime.store import SqliteRunReader, StoreSettings

reader = SqliteRunReader(StoreSettings.from_env().path)
(action,) = reader.list_actions("retried").items
print("action", action.phase.value, action.replica != "")
first, second = action.attempts
print("first", first.attempt, first.phase.value, first.error.type, first.error.message)
print("second", second.attempt, second.phase.value, second.error)
print("replicas", first.replica != "", second.replica == action.replica)
print("times", 0 < first.started <= first.ended <= second.started <= second.ended)
print("action times", action.started == first.started, action.ended == second.ended)
"""


def test_a_retried_action_is_recorded_with_each_attempt(tmp_path: Path) -> None:
    counts = tmp_path / "counts"
    counts.mkdir()
    ran = run_python(tmp_path, RETRIED, str(counts))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[-1] == "outputs second time lucky", ran.stdout
    read = run_python(tmp_path, READ, name="read.py")
    assert read.returncode == 0, read.stderr
    assert read.stdout.splitlines() == [
        "action succeeded True",
        "first 1 failed builtins.ValueError the first attempt fails",
        "second 2 succeeded None",
        "replicas True True",
        "times True",
        "action times True True",
    ], read.stderr


NAMED = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import reuse_runtime as flyte
from tests.controller import run_tasks as t

flyte.init()
try:
    run = flyte.with_runcontext(name="nightly").run(t.parent, n=1, seconds=0.0, counts=sys.argv[1])
    run.wait()
    print("ran", run.outputs()[0])
except flyte.errors.RunAlreadyExistsError as exc:
    print("refused:", exc)
"""


def test_a_run_name_another_script_used_is_refused_in_one_line(tmp_path: Path) -> None:
    counts = tmp_path / "counts"
    counts.mkdir()
    first = run_python(tmp_path, NAMED, str(counts), name="first.py")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == "ran 0", first.stdout
    second = run_python(tmp_path, NAMED, str(counts), name="second.py")
    assert second.returncode == 0, second.stderr
    refused = [line for line in second.stdout.splitlines() if line.startswith("refused:")]
    assert len(refused) == 1, second.stdout
    assert refused[0].startswith("refused: a run named 'nightly' already exists (succeeded"), (
        refused
    )
    assert "another name" in refused[0]
    assert len((counts / "0").read_text().splitlines()) == 1  # the second one never ran


SQUARES = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import reuse_runtime as flyte
from tests.controller import run_tasks as t

flyte.init()  # $REUSE_RUNTIME_ENDPOINT, else the embedded controller
run = flyte.with_runcontext(name=sys.argv[1]).run(t.parent, n=2, seconds=0.0, counts=sys.argv[2])
run.wait()
print("result", run.outputs()[0])
"""


def test_logs_with_no_endpoint_asks_the_controller_on_the_default_port_then_the_file(
    tmp_path: Path,
) -> None:
    counts = tmp_path / "counts"
    counts.mkdir()
    controller = start_controller(tmp_path / "home")
    try:
        there = run_python(
            tmp_path,
            SQUARES,
            "at-controller",
            str(counts),
            REUSE_RUNTIME_ENDPOINT=controller.address,
        )
        assert there.stdout.splitlines()[-1] == "result 1", there.stderr
        here = run_python(tmp_path, SQUARES, "embedded", str(counts), name="embedded.py")
        assert here.stdout.splitlines()[-1] == "result 1", here.stderr
        # No endpoint: the controller on the default port (here, the test's) is asked.
        port = {"REUSE_RUNTIME_CONTROLLER_PORT": str(controller.port)}
        remote = run_cli(tmp_path, "logs", "at-controller", **port)
        assert remote.returncode == 0, remote.stderr
        lines = remote.stdout.splitlines()
        assert (
            lines[0] == f"run at-controller: task parent on the controller at {controller.address}"
        )
        assert "parent starts" in remote.stdout and lines[-1].startswith(
            "run at-controller succeeded"
        )
        # A run it does not know (an embedded one): this machine's log file.
        local = run_cli(tmp_path, "logs", "embedded", **port)
        assert local.returncode == 0, local.stderr
        assert "on the controller" not in local.stdout
        assert "parent starts" in local.stdout
        assert local.stdout.splitlines()[-1].startswith("run embedded succeeded"), local.stdout
        # Neither knows it: one line, from the file's side, naming recent runs.
        missing = run_cli(tmp_path, "logs", "nowhere", **port)
        assert missing.returncode != 0
        assert missing.stderr.count("\n") == 1 and "no run named 'nowhere'" in missing.stderr
    finally:
        stop_process(controller.process, signal.SIGTERM)
