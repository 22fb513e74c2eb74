"""A run outlives the client that started it; aborting it leaves nothing of it running: its
tasks and their descendants are cancelled at once; other runs are untouched."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.helpers import (
    client_python,
    run_cli,
    start_controller,
    stop_process,
)

DRIVER = """
import sys
import reuse_runtime as flyte
from tests.controller import fanout_tasks as ft

flyte.init()  # $REUSE_RUNTIME_ENDPOINT
task = getattr(ft, sys.argv[1])
run = flyte.run(task, *[int(a) if a.isdigit() else a for a in sys.argv[2:]])
print(run.name, flush=True)
run.wait()
print("result", run.outputs()[0], flush=True)
"""


def _starts(log: Path) -> list[float]:
    if not log.exists():
        return []
    return [float(line.split()[0]) for line in log.read_text().splitlines() if line.strip()]


@pytest.mark.timeout(180)
def test_a_killed_clients_run_goes_on_and_abort_stops_its_children_sparing_others(
    tmp_path: Path,
) -> None:
    """The run belongs to the controller: its client's kill -9 does not stop it. Aborting it
    cancels every child at once (none starts after), and other runs go on untouched."""
    home, log = tmp_path / "home", tmp_path / "starts.log"
    controller = start_controller(home)
    bystander = victim = None
    try:
        bystander = client_python(home, controller.address, DRIVER, "steady_main", "6000")
        victim = client_python(home, controller.address, DRIVER, "fan_out", "20000", str(log))
        assert victim.stdout is not None
        name = victim.stdout.readline().strip()
        deadline = time.monotonic() + 60
        while len(_starts(log)) < 500 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_starts(log)) >= 500, "the fan-out never got going"
        stop_process(victim)  # kill -9: the run goes on without it
        before = len(_starts(log))
        deadline = time.monotonic() + 30
        while len(_starts(log)) < before + 500 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_starts(log)) >= before + 500, "the run stopped with its client"
        aborted = run_cli(tmp_path, "abort", "run", name, REUSE_RUNTIME_ENDPOINT=controller.address)
        aborted_at = time.time()  # the command has answered: the children are cancelled
        assert aborted.returncode == 0, aborted.stderr
        assert f"run {name} aborted (" in aborted.stdout
        time.sleep(4.0)  # anything still coming would have started by now
        starts = _starts(log)
        late = [t - aborted_at for t in starts if t > aborted_at]
        shown = run_cli(tmp_path, "get", "run", name, REUSE_RUNTIME_ENDPOINT=controller.address)
        out, err = bystander.communicate(timeout=120)
    finally:
        for process in (victim, bystander):
            if process is not None:
                stop_process(process)
        stop_process(controller.process, signal.SIGTERM)  # it stops its replicas
    print(
        f"\nabort: {len(starts)} of 40,000 children started; {len(late)} started after the "
        f"abort, the last {max(late, default=0.0):.2f} s after it"
    )
    assert len(starts) < 40_000
    assert max(late, default=0.0) <= 2.0, sorted(late)[-5:]
    assert "phase:        ABORTED" in shown.stdout, shown.stdout + shown.stderr
    assert bystander.returncode == 0, err
    assert f"result {sum(range(6000))}" in out
