"""Runs the controller owns: they outlive their client and the controller itself.

Real processes throughout: a standalone controller (``reuse-runtime controller``), drivers
that start runs and are killed, other processes that find the runs by name, and the CLI.
The long versions of the issue's acceptance runs (60 children of 1 s) are marked slow;
the default suite runs the same scenarios smaller.
"""

from __future__ import annotations

import json
import math
import pickle
import signal
import time
from pathlib import Path

import pytest

from reuse_runtime.store import SqliteRunReader
from tests.helpers import (
    client_python,
    run_cli,
    start_controller,
    stop_process,
)

DRIVER = """
import sys
import reuse_runtime as flyte
from tests.controller import run_tasks

flyte.init()  # $REUSE_RUNTIME_ENDPOINT
run = flyte.run(run_tasks.parent, n=int(sys.argv[1]), seconds=float(sys.argv[2]),
                counts=sys.argv[3])
print(run.name, flush=True)
run.wait()
print("result", run.outputs()[0], flush=True)
"""

FOLLOWER = """
import sys
import reuse_runtime as flyte

flyte.init()
run = flyte.remote.Run.get(sys.argv[1])
print("found", run.name, flush=True)
print("result", run.outputs()[0], run.phase.value, flush=True)
"""


def _counts(counts: Path, n: int) -> list[int]:
    return [
        len((counts / str(i)).read_text().splitlines()) if (counts / str(i)).exists() else 0
        for i in range(n)
    ]


def _get_run(tmp_path: Path, address: str, name: str) -> dict[str, object]:
    shown = run_cli(tmp_path, "get", "run", name, "--json", REUSE_RUNTIME_ENDPOINT=address)
    assert shown.returncode == 0, shown.stderr
    found: dict[str, object] = json.loads(shown.stdout)
    return found


def _client_killed_mid_run(tmp_path: Path, n: int, seconds: float, kill_after: float) -> None:
    home, counts = tmp_path / "home", tmp_path / "counts"
    counts.mkdir()
    controller = start_controller(home)
    driver = follower = None
    try:
        driver = client_python(home, controller.address, DRIVER, str(n), str(seconds), str(counts))
        assert driver.stdout is not None
        name = driver.stdout.readline().strip()
        assert driver.stdout.readline() == "[parent] parent starts\n"
        time.sleep(kill_after)
        stop_process(driver)  # kill -9, mid-run
        assert sum(_counts(counts, n)) < n, "the run was over before its client was killed"
        follower = client_python(home, controller.address, FOLLOWER, name)
        out, err = follower.communicate(timeout=n * seconds + 60)
        assert follower.returncode == 0, err
        assert out.splitlines() == [
            f"found {name}",
            f"result {sum(i * i for i in range(n))} succeeded",
        ]
        shown = _get_run(tmp_path, controller.address, name)
        text = run_cli(tmp_path, "get", "run", name, REUSE_RUNTIME_ENDPOINT=controller.address)
        # What its tasks printed, from the controller: not from a file of the dead client.
        logs = run_cli(tmp_path, "logs", name, REUSE_RUNTIME_ENDPOINT=controller.address)
        got = run_cli(tmp_path, "get", "logs", name, REUSE_RUNTIME_ENDPOINT=controller.address)
        endpoint = {"REUSE_RUNTIME_ENDPOINT": controller.address}
        ok, bad = (
            run_cli(tmp_path, "get", "action", name, "--in-phase", phase, "--json", **endpoint)
            for phase in ("succeeded", "failed")
        )
    finally:
        for process in (driver, follower):
            if process is not None:
                stop_process(process)
        stop_process(controller.process, signal.SIGTERM)
    run = shown["run"]
    assert isinstance(run, dict) and run["phase"] == "succeeded"
    assert sum(run["counts"].values()) == n + 1  # the parent and its children
    assert len(shown["actions"]) == n + 1  # type: ignore[arg-type]
    assert "phase:        SUCCEEDED" in text.stdout
    assert f"actions:      {n + 1} ({n + 1} succeeded)" in text.stdout
    assert ok.returncode == 0 and bad.returncode == 0, ok.stderr + bad.stderr
    assert [a["phase"] for a in json.loads(ok.stdout)] == ["succeeded"] * (n + 1)
    assert json.loads(bad.stdout) == []
    assert _counts(counts, n) == [1] * n  # nothing ran twice
    lines = logs.stdout.splitlines()
    assert lines[0] == f"run {name}: task parent on the controller at {controller.address}"
    assert lines[-1].startswith(f"run {name} succeeded (")
    assert sorted(line.rpartition(": ")[2] for line in lines[1:-1]) == sorted(
        ["parent starts"] + [f"child {i} done" for i in range(n)]
    )
    assert sorted(got.stdout.splitlines()) == sorted(
        ["[parent] parent starts"] + [f"[child] child {i} done" for i in range(n)]
    )


@pytest.mark.timeout(120)
def test_a_client_killed_mid_run_leaves_it_running_and_another_process_gets_it(
    tmp_path: Path,
) -> None:
    _client_killed_mid_run(tmp_path, n=12, seconds=0.5, kill_after=1.0)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_client_killed_mid_run_60_children_of_1_s(tmp_path: Path) -> None:
    _client_killed_mid_run(tmp_path, n=60, seconds=1.0, kill_after=5.0)


def _controller_killed(
    tmp_path: Path,
    n: int,
    seconds: float,
    kill_at: float,
    restart_at: float,
    how: signal.Signals = signal.SIGKILL,
) -> None:
    """The controller is stopped (``how``: kill -9, or SIGTERM) mid-run with no client
    attached, and restarted on the same state dir: the run succeeds, no child recorded as
    finished runs again, and each child is recorded once."""
    home, counts = tmp_path / "home", tmp_path / "counts"
    counts.mkdir()
    # A short drain: SIGTERM gives running tasks a second, then hands the rest back.
    controller = start_controller(home, "--drain-grace", "1")
    port = controller.port
    driver = None
    try:
        driver = client_python(home, controller.address, DRIVER, str(n), str(seconds), str(counts))
        assert driver.stdout is not None
        name = driver.stdout.readline().strip()
        assert driver.stdout.readline() == "[parent] parent starts\n"
        started = time.monotonic()  # the run's work starts: times count from here
        stop_process(driver)  # no client attached from here on
        time.sleep(max(0.0, kill_at - (time.monotonic() - started)))
        stop_process(controller.process, how)  # mid-run
        recorded = SqliteRunReader(home / "controller" / "runs.sqlite")
        finished = {  # which children: each returned i * i
            math.isqrt(pickle.loads(recorded.action_output(name, a.action_id) or b""))
            for a in recorded.list_actions(name, limit=10_000).items
            if a.task == "child" and a.phase.value == "succeeded"
        }
        stopped = recorded.get_run(name)
        recorded.close_reads()
        before = _counts(counts, n)
        assert 0 < len(finished) < n, f"{len(finished)} of {n} recorded before the stop ({before})"
        assert stopped is not None and not stopped.done, stopped
        if how is signal.SIGTERM:  # a drain writes everything it recorded
            ran = {i for i, c in enumerate(before) if c}
            assert ran == finished, f"ran {sorted(ran)}, recorded {sorted(finished)}"
        time.sleep(max(0.0, restart_at - (time.monotonic() - started)))
        controller = start_controller(home, port=port)
        follower = client_python(home, controller.address, FOLLOWER, name)
        out, err = follower.communicate(timeout=n * seconds + 90)
        assert follower.returncode == 0, err
        assert out.splitlines()[-1] == f"result {sum(i * i for i in range(n))} succeeded"
    finally:
        if driver is not None:
            stop_process(driver)
        stop_process(controller.process, signal.SIGTERM)
    after = _counts(counts, n)
    assert all(c >= 1 for c in after), after
    # Every child recorded as finished before the stop ran exactly once: it was answered
    # from the store. Only those that were running at the stop ran again.
    assert all(after[i] == 1 for i in finished), [(i, after[i]) for i in finished]
    assert all(before[i] == 1 for i in finished)
    # The run and each of its children are recorded once, finished.
    recorded = SqliteRunReader(home / "controller" / "runs.sqlite")
    try:
        runs = [r for r in recorded.list_runs(limit=100).items if r.name == name]
        children = [
            math.isqrt(pickle.loads(recorded.action_output(name, a.action_id) or b""))
            for a in recorded.list_actions(name, limit=10_000).items
            if a.task == "child" and a.phase.value == "succeeded"
        ]
    finally:
        recorded.close_reads()
    assert [r.phase.value for r in runs] == ["succeeded"], runs
    assert sorted(children) == list(range(n)), sorted(children)
    twice = [i for i, c in enumerate(after) if c > 1]
    print(
        f"\ncontroller {how.name}: {len(finished)} of {n} children recorded before the stop; "
        f"{len(twice)} ran twice ({sum(before) - len(finished)} finished but not recorded)"
    )


@pytest.mark.timeout(180)
def test_a_controller_killed_with_no_client_finishes_the_run_after_a_restart(
    tmp_path: Path,
) -> None:
    _controller_killed(tmp_path, n=16, seconds=0.5, kill_at=2.2, restart_at=3.0)


@pytest.mark.timeout(180)
def test_a_controller_sent_sigterm_with_no_client_finishes_the_run_after_a_restart(
    tmp_path: Path,
) -> None:
    _controller_killed(tmp_path, n=16, seconds=0.5, kill_at=2.2, restart_at=3.0, how=signal.SIGTERM)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_controller_killed_at_20_s_and_restarted_at_25_s_60_children(tmp_path: Path) -> None:
    _controller_killed(tmp_path, n=60, seconds=1.0, kill_at=20.0, restart_at=25.0)


# ---------------------------------------------------------------------- abort

STARTER = """
import sys
import reuse_runtime as flyte
from tests.controller import run_tasks

flyte.init()
run = flyte.run(run_tasks.parent, n=int(sys.argv[1]), seconds=float(sys.argv[2]),
                counts=sys.argv[3])
print(run.name, flush=True)
run.wait(wait_for="running")
print("running", flush=True)
"""


ABORTER = """
import sys, time
import reuse_runtime as flyte

flyte.init()
run = flyte.remote.Run.get(sys.argv[1])
asked = time.time()  # after its imports and connection: a loaded machine starts slowly
run.abort(reason="enough")
print(asked, flush=True)
"""


@pytest.mark.timeout(120)
def test_abort_run_stops_a_running_run_within_5_s(tmp_path: Path) -> None:
    home, counts = tmp_path / "home", tmp_path / "counts"
    counts.mkdir()
    controller = start_controller(home)
    try:
        starter = client_python(home, controller.address, STARTER, "20", "30", str(counts))
        out, err = starter.communicate(timeout=60)
        assert starter.returncode == 0, err
        name, running = out.splitlines()
        assert running == "running"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until its children are running too
            actions = _get_run(tmp_path, controller.address, name)["actions"]
            assert isinstance(actions, list)
            if any(a["task"] == "child" and a["phase"] == "running" for a in actions):
                break
            time.sleep(0.2)
        aborter = client_python(home, controller.address, ABORTER, name)
        out, err = aborter.communicate(timeout=60)
        assert aborter.returncode == 0, err
        asked = float(out)
        looked = time.monotonic()
        while True:  # the controller's own record of when it ended, however slow this looks
            shown = _get_run(tmp_path, controller.address, name)
            run = shown["run"]
            assert isinstance(run, dict)
            if run["phase"] == "aborted" or time.monotonic() - looked > 30.0:
                break
            time.sleep(0.2)
        again = run_cli(tmp_path, "abort", "run", name, REUSE_RUNTIME_ENDPOINT=controller.address)
    finally:
        stop_process(controller.process, signal.SIGTERM)
    assert run["phase"] == "aborted", run
    took = float(run["ended"]) - asked
    assert took <= 5.0, (run, took)
    assert run["error"]["message"] == f"run {name} was aborted: enough", run
    children = [a for a in shown["actions"] if a["task"] == "child"]  # type: ignore[union-attr, index]
    assert children and {a["phase"] for a in children} == {"aborted"}, children
    assert sum(_counts(counts, 20)) == 0  # none finished: every one was cancelled
    assert again.stdout.strip() == f"run {name} had ended already (ABORTED)"
