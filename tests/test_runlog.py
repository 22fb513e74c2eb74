"""Tracing across hops in a run's log file, and `reuse-runtime logs`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reuse_runtime import runlog
from reuse_runtime.errors import ReuseRuntimeError
from reuse_runtime.model import LogLine
from tests.helpers import subprocess_env
from tests.tmux import terminal

SCRIPT = str(Path(__file__).parent / "sdk" / "trace_script.py")


def _run_script(home: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(REUSE_RUNTIME_HOME=str(home)),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[0]


def _logs(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reuse_runtime", "logs", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(REUSE_RUNTIME_HOME=str(home)),
    )


def test_every_line_names_its_run_task_parent_and_replica(tmp_path: Path) -> None:
    """One grep of a task id finds that task's lines and its children's."""
    home = tmp_path / "home"
    run = _run_script(home)
    text = (home / "runs" / f"{run}.log").read_text()
    lines = [parsed for raw in text.splitlines() if (parsed := runlog.parse_line(raw))]
    assert len(lines) == 1 + 1 + 3 + 9 + 3  # main twice, 3 mids, 9 leaves, 3 warnings
    assert {line.run for line in lines} == {run}
    assert all(line.replica.startswith("traced-") for line in lines)
    (main,) = {line.action for line in lines if line.task == "main"}
    assert {line.parent for line in lines if line.task == "main"} == {"-"}
    mids = {line.action: line.text for line in lines if line.task == "mid"}
    assert {line.parent for line in lines if line.task == "mid"} == {main}
    for mid_action, mid_text in mids.items():
        # grep for the mid's id: the mid itself, then its three leaves (and their warning).
        tree = [raw for raw in text.splitlines() if mid_action in raw]
        i = mid_text.split()[1]
        leaves = sorted(runlog.parse_line(raw).text for raw in tree[1:])  # type: ignore[union-attr]
        assert leaves == sorted([f"leaf {i}.0", f"leaf {i}.1", f"leaf {i}.1 warns", f"leaf {i}.2"])
    warnings = [line for line in lines if line.stderr]
    assert len(warnings) == 3 and all(w.text.endswith("warns") for w in warnings)
    assert text.splitlines()[-1].startswith(f"run {run} succeeded")

    # `logs RUN --task NAME`: that task's lines, plus the run's first and last line.
    shown = _logs(home, run, "--task", "mid")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout.splitlines()
    assert out[0].startswith(f"run {run}: task ") and out[-1].startswith(f"run {run} succeeded")
    assert sorted(runlog.parse_line(x).text for x in out[1:-1]) == ["mid 0", "mid 1", "mid 2"]  # type: ignore[union-attr]
    # No RUN: the latest run. Piped: the file as it is, no colour.
    latest = _logs(home)
    assert latest.stdout == text and "\x1b[" not in latest.stdout


def test_logs_follow_shows_lines_as_the_run_writes_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    # The run pauses 3 s before it ends: `logs --follow` starts well before that.
    with subprocess.Popen(
        [sys.executable, SCRIPT, "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=subprocess_env(REUSE_RUNTIME_HOME=str(home)),
    ) as script:
        assert script.stdout is not None
        run = script.stdout.readline().strip()
        log = home / "runs" / f"{run}.log"
        assert "succeeded" not in log.read_text()
        follow = _logs(home, run, "--follow")
        script.communicate(timeout=60)
    assert script.returncode == 0
    assert follow.returncode == 0, follow.stderr
    assert follow.stdout.splitlines()[-1].startswith(f"run {run} succeeded")
    assert "main ends" in follow.stdout


def test_logs_are_coloured_on_a_terminal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run = _run_script(home)
    command = [sys.executable, "-m", "reuse_runtime", "logs", run]
    with terminal(command, REUSE_RUNTIME_HOME=str(home), width=250) as term:
        screen = term.wait_for(lambda s: "EXIT=" in s, 60, "logs to end")
        coloured = term.screen(escapes=True)
    assert "EXIT=0" in screen
    assert "[leaf]" in screen and "\x1b[" in coloured


def test_follow_stops_when_the_runs_process_is_gone(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    path = tmp_path / "r1.log"
    path.write_text(f"run r1: task main on controller 127.0.0.1:1 (embedded), pid {gone}\n")
    lines = list(runlog.follow(path, follow=True, poll=0.01))
    assert lines[-1].startswith("(the process that ran this run")


def test_line_format_round_trips_and_unknown_runs_say_what_exists(tmp_path: Path) -> None:
    line = LogLine("t2", "leaf", "r1", "stderr", "a: b ] c", "t1", "env-1-abcd")
    parsed = runlog.parse_line(runlog.format_line(line, at=0.0))
    assert parsed is not None
    assert (parsed.task, parsed.run, parsed.action, parsed.parent, parsed.replica) == (
        "leaf", "r1", "t2", "t1", "env-1-abcd",
    )  # fmt: skip
    assert parsed.stderr and parsed.text == "a: b ] c"
    root = runlog.parse_line(runlog.format_line(LogLine("t1", "main", "r1", "stdout", "x")))
    assert root is not None and root.parent == "-" and not root.stderr
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "r-old.log").write_text("run r-old: ...\n")
    with pytest.raises(ReuseRuntimeError, match=r"no run named 'r-new'.*recent runs: r-old"):
        runlog.find_run_log(runs, "r-new")
    assert runlog.find_run_log(runs, None).name == "r-old.log"
    assert runlog.find_run_log(runs, (runs / "r-old.log").as_uri()).name == "r-old.log"
    # Run.url while a web UI serves the run: its page names it.
    page = "http://127.0.0.1:50080/runs/r-old?tab=timeline"
    assert runlog.find_run_log(runs, page).name == "r-old.log"
    assert runlog.run_name_of("https://ui.example/runs/a%20b/actions/x") == "a b"
    with pytest.raises(ReuseRuntimeError, match="no runs yet"):
        runlog.find_run_log(tmp_path / "none", None)
    assert os.path.exists(runs / "r-old.log")
