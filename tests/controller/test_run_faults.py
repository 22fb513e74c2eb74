"""Runs under bad input and faults: unknown and reused names, a full disk, a corrupt store,
a second controller on one state dir, a failed run's record. Real controller processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import (
    ROOT,
    fill_filesystem,
    run_cli,
    start_controller,
    stop_process,
    subprocess_env,
)

STARTER = """
import sys
import reuse_runtime as flyte
from tests.controller import run_tasks

flyte.init()
kind = sys.argv[1]
try:
    if kind == "fails":
        run = flyte.run(run_tasks.fails, why="on purpose")
    else:
        run = flyte.with_runcontext(name=sys.argv[2]).run(
            run_tasks.parent, n=2, seconds=0.01, counts=sys.argv[3]
        )
except Exception as e:
    print("refused", type(e).__name__, e, flush=True)
    raise SystemExit(3)
print(run.name, flush=True)
run.wait(quiet=True)
print(run.phase.value, flush=True)
"""


def _start(home: Path, address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", STARTER, *args],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
        env=subprocess_env(REUSE_RUNTIME_HOME=str(home), REUSE_RUNTIME_ENDPOINT=address),
    )


@pytest.mark.timeout(120)
def test_names_unknown_and_reused_and_a_failed_runs_record(tmp_path: Path) -> None:
    home, counts = tmp_path / "home", tmp_path / "counts"
    counts.mkdir()
    controller = start_controller(home)
    address = controller.address
    try:
        first = _start(home, address, "named", "nightly", str(counts))
        again = _start(home, address, "named", "nightly", str(counts))
        failed = _start(home, address, "fails")
        bogus = run_cli(tmp_path, "get", "run", "bogus", REUSE_RUNTIME_ENDPOINT=address)
        logs = run_cli(tmp_path, "get", "logs", "bogus", REUSE_RUNTIME_ENDPOINT=address)
        name = failed.stdout.split()[0]
        shown = run_cli(tmp_path, "get", "run", name, "--json", REUSE_RUNTIME_ENDPOINT=address)
        listed = run_cli(tmp_path, "get", "run", REUSE_RUNTIME_ENDPOINT=address)
        io = run_cli(tmp_path, "get", "io", "nightly", REUSE_RUNTIME_ENDPOINT=address)
    finally:
        stop_process(controller.process, signal.SIGTERM)
    assert first.stdout.splitlines() == ["nightly", "succeeded"], first.stderr
    # The same name again: refused in one line, and the first run's log is its own.
    assert again.returncode == 3
    assert again.stdout.startswith("refused RunAlreadyExistsError a run named 'nightly' already")
    assert "Traceback" not in again.stderr
    assert (
        (home / "runs" / "nightly.log")
        .read_text()
        .splitlines()[-1]
        .startswith("run nightly succeeded")
    )
    # An unknown name: one line naming the recent runs.
    for unknown in (bogus, logs):
        assert unknown.returncode == 2
        assert unknown.stderr.count("\n") == 1, unknown.stderr
        assert "no run named 'bogus'; recent runs: " in unknown.stderr
        assert "nightly" in unknown.stderr and name in unknown.stderr
    # A failed run keeps its error's type, message and traceback.
    assert failed.stdout.splitlines() == [name, "failed"], failed.stderr
    run = json.loads(shown.stdout)["run"]
    assert run["phase"] == "failed"
    assert run["error"]["type"] == "builtins.ValueError"
    assert run["error"]["message"] == "it fails: on purpose"
    assert 'raise ValueError(f"it fails: {why}")' in run["error"]["traceback"]
    assert listed.stdout.splitlines()[0].split() == [
        "NAME", "PHASE", "TASK", "CREATED", "DURATION", "ACTIONS", "USER",
    ]  # fmt: skip
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == [name, "nightly"]
    assert io.stdout.splitlines() == [
        "inputs:",
        "  n = 2",
        "  seconds = 0.01",
        f"  counts = {str(counts)!r}",
        "outputs:",
        "  o0 = 1",
    ], io.stderr


@pytest.mark.timeout(60)
def test_a_corrupt_store_is_moved_aside_and_a_second_controller_refused(tmp_path: Path) -> None:
    home, state = tmp_path / "home", tmp_path / "state"
    state.mkdir()
    (state / "runs.sqlite").write_bytes(b"this is not a database" * 100)
    process = subprocess.Popen(
        [sys.executable, "-m", "reuse_runtime", "controller", "--port", "0", "--state-dir",
         str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=subprocess_env(REUSE_RUNTIME_HOME=str(home)),
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline().startswith("listening on ")
        notice = ""
        while "runs store" not in notice:
            notice = process.stderr.readline()
        second = subprocess.run(
            [sys.executable, "-m", "reuse_runtime", "controller", "--port", "0",
             "--state-dir", str(state)],
            capture_output=True,
            text=True,
            timeout=60,
            env=subprocess_env(REUSE_RUNTIME_HOME=str(home)),
        )  # fmt: skip
    finally:
        stop_process(process, signal.SIGTERM)
    moved = [p.name for p in state.iterdir() if p.name.startswith("runs.sqlite.corrupt-")]
    assert len(moved) == 1
    assert notice.startswith(
        f"reuse-runtime controller: the runs store {state / 'runs.sqlite'} could not be used ("
    )
    assert f"moved it to {state / moved[0]} and started an empty one" in notice
    assert second.returncode == 2
    assert second.stderr.strip() == (
        f"reuse-runtime controller: error: the runs store in {state} is in use by a controller "
        f"(pid {process.pid}); stop it, or give this controller another state dir (--state-dir)"
    )


@pytest.mark.timeout(120)
def test_a_full_disk_refuses_new_runs_and_loses_nothing_recorded(
    tmp_path: Path, small_filesystem: Path
) -> None:
    home, counts = tmp_path / "home", tmp_path / "counts"
    counts.mkdir()
    state = small_filesystem / "state"
    controller = start_controller(home, "--state-dir", str(state))
    address = controller.address
    try:
        before = _start(home, address, "named", "before", str(counts))
        filler = fill_filesystem(small_filesystem)
        refused = _start(home, address, "named", "during", str(counts))
        shown = run_cli(tmp_path, "get", "run", "before", REUSE_RUNTIME_ENDPOINT=address)
        status = run_cli(tmp_path, "status", "--endpoint", address)
        filler.unlink()  # space comes back
        after = _start(home, address, "named", "after", str(counts))
        listed = run_cli(tmp_path, "get", "run", REUSE_RUNTIME_ENDPOINT=address)
    finally:
        stop_process(controller.process, signal.SIGTERM)
    assert before.stdout.splitlines() == ["before", "succeeded"], before.stderr
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert refused.stdout.startswith("refused RunsStoreFullError the controller cannot record")
    assert f"no space left for the runs store at {state / 'runs.sqlite'}" in refused.stdout
    assert "phase:        SUCCEEDED" in shown.stdout, shown.stderr  # earlier runs readable
    assert status.returncode == 0, status.stderr  # the controller is up
    assert after.stdout.splitlines() == ["after", "succeeded"], after.stderr
    assert [line.split()[:2] for line in listed.stdout.splitlines()[1:]] == [
        ["after", "SUCCEEDED"],
        ["before", "SUCCEEDED"],
    ]
