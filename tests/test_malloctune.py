"""glibc keeps freed memory for reuse in the processes that move payloads (``malloctune``).

Read from the inside of real processes: the minor page faults that rounds of
megabyte buffers, all freed at the end of each round, cost in a replica and in the
driver. With glibc's own settings the heap gives their memory back after each round
and faults it in again on the next; with the runtime's, the rounds after the first
reuse it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from reuse_runtime.malloctune import on_glibc
from tests.helpers import run_cli, run_python

pytestmark = pytest.mark.skipif(
    not on_glibc(),
    reason="mallopt's settings exist only in glibc; on another C library (musl, as on "
    "Alpine) the runtime leaves malloc as it is, so there is nothing to check here",
)

SCRIPT = """
import json, os, resource
import reuse_runtime as flyte

env = flyte.TaskEnvironment(name="malloc", reusable=flyte.ReusePolicy(replicas=1, concurrency=2))


def faults() -> float:
    def rounds(count: int) -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(count):
            buffers = [os.urandom(16) * (2**20 // 16) for _ in range(8)]  # 8 MiB
            del buffers
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    rounds(1)  # the first round takes its memory from the OS either way
    return rounds(10) / 10


@env.task
async def replica_faults() -> float:
    return faults()


if __name__ == "__main__":
    replica = flyte.run(replica_faults).outputs()[0]
    print(json.dumps({"driver": faults(), "replica": replica}))
"""

#: A round of 8 x 1 MiB faults in about 2,000 pages when its memory is new.
NEW_MEMORY = 1000


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_python(tmp_path, SCRIPT, name="faults.py", timeout=90, **env)


def faults(done: subprocess.CompletedProcess[str]) -> dict[str, float]:
    assert done.returncode == 0, done.stderr
    found: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_the_driver_and_replicas_reuse_freed_megabytes(tmp_path: Path) -> None:
    found = faults(run(tmp_path))
    assert found["driver"] < NEW_MEMORY / 10, found
    assert found["replica"] < NEW_MEMORY / 10, found


@pytest.mark.parametrize("setting", [{"REUSE_RUNTIME_MALLOC": "glibc"}, {"MALLOC_TOP_PAD_": "0"}])
def test_glibc_s_own_settings_when_asked_or_already_chosen(
    tmp_path: Path, setting: dict[str, str]
) -> None:
    found = faults(run(tmp_path, **setting))
    assert found["driver"] > NEW_MEMORY, found
    assert found["replica"] > NEW_MEMORY, found


def test_a_wrong_setting_is_one_line_for_the_sdk_and_the_worker(tmp_path: Path) -> None:
    wanted = (
        'REUSE_RUNTIME_MALLOC must be "glibc" (glibc\'s own malloc settings) or unset '
        "(the runtime's), got 'lots'"
    )
    sdk = run(tmp_path, REUSE_RUNTIME_MALLOC="lots")
    assert sdk.returncode != 0
    assert wanted in sdk.stderr, sdk.stderr
    assert "Traceback" not in sdk.stderr, sdk.stderr
    worker = run_cli(tmp_path, "worker", "--port", "0", timeout=60, REUSE_RUNTIME_MALLOC="lots")
    assert worker.returncode == 2
    assert worker.stderr.strip().splitlines() == [f"reuse-runtime worker: error: {wanted}"]
