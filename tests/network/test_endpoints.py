"""A new client's first connection across a real network (item 7 of issue 28).

A host that is up but where nothing listens answers with a reset: the client fails
in about a second, saying so. A host that answers nothing (partitioned: its packets
are dropped) is waited for until the client's bound, as before.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.helpers import subprocess_env
from tests.network.netns import Host, Network

pytestmark = pytest.mark.network

# Prints how long wait_ready took, in seconds, and why it failed.
_WAIT_READY = r"""
import asyncio, sys, time
from reuse_runtime.client import ControllerClient

async def main() -> None:
    async with ControllerClient(sys.argv[1]) as client:
        started = time.monotonic()
        try:
            await client.wait_ready(timeout=float(sys.argv[2]))
        except Exception as exc:
            print(f"{time.monotonic() - started:.2f} {exc}")
        else:
            print(f"{time.monotonic() - started:.2f} ready")

asyncio.run(main())
"""


def _wait_ready(host: Host, address: str, timeout: float, home: str) -> tuple[float, str]:
    done = host.run(
        sys.executable, "-c", _WAIT_READY, address, str(timeout),
        timeout=timeout + 60, env=subprocess_env(REUSE_RUNTIME_HOME=home),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    took, _, said = done.stdout.strip().partition(" ")
    return float(took), said


def test_a_reachable_host_refuses_at_once_and_a_silent_one_gets_its_bound(
    network_ready: None, tmp_path: Path
) -> None:
    with Network(["client", "ctl"]) as net:
        address = f"{net['ctl'].address}:50050"
        took, said = _wait_ready(net["client"], f"dns:///{address}", 10, str(tmp_path))
        assert said.startswith(
            f"nothing listens on {address} (connection refused): is the controller running?"
        )
        assert took < 3, took  # about a second, not the 10 s bound

        net["ctl"].partition()
        took, said = _wait_ready(net["client"], address, 3, str(tmp_path))
        assert said == (
            f"no controller answered at {address} within 3 s (connecting timed out: is the "
            f"host up, and the port open to this machine?)"
        )
        assert 3 <= took < 5, took
