"""Test helpers: real worker subprocesses on 127.0.0.1, readiness by event, never sleep."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from reuse_runtime.model import FunctionRef, TaskSpec, dumps_args

ROOT = Path(__file__).resolve().parent.parent
_READY = re.compile(r"listening on (\S+)")


@dataclass
class WorkerProcess:
    process: asyncio.subprocess.Process
    address: str
    stderr_lines: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    async def wait(self, timeout: float) -> int:
        return await asyncio.wait_for(self.process.wait(), timeout)


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("REUSE_RUNTIME_LOG_LEVEL", "warning")
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def spawn_worker(
    *args: str, ready_timeout: float = 20.0, **env: str
) -> AsyncIterator[WorkerProcess]:
    """Start `reuse-runtime worker` on 127.0.0.1:0 and wait for its ready line."""
    process = await _command("worker", args, asyncio.subprocess.PIPE, env)
    assert process.stdout is not None and process.stderr is not None
    worker = WorkerProcess(process, "")
    drain_err = asyncio.get_running_loop().create_task(
        _collect(process.stderr, worker.stderr_lines)
    )
    try:
        line = await asyncio.wait_for(process.stdout.readline(), ready_timeout)
        match = _READY.search(line.decode())
        if not match:
            await process.wait()
            await drain_err
            raise AssertionError(f"worker did not start: {line!r}\n" + "".join(worker.stderr_lines))
        worker.address = match.group(1)
        yield worker
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        await drain_err


async def _command(
    command: str, args: tuple[str, ...], stderr: int, env: dict[str, str]
) -> asyncio.subprocess.Process:
    """`reuse-runtime COMMAND --port 0 ARGS`, with its stdout piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reuse_runtime",
        command,
        "--port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        env=subprocess_env(**env),
        cwd=str(ROOT),
    )


async def _collect(stream: asyncio.StreamReader, lines: list[str]) -> None:
    async for raw in stream:
        lines.append(raw.decode(errors="replace"))


def task(fn: object, *args: object, timeout: float | None = None, **kwargs: object) -> TaskSpec:
    """A by-reference task spec for a module-level function of a test module."""
    module = fn.__module__  # type: ignore[attr-defined]
    qualname = fn.__qualname__  # type: ignore[attr-defined]
    return TaskSpec(
        task_id=uuid.uuid4().hex,
        name=qualname,
        args=dumps_args(args, kwargs),
        ref=FunctionRef(module, qualname),
        timeout=timeout,
    )


@contextlib.asynccontextmanager
async def running_controller(
    client_security: object = None, **config: object
) -> AsyncIterator[tuple[object, object]]:
    """A real controller on 127.0.0.1:0 (local backend) and a client connected to it.

    The client uses the controller's own security settings unless told otherwise.
    """
    from reuse_runtime.controller.server import ControllerConfig, ControllerServer
    from reuse_runtime.wire.clients import ControllerClient

    settings = ControllerConfig(**config)  # type: ignore[arg-type]
    server = ControllerServer(settings)
    await server.start()
    client = ControllerClient(server.address, client_security or settings.security)  # type: ignore[arg-type]
    try:
        await client.wait_ready()
        yield server, client
    finally:
        await client.close()
        await server.close()


async def submit(
    client: object, task: object, *args: object, retries: int = 0, **kwargs: object
) -> object:
    """Submit an SDK task through a ControllerClient; returns the result future."""
    from reuse_runtime.model import Submission

    key = await client.register(task.environment_spec())  # type: ignore[attr-defined]
    spec = task.task_spec(args, kwargs, run_id="test-run")  # type: ignore[attr-defined]
    future = client.submit(Submission(key, spec, retries=retries))  # type: ignore[attr-defined]
    future.task_id = spec.task_id  # for tests that cancel it
    return future


def live_replicas(status: object, env_name: str) -> int:
    """Replicas of an environment that are starting or ready (not draining)."""
    for env in status.environments:  # type: ignore[attr-defined]
        if env.name == env_name:
            return sum(1 for r in env.replicas if r.state != "draining")
    return 0


@dataclass
class ControllerProcess:
    process: asyncio.subprocess.Process
    address: str
    metrics_url: str


@contextlib.asynccontextmanager
async def spawn_controller(*args: str, **env: str) -> AsyncIterator[ControllerProcess]:
    """A standalone `reuse-runtime controller --port 0 ...`, once it prints where it listens."""
    process = await _command("controller", args, asyncio.subprocess.DEVNULL, env)
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        match = _READY.search(line)
        assert match, f"controller did not start: {line!r}"
        metrics_url = ""
        if "--metrics-port" in args:
            metrics_line = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
            metrics_url = metrics_line.split("metrics on ", 1)[1].strip()
        yield ControllerProcess(process, match.group(1), metrics_url)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()


def run_python(
    tmp_path: Path,
    source: str,
    *args: str,
    name: str = "script.py",
    timeout: float = 120,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """Write ``source`` to ``tmp_path/name`` and run it as a user would: ``python name``.

    Its state directory is ``tmp_path/home``; TTLs run in seconds (conftest).
    """
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    settings = {"REUSE_RUNTIME_HOME": str(tmp_path / "home"), **env}
    return subprocess.run(
        [sys.executable, str(path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env=subprocess_env(**settings),
    )


def run_cli(
    tmp_path: Path, *args: str, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """``reuse-runtime ARGS...`` in ``tmp_path``, with its state directory there."""
    settings = {"REUSE_RUNTIME_HOME": str(tmp_path / "home"), **env}
    return subprocess.run(
        [sys.executable, "-m", "reuse_runtime", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env=subprocess_env(**settings),
    )
