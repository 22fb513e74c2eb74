"""The local backend's fork server: replicas forked as exec would have started them."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import psutil
import pytest

from reuse_runtime.client import ControllerClient
from reuse_runtime.security import Security
from tests.backends import tasks
from tests.helpers import (
    eventually,
    running_controller,
    start_controller,
    stop_process,
    submit,
)

pytestmark = pytest.mark.skipif(
    not hasattr(os, "pidfd_open"), reason="the fork server needs Linux pidfds"
)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def _describe(client: Any, template: Any = tasks.describe) -> dict[str, Any]:
    result = await (await submit(client, template))
    return result.unwrap()  # type: ignore[no-any-return]


async def test_a_replica_is_forked_into_its_own_directory_environment_and_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REUSE_RUNTIME_FORK_SERVER", raising=False)
    monkeypatch.chdir(tmp_path)  # the environment's working directory: the caller's
    async with running_controller() as (_, client):
        seen = await _describe(client)
        zygote = seen["parent"]
        assert "reuse_runtime.cli.forkserver" in seen["parent_command"]
        assert zygote != os.getpid()
        assert seen["session_leader"]
        assert seen["cwd"] == str(tmp_path) == seen["path0"]
        assert seen["mark"] == "m1"
        assert seen["argv"] == ["worker"]

        # kill -9: the zygote reaps it, the controller starts another, forked as well.
        os.kill(seen["pid"], signal.SIGKILL)
        again = await _describe(client)
        assert again["pid"] != seen["pid"]
        assert again["parent"] == zygote
        assert _gone(seen["pid"])
    # Nothing outlives the controller: not the replicas, not the zygote.
    await eventually(lambda: _gone(again["pid"]) and _gone(zygote), what="no process left")


async def test_replicas_are_exec_d_when_a_fork_cannot_give_them_what_exec_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A variable only a new interpreter reads; a PYTHONPATH that finds another copy of a
    # module the zygote imported: both exec'd, children of the controller.
    shadow = tmp_path / "shadow"
    (shadow / "cloudpickle").mkdir(parents=True)
    (shadow / "cloudpickle" / "__init__.py").write_text("raise SystemExit(7)\n")
    async with running_controller() as (_, client):
        hashed = await _describe(
            client, tasks.environment("hashed", PYTHONHASHSEED="3").tasks["hashed.describe"]
        )
        assert hashed["parent"] == os.getpid()
        shadowed = tasks.environment("shadowed", PYTHONPATH=str(shadow))
        result = await (await submit(client, shadowed.tasks["shadowed.describe"]))
        assert result.error is not None
        assert "exited with code 7" in result.error.message  # its own cloudpickle ran
        forked = await _describe(client)
        assert "reuse_runtime.cli.forkserver" in forked["parent_command"]
    monkeypatch.setenv("REUSE_RUNTIME_FORK_SERVER", "off")
    async with running_controller() as (_, client):
        assert (await _describe(client))["parent"] == os.getpid()


async def test_a_killed_fork_server_takes_its_replicas_and_another_starts() -> None:
    async with running_controller() as (_, client):
        seen = await _describe(client)
        # Never kill a parent that is not the fork server (an exec'd replica's is this test).
        assert "reuse_runtime.cli.forkserver" in seen["parent_command"], seen
        os.kill(seen["parent"], signal.SIGKILL)
        await eventually(lambda: _gone(seen["pid"]), what="the replica gone with its zygote")
        again = await _describe(client)
        assert again["parent"] != seen["parent"]
        assert "reuse_runtime.cli.forkserver" in again["parent_command"]
    await eventually(lambda: _gone(again["parent"]), what="the new zygote gone")


async def test_a_standalone_controller_ends_its_fork_server_when_it_stops(tmp_path: Path) -> None:
    # The CLI's controller runs on uvloop, which keeps a socket open while a read waits
    # on it: the fork server must still see its end close, and exit, at once.
    controller = start_controller(tmp_path, REUSE_RUNTIME_TOKEN="t0ken")
    try:
        async with ControllerClient(controller.address, Security(token="t0ken")) as client:
            seen = await _describe(client)
        assert "reuse_runtime.cli.forkserver" in seen["parent_command"]
        controller.process.send_signal(signal.SIGTERM)
        controller.process.wait(30)  # raises if it waits out the fork server's 130 s bound
        assert _gone(seen["parent"]) and _gone(seen["pid"])
    finally:
        stop_process(controller.process)
