"""Replicas that cannot start, and the status command a user reads."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from reuse_runtime.model import ErrorKind
from tests.controller import tasks
from tests.helpers import running_controller, submit, subprocess_env


async def test_replica_that_fails_to_start_is_retried_then_reported_with_its_stderr(
    tmp_path: Path,
) -> None:
    fake = tmp_path / "reuse_runtime"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text(
        "import sys\nprint('ImportError: libfoo.so missing in this image', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    env = tasks.broken_image_environment(str(tmp_path))
    template = env.tasks[f"{env.name}.child"]  # Flyte names tasks <env>.<function>
    async with running_controller() as (_, client):
        result = await (await submit(client, template, 1))
        status = await client.status()
    assert result.error is not None
    assert result.error.kind is ErrorKind.UNAVAILABLE
    assert "could not start a replica after 3 attempts" in result.error.message
    assert "exited with code 3" in result.error.message
    assert "libfoo.so missing in this image" in result.error.message
    broken = next(e for e in status.environments if e.name == "broken")
    assert "libfoo.so" in broken.last_error


async def test_status_command_prints_a_table_and_json() -> None:
    async with running_controller() as (server, client):
        assert (await (await submit(client, tasks.child, 1))).unwrap() == 2
        args = ["-m", "reuse_runtime", "status", "--endpoint", server.address]
        # The controller runs on this loop: run the command without blocking it.
        code, table = await _command(*args, COLUMNS="200")
        _, raw = await _command(*args, "--json")
    assert code == 0, table
    assert "single" in table and "ready" in table
    data = json.loads(raw)
    env = next(e for e in data["environments"] if e["name"] == "single")
    replica = env["replicas"][0]
    assert replica["report"]["capacity"] == 1
    assert replica["report"]["rss_bytes"] > 0
    assert env["completed"] == 1


async def _command(*args: str, **env: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, env=subprocess_env(**env)
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, out.decode()


def test_status_without_a_controller_says_what_to_do(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reuse_runtime", "status"],
        capture_output=True,
        text=True,
        timeout=30,
        env=subprocess_env(REUSE_RUNTIME_HOME=str(tmp_path)),
    )
    assert done.returncode == 2
    assert "pass --endpoint HOST:PORT" in done.stderr
