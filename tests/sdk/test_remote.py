"""``flyte.remote`` as flyte-sdk documents it, from another process: only Flyte's names."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from tests.helpers import ROOT, start_controller, stop_process, subprocess_env

SCRIPT = """
import asyncio, subprocess, sys
import reuse_runtime as flyte
from reuse_runtime.models import ActionPhase
from tests.sdk import remote_tasks as t

flyte.init(endpoint=sys.argv[1])
ok = flyte.run(t.square, x=7)
long = flyte.run(t.slow, seconds=300)
ok.wait()

# Another process finds the runs by name, lists them, and aborts one.
OTHER = '''
import asyncio, sys
import reuse_runtime as flyte
from reuse_runtime.models import ActionPhase

flyte.init(endpoint=sys.argv[1])
ok_name, long_name = sys.argv[2:4]
run = flyte.remote.Run.get(ok_name)
run.wait()
print("phase", run.phase == ActionPhase.SUCCEEDED, run.phase == "succeeded", run.done())
print("outputs", run.outputs()[0], run.outputs().named_outputs)
print("inputs", dict(run.inputs()))
listed = [r.name for r in flyte.remote.Run.listall(in_phase=("succeeded",), limit=10)]
print("listed", ok_name in listed, long_name in listed)
actions = list(flyte.remote.Action.listall(for_run_name=ok_name))
print("actions", sorted(a.task_name for a in actions), {a.phase.value for a in actions})
children = list(flyte.remote.Action.listall(for_run_name=ok_name, parent_name=run.action.name))
one = flyte.remote.Action.get(run_name=ok_name, name=children[0].name)
print("action", one.task_name, one.parent_name == run.action.name, one.done())
running = flyte.remote.Run.get(long_name)
print("running", running.done(), running.phase in (ActionPhase.QUEUED, ActionPhase.RUNNING))
running.abort(reason="enough")
running.wait()
print("aborted", running.phase == ActionPhase.ABORTED)
try:
    running.outputs()
except flyte.errors.ActionAbortedError:
    print("outputs raise ActionAbortedError")

async def aio():
    found = await flyte.remote.Run.get.aio(ok_name)
    out = await found.outputs.aio()
    names = [r.name async for r in flyte.remote.Run.listall.aio(limit=5)]
    phases = [d.phase.value async for d in found.watch()]
    return out[0], ok_name in names, phases

print("aio", asyncio.run(aio()))
try:
    flyte.remote.Run.get("no-such-run")
except Exception as e:
    print("missing", type(e).__name__, str(e).startswith("no run named 'no-such-run'"))
'''
other = subprocess.run(
    [sys.executable, "-c", OTHER, sys.argv[1], ok.name, long.name],
    capture_output=True, text=True, timeout=120,
)
print(other.stdout, end="")
print(other.stderr, end="", file=sys.stderr)
long.wait()
print("here too", long.phase.value)
"""


def _against_a_controller(tmp_path: Path, script: str, timeout: float) -> CompletedProcess[str]:
    """``python -c script ADDRESS`` from the repository, against a standalone controller
    that is stopped (SIGTERM) afterwards."""
    home = tmp_path / "home"
    controller = start_controller(home)
    try:
        return subprocess.run(
            [sys.executable, "-c", script, controller.address],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env=subprocess_env(REUSE_RUNTIME_HOME=str(home)),
        )
    finally:
        stop_process(controller.process, signal.SIGTERM)


@pytest.mark.timeout(180)
def test_flyte_remote_run_and_action_as_flyte_documents_them(tmp_path: Path) -> None:
    done = _against_a_controller(tmp_path, SCRIPT, timeout=150)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "[square] sq of 7",
        "phase True True True",
        "outputs 49 {'o0': 49}",
        "inputs {'x': 7, 'label': 'sq'}",
        "listed True False",
        "actions ['double', 'square'] {'succeeded'}",
        "action double True True",
        "running False True",
        "aborted True",
        "outputs raise ActionAbortedError",
        "aio (49, True, ['succeeded'])",
        "missing RunNotFoundError True",
        "here too aborted",
    ], done.stderr


ONE_ACTION = """
import sys, time
import reuse_runtime as flyte
from reuse_runtime.models import ActionPhase
from tests.sdk import remote_tasks as t

flyte.init(endpoint=sys.argv[1])
run = flyte.run(t.fan, n=3, seconds=1.5)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    running = list(
        flyte.remote.Action.listall(for_run_name=run.name, in_phase=[ActionPhase.RUNNING])
    )
    children = [a for a in running if a.name != "a0"]
    if len(children) == 3:
        break
    time.sleep(0.1)
root = flyte.remote.Action.get(run_name=run.name, name="a0")
print("root", root.name, root.parent_name, root.task_name)
print("children", len(children), {a.parent_name for a in children})
children[0].abort("External abort!!")
run.wait()
print("run", run.phase.value, sorted(run.outputs()[0]))
print("child", flyte.remote.Action.get(run_name=run.name, name=children[0].name).phase.value)
try:
    flyte.remote.Action.get(run_name=run.name, name="nope").abort()
except Exception as e:
    print("unknown", type(e).__name__)
"""


@pytest.mark.timeout(120)
def test_aborting_one_action_leaves_the_run_and_its_caller_sees_it_aborted(
    tmp_path: Path,
) -> None:
    """Flyte's ``Action.abort``: that child alone ends ABORTED, its caller's gather gets
    ``ActionAbortedError`` for it, and the run goes on; the root reads as ``a0``."""
    done = _against_a_controller(tmp_path, ONE_ACTION, timeout=100)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "root a0 None fan",
        "children 3 {'a0'}",
        "run succeeded ['NoneType', 'NoneType', 'aborted']",
        "child aborted",
        "unknown RunNotFoundError",
    ], done.stderr
