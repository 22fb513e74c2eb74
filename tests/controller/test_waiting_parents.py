"""Parents that wait for their children hold no process's slot: an environment without
reuse (one fresh process per task, at most ``NON_REUSABLE_MAX_REPLICAS`` at once) runs a
call chain deeper than that bound instead of waiting for ever."""

from __future__ import annotations

from pathlib import Path

import pytest

from reuse_runtime.sdk.environment import NON_REUSABLE_MAX_REPLICAS
from tests.helpers import run_python

SCRIPT = """
import sys
import reuse_runtime as flyte

env = flyte.TaskEnvironment("chain-oneshot")

@env.task
async def chain(depth: int) -> int:
    return 0 if depth == 0 else 1 + await chain(depth - 1)

if __name__ == "__main__":
    run = flyte.run(chain, depth=int(sys.argv[1]))
    print("depth", run.outputs(timeout=150)[0])
"""


@pytest.mark.timeout(200)
def test_a_chain_deeper_than_the_process_bound_finishes(tmp_path: Path) -> None:
    depth = NON_REUSABLE_MAX_REPLICAS + 1  # every process but the last waits on a child
    done = run_python(tmp_path, SCRIPT, str(depth), timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"depth {depth}", done.stdout
