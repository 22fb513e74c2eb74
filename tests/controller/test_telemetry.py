"""The pool's telemetry, pure: loss causes, and a run's progress counts."""

from __future__ import annotations

import signal

from reuse_runtime.backends.base import ExitStatus
from reuse_runtime.controller.telemetry import ENDED_RUNS, RunTable, loss_cause
from reuse_runtime.model import TaskResult, TaskState


def test_loss_causes_name_how_the_replica_ended() -> None:
    assert loss_cause(ExitStatus(oom=True, signal=signal.SIGKILL)) == "oom"
    assert loss_cause(ExitStatus(signal=signal.SIGKILL)) == "signal"
    assert loss_cause(ExitStatus(signal=signal.SIGKILL, by_runtime=True)) == "disconnected"
    assert loss_cause(ExitStatus(code=3)) == "exit"
    assert loss_cause(ExitStatus(code=0)) == "exit"
    assert loss_cause(ExitStatus(code=0), draining=True) == "drained"
    assert loss_cause(None) == "disconnected"
    assert loss_cause(ExitStatus(detail="?")) == "unknown"


def _result(state: TaskState) -> TaskResult:
    return TaskResult("t", state)


def test_a_run_counts_its_children_and_keeps_its_final_counts() -> None:
    runs = RunTable()
    root = runs.opened("r1", child=False)
    children = [runs.opened("r1", child=True) for _ in range(3)]
    runs.held("r1", 5)
    runs.held("r1", -2)
    progress = runs.progress("r1")
    assert (progress.children, progress.held, progress.total) == (3, 3, 6)
    runs.closed(children[0], _result(TaskState.SUCCEEDED), child=True)
    runs.closed(children[1], _result(TaskState.FAILED), child=True)
    runs.closed(children[2], _result(TaskState.TIMED_OUT), child=True)
    assert (runs.progress("r1").succeeded, runs.progress("r1").failed) == (1, 2)
    assert not runs.progress("r1").ended
    runs.closed(root, _result(TaskState.SUCCEEDED), child=False)
    final = runs.progress("r1")
    assert final.found and final.ended and final.finished == 3 and final.succeeded == 1
    assert len(runs) == 0
    runs.held("r1", 4)  # an ended run takes no more
    assert runs.progress("r1") == final
    assert not runs.progress("never").found


def test_ended_runs_are_kept_up_to_a_bound() -> None:
    runs = RunTable()
    for i in range(ENDED_RUNS + 10):
        runs.closed(runs.opened(f"r{i}", child=False), _result(TaskState.SUCCEEDED), child=False)
    assert not runs.progress("r0").found
    assert runs.progress(f"r{ENDED_RUNS + 9}").ended
