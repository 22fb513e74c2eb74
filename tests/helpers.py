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
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata with the token this worker made up (a raw channel needs it)."""
        from reuse_runtime.client import call_metadata
        from reuse_runtime.security import Security
        from reuse_runtime.tokens import with_local_token

        return call_metadata(with_local_token(Security.from_env(), self.address))

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


async def eventually(
    check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what or check}: {last!r}")


async def until_in_flight(client: object, count: int = 1, *, timeout: float = 30.0) -> None:
    """Wait until the controller has ``count`` tasks on replicas: a test that kills or
    cuts something "mid-task" waits for this, not for a guessed sleep."""

    async def enough() -> bool:
        status = await client.status()  # type: ignore[attr-defined]
        return sum(r.assigned for e in status.environments for r in e.replicas) >= count

    await eventually(enough, timeout=timeout, interval=0.05, what=f"{count} tasks in flight")


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

    The client uses the controller's own credentials (made up when none are configured)
    unless told otherwise.
    """
    from reuse_runtime.client import ControllerClient
    from reuse_runtime.controller.server import ControllerConfig, ControllerServer

    settings = ControllerConfig(**config)  # type: ignore[arg-type]
    server = ControllerServer(settings)
    await server.start()
    client = ControllerClient(server.address, client_security or server.security)  # type: ignore[arg-type]
    try:
        await client.wait_ready()
        yield server, client
    finally:
        replicas = _local_replicas(server)
        try:
            await client.close()
            await server.close()
        finally:
            # A shutdown cut short (a test's timeout) leaves its replicas; a frozen one
            # would never exit by itself. Kill what is left, by pid (not yet reaped).
            for process in replicas:
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()


def _local_replicas(server: object) -> list[asyncio.subprocess.Process]:
    from reuse_runtime.backends.local import LocalReplica

    handles = server._backend.list()  # type: ignore[attr-defined]
    return [h.process for h in handles if isinstance(h, LocalReplica)]


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
    """A standalone `reuse-runtime controller` subprocess (:func:`start_controller`, or
    :func:`spawn_controller` on a loop)."""

    process: subprocess.Popen[str] | asyncio.subprocess.Process
    address: str
    metrics_url: str = ""
    ui_url: str = ""

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


def start_controller(home: Path, *args: str, port: int = 0, **env: str) -> ControllerProcess:
    """Start a standalone controller on 127.0.0.1 (its home holds its made-up token)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "reuse_runtime", "controller", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=str(ROOT),
        env=subprocess_env(REUSE_RUNTIME_HOME=str(home), **env),
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = _READY.search(line)
    if not match:
        process.kill()
        process.wait(10)
        raise AssertionError(f"the controller did not start: {line!r}")
    return ControllerProcess(process, match.group(1))


def stop_process(process: subprocess.Popen[str], how: int = signal.SIGKILL) -> None:
    """Signal a process this test started (by pid) and reap it."""
    if process.poll() is None:
        process.send_signal(how)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


class TcpProxy:
    """A loopback TCP forwarder whose connections a test can cut: a network that fails."""

    def __init__(self, target: str) -> None:
        self._host, port = target.rsplit(":", 1)
        self._port = int(port)
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self.address = ""

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.address = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    def cut(self) -> int:
        """Close every connection through the proxy; new ones still go through."""
        writers, self._writers = self._writers, set()
        for writer in writers:
            writer.transport.abort()
        return len(writers)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pipe = asyncio.ensure_future(self._pipe(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.transport.abort()


@contextlib.asynccontextmanager
async def spawn_controller(*args: str, **env: str) -> AsyncIterator[ControllerProcess]:
    """A standalone `reuse-runtime controller --port 0 ...`, once it prints where it listens
    (and its metrics and web UI, when asked for with --metrics-port and --ui-port)."""
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
        ui_url = ""
        if "--ui-port" in args:
            ui_line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            assert "web UI on " in ui_line, f"controller served no web UI: {ui_line!r}"
            ui_url = ui_line.split("web UI on ", 1)[1].strip()
        yield ControllerProcess(process, match.group(1), metrics_url, ui_url)
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


def client_python(home: Path, address: str, code: str, *args: str) -> subprocess.Popen[str]:
    """``python -c CODE ARGS`` from the repository, a client of the controller at
    ``address`` (state in ``home``), its stdout and stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=subprocess_env(REUSE_RUNTIME_HOME=str(home), REUSE_RUNTIME_ENDPOINT=address),
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


def fill_filesystem(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte; returns the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size) == size:
                    pass
    finally:
        os.close(fd)
    return filler
