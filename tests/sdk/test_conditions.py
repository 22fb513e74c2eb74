"""``flyte.new_condition`` and ``flyte.remote.Condition`` as flyte-sdk documents them: a
task waits on a condition, another process lists and signals it through a standalone
controller."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_python, start_controller, stop_process, subprocess_env

DRIVER = """
import subprocess, sys
import reuse_runtime as flyte
from tests.sdk import condition_tasks as t

flyte.init(endpoint=sys.argv[1])
runs = {
    "approve": flyte.run(t.approve),
    "count": flyte.run(t.count),
    "timed": flyte.run(t.timed),
    "hold": flyte.run(t.hold),
}
other = subprocess.run(
    [sys.executable, "-c", sys.argv[2], sys.argv[1], *(r.name for r in runs.values())],
    capture_output=True, text=True, timeout=120,
)
print(other.stdout, end="")
print(other.stderr, end="", file=sys.stderr)
if other.returncode != 0:
    for run in runs.values():
        run.abort(reason="the other process failed")
    raise SystemExit(1)
for key, run in runs.items():
    run.wait()
    print(key, run.phase.value, run.outputs()[0] if run.phase.value == "succeeded" else "-")
"""

# The other process: only Flyte's names. It waits for each condition to appear (a
# bounded loop: a run's task creates it when it gets to it).
OTHER = """
import sys, time
import reuse_runtime as flyte
import reuse_runtime.remote as remote

flyte.init(endpoint=sys.argv[1])
approve, count, timed, hold = sys.argv[2:6]

def appeared(name, run):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = remote.Condition.get(name, run_name=run)
        if found is not None:
            return found
        time.sleep(0.05)
    raise SystemExit(f"condition {name} of {run} never appeared")

c = appeared("approval", approve)
listed = remote.Condition.listall(run_name=approve)
print("listed", [(x.name, x.prompt, x.phase, x.expected_type) for x in listed])
for bad in ("maybe", 3, [1]):
    try:
        c.signal(bad)
    except (TypeError, ValueError) as exc:
        print("refused", type(exc).__name__, exc)
c.signal(True)
print("signaled", c.phase, c.value)
try:
    c.signal(False)
except Exception as exc:
    print("again", type(exc).__name__, "already ended" in str(exc))

# The CLI: list a run's conditions, signal one (a bad value: one line).
import subprocess
appeared("batch", count)
def cli(*args):
    done = subprocess.run(
        [sys.executable, "-m", "reuse_runtime", *args, "--endpoint", sys.argv[1]],
        capture_output=True, text=True, timeout=60,
    )
    return done.returncode, done.stdout.strip().splitlines(), done.stderr.strip().splitlines()
code, out, _ = cli("get", "condition", count)
print("cli get", code, [line.split()[:3] for line in out])
code, _, err = cli("signal", "condition", count, "batch", "many")
print("cli bad", code, err)
code, out, _ = cli("signal", "condition", count, "batch", "41")
print("cli signal", code, out)

deadline = time.monotonic() + 60
while appeared("soon", timed).phase == "ACTION_PHASE_RUNNING" and time.monotonic() < deadline:
    time.sleep(0.05)
print("timed", appeared("soon", timed).phase)

appeared("forever", hold)
remote.Run.get(hold).abort(reason="no answer")
print("hold", appeared("forever", hold).phase)
try:
    remote.Condition.listall(run_name="no-such-run").__next__()
except Exception as exc:
    print("missing", type(exc).__name__)
"""


@pytest.mark.timeout(180)
def test_a_task_waits_until_another_process_signals_its_condition(tmp_path: Path) -> None:
    home = tmp_path / "home"
    controller = start_controller(home)
    try:
        done = subprocess.run(
            [sys.executable, "-c", DRIVER, controller.address, OTHER],
            capture_output=True,
            text=True,
            timeout=150,
            cwd=ROOT,
            env=subprocess_env(REUSE_RUNTIME_HOME=str(home)),
        )
    finally:
        stop_process(controller.process, signal.SIGTERM)
    assert done.returncode == 0, done.stderr
    run = done.stdout.split("of run ")[1].split(" ")[0]
    count = done.stdout.split("signaled with 41")[0].split("of run ")[-1].strip()
    assert done.stdout.splitlines() == [
        "listed [('approval', 'Ship it?', 'ACTION_PHASE_RUNNING', <class 'bool'>)]",
        f"refused ValueError condition 'approval' of run {run} expects a bool: could not "
        "parse 'maybe' as bool",
        f"refused TypeError condition 'approval' of run {run} expects a bool: expected bool "
        "payload, got int",
        "refused TypeError payload must be bool, int, float, or str, got list",
        "signaled ACTION_PHASE_SUCCEEDED True",
        "again BadInputError True",
        "cli get 0 [['NAME', 'PHASE', 'TYPE'], ['batch', 'RUNNING', 'int']]",
        f"cli bad 2 [\"reuse-runtime signal: error: condition 'batch' of run {count} expects an "
        "int: could not parse 'many' as int\"]",
        f"cli signal 0 ['condition batch of run {count} signaled with 41']",
        "timed ACTION_PHASE_TIMED_OUT",
        "hold ACTION_PHASE_ABORTED",
        "missing RunNotFoundError",
        "approve succeeded approved",
        "count succeeded 42",
        "timed succeeded ConditionTimedoutError: condition 'soon' timed out: it was not "
        "signaled within its timeout of 0.5 s",
        "hold aborted -",
    ], done.stderr


EMBEDDED = """
import time

import reuse_runtime as flyte
import reuse_runtime.remote as remote

env = flyte.TaskEnvironment(name="embedded-conditions")


@env.task
async def gate(x: int) -> int:
    hook = flyte.ConditionWebhook(url="https://example.com/hook", payload={"cb": "{callback_uri}"})
    review = await flyte.new_condition.aio("review", prompt="ok?", data_type=bool, webhook=hook)
    return x + 1 if await review.wait.aio() else -1


if __name__ == "__main__":
    outside = flyte.new_condition("outside", data_type=int)
    print("outside made", outside.name, outside.data_type.__name__)
    try:
        outside.wait()
    except RuntimeError as exc:
        print("outside wait", exc)
    flyte.init()
    run = flyte.run(gate, x=1)
    deadline = time.monotonic() + 60
    while (found := remote.Condition.get("review", run_name=run.name)) is None:
        assert time.monotonic() < deadline, "the condition never appeared"
        time.sleep(0.05)
    found.signal("yes")
    print("outputs", run.outputs()[0])
"""


@pytest.mark.timeout(150)
def test_a_script_signals_its_own_runs_condition_on_the_embedded_controller(
    tmp_path: Path,
) -> None:
    done = run_python(tmp_path, EMBEDDED)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "outside made outside int",
        "outside wait Conditions can only be awaited within a task context.",
        "outputs 2",
    ]
    # The webhook is accepted, and not silently: one line says it is not sent.
    warned = [line for line in done.stderr.splitlines() if "webhook" in line]
    assert warned == [
        "[gate] reuse-runtime: warning: new_condition(webhook=...) has no effect on "
        "reuse-runtime: webhooks are not sent; signal the condition with "
        "flyte.remote.Condition.signal or `reuse-runtime signal condition`"
    ], done.stderr
