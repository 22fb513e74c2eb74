"""The garbage collector's pace in the processes that move tasks (``reuse_runtime.gctune``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from reuse_runtime.gctune import PYTHON_DEFAULT, TUNED
from tests.helpers import run_cli, run_python

SCRIPT = """
import gc, json, sys, threading
import reuse_runtime as flyte

def sweeping():
    return any(t.name == "reuse-gc-sweep" for t in threading.enumerate())

if sys.argv[1:] == ["own"]:
    gc.set_threshold(1234, 5, 6)

env = flyte.TaskEnvironment(name="gc", reusable=flyte.ReusePolicy(replicas=1, concurrency=2))

@env.task
async def pace() -> list:
    return [list(gc.get_threshold()), gc.get_freeze_count() > 0, sweeping()]

if __name__ == "__main__":
    replica, frozen, swept = flyte.run(pace).outputs()[0]
    print(json.dumps({
        "driver": gc.get_threshold(), "replica": replica, "frozen": frozen,
        "sweeps": [sweeping(), swept],
    }))
"""


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_python(tmp_path, SCRIPT, *args, name="pace.py", timeout=90, **env)


def paces(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert done.returncode == 0, done.stderr
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_replicas_and_the_driver_collect_less_often_and_replicas_freeze_their_imports(
    tmp_path: Path,
) -> None:
    found = paces(run(tmp_path))
    assert found == {
        "driver": list(TUNED),
        "replica": list(TUNED),
        "frozen": True,
        "sweeps": [True, True],  # at that pace, each sweeps its young generation too
    }


@pytest.mark.parametrize(
    ("setting", "expected"), [("python", PYTHON_DEFAULT), ("2000,3,4", (2000, 3, 4))]
)
def test_reuse_runtime_gc_chooses_the_pace(
    tmp_path: Path, setting: str, expected: tuple[int, int, int]
) -> None:
    found = paces(run(tmp_path, REUSE_RUNTIME_GC=setting))
    assert found["driver"] == list(expected)
    assert found["replica"] == list(expected)
    assert found["sweeps"] == [False, False]  # a pace this quick needs no sweep


def test_a_driver_that_set_its_own_thresholds_keeps_them(tmp_path: Path) -> None:
    found = paces(run(tmp_path, "own"))
    assert found["driver"] == [1234, 5, 6]
    assert found["replica"] == list(TUNED)


@pytest.mark.parametrize("setting", ["lots", "1,2", "-1,2,3"])
def test_a_wrong_setting_is_one_line_for_the_sdk_and_the_worker(
    tmp_path: Path, setting: str
) -> None:
    wanted = (
        'REUSE_RUNTIME_GC must be "python" or three whole numbers "gen0,gen1,gen2" for '
        f"gc.set_threshold (like 1000000,20,100), got '{setting}'"
    )
    sdk = run(tmp_path, REUSE_RUNTIME_GC=setting)
    assert sdk.returncode != 0
    assert wanted in sdk.stderr, sdk.stderr
    assert "Traceback" not in sdk.stderr, sdk.stderr
    worker = run_cli(tmp_path, "worker", "--port", "0", timeout=60, REUSE_RUNTIME_GC=setting)
    assert worker.returncode == 2
    assert worker.stderr.strip().splitlines() == [f"reuse-runtime worker: error: {wanted}"]


SWEEP = """
import gc, time, weakref
from reuse_runtime import gctune

gc.set_threshold(10**9, 20, 100)  # no collection by allocation count
freed = []

class Node:
    pass

node = Node()
node.loop = node  # a cycle: reference counting never frees it
weakref.finalize(node, freed.append, True)
del node
gctune.sweep_young(0.05)
deadline = time.monotonic() + 20
while not freed and time.monotonic() < deadline:
    time.sleep(0.01)
print("freed" if freed else "kept")
"""


def test_a_quiet_process_still_frees_its_young_garbage_cycles(tmp_path: Path) -> None:
    done = run_python(tmp_path, SWEEP, name="sweep.py", timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "freed"
