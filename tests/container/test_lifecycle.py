"""Nothing left behind: labels, a crashed predecessor's containers, a kill -9'd driver."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reuse_runtime.backends import open_backend
from reuse_runtime.backends.container import (
    CONTROLLER_LABEL,
    CONTROLLER_PID_LABEL,
    CONTROLLER_STARTED_LABEL,
    ENVIRONMENT_LABEL,
    OWNER_LABEL,
    _owner_id,
    _process_started,
)
from reuse_runtime.images.builder import debian_base
from reuse_runtime.paths import state_dir
from tests.helpers import ROOT, eventually, subprocess_env

pytestmark = [pytest.mark.container, pytest.mark.timeout(300)]

DRIVER = """
import sys, time
import reuse_runtime as flyte
from tests.container import tasks

flyte.init(backend="container")
run = flyte.run(tasks.predict, 1)
print(run.outputs()[0], flush=True)   # a replica is up: its container's hostname
time.sleep(600)                       # until kill -9
"""


async def test_a_crashed_predecessors_containers_are_removed(
    docker_client: object, run_label: str
) -> None:
    """A controller that starts removes the containers of a dead one with its owner label."""
    owner = _owner_id(state_dir())  # this user's, on this host, for this state directory
    dead_pid = _dead_pid()
    key, value = run_label.split("=")
    labels = {
        key: value,
        OWNER_LABEL: owner,
        CONTROLLER_LABEL: "crashed0123456789",
        CONTROLLER_PID_LABEL: str(dead_pid),
        CONTROLLER_STARTED_LABEL: "1.0",
        ENVIRONMENT_LABEL: "ghost",
    }
    leftover = await _sleeper(docker_client, labels)
    # A live controller's container with the same owner must survive the sweep.
    alive = await _sleeper(
        docker_client,
        dict(
            labels,
            **{
                CONTROLLER_LABEL: "alive0123456789",
                CONTROLLER_PID_LABEL: str(os.getpid()),
                CONTROLLER_STARTED_LABEL: str(_process_started(os.getpid())),
            },
        ),
    )
    try:
        opened = await open_backend("container")
        await opened.backend.close()
        ids = {c.id for c in await asyncio.to_thread(docker_client.containers.list, all=True)}  # type: ignore[attr-defined]
        assert leftover.id not in ids
        assert alive.id in ids
    finally:
        await asyncio.to_thread(alive.remove, force=True)


async def test_kill_9_of_a_driver_leaves_no_container(
    docker_client: object, tmp_path: Path
) -> None:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = subprocess_env(REUSE_RUNTIME_MIN_TTL_SECONDS="0")
    driver = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert driver.stdout is not None
        line = await asyncio.wait_for(driver.stdout.readline(), 120)
        hostname = line.decode().strip()
        assert hostname, "the driver printed no result"
        mine = {"label": f"{CONTROLLER_PID_LABEL}={driver.pid}"}
        before = await asyncio.to_thread(docker_client.containers.list, filters=mine)  # type: ignore[attr-defined]
        assert any(c.id.startswith(hostname) for c in before), (hostname, before)
        driver.send_signal(signal.SIGKILL)
        await asyncio.wait_for(driver.wait(), 10)
        started = time.monotonic()
        await eventually(
            # sparse: no inspect of each one, which fails for a container removed meanwhile
            lambda: not docker_client.containers.list(all=True, sparse=True, filters=mine),  # type: ignore[attr-defined]
            timeout=30,
            what="the driver's containers to be gone",
        )
        print(f"\ncontainers gone {time.monotonic() - started:.1f} s after kill -9 of the driver")
    finally:
        if driver.returncode is None:
            driver.kill()
            await driver.wait()


async def _sleeper(docker_client: object, labels: dict[str, str]) -> Any:
    """A container that would run for ten minutes, as a predecessor's replica might."""
    return await asyncio.to_thread(
        docker_client.containers.run,  # type: ignore[attr-defined]
        debian_base(),
        ["sleep", "600"],
        detach=True,
        labels=labels,
        ulimits=_ulimits(),
    )


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _ulimits() -> list[object]:
    from docker.types import Ulimit

    from reuse_runtime import engine

    return [Ulimit(name=u.name, soft=u.soft, hard=u.hard) for u in engine.container_ulimits()]
