"""`LocalBackend`: replicas as `reuse-runtime worker` subprocesses on this machine.

This is the embedded default. Each replica runs with the controller's Python,
in the environment's working directory and with its ``PYTHONPATH``, so it can
import the same code the caller can. Told to fetch the code bundle instead
(``$REUSE_RUNTIME_CODE_DELIVERY=fetch``, or a client on another machine), a
replica runs in its code folder, with no ``PYTHONPATH`` of the caller's: it
imports only what the bundle holds.

Replicas are forked from a fork server that imported the runtime once
(:mod:`~reuse_runtime.backends.forkserver`), started when the backend opens: a
replica then starts in milliseconds, not in the second an interpreter takes to
import everything. Where that cannot give the replica what ``exec`` would (see
that module), or with ``REUSE_RUNTIME_FORK_SERVER=off``, it is exec'd as before.
Either way it leads its own process group, its stderr comes back to the
controller, and it exits when its controller does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections import deque
from pathlib import Path
from typing import Protocol

import structlog

from reuse_runtime.aio import stop_within, wait_within
from reuse_runtime.backends import forkserver
from reuse_runtime.backends.base import (
    ExitStatus,
    ReplicaHandle,
    ReplicaLaunch,
    own_handle,
    worker_arguments,
)
from reuse_runtime.backends.forkserver import ForkRefused, ForkServer, ForkServerError
from reuse_runtime.paths import code_dir, private_dir
from reuse_runtime.security import TLS_CA_ENV, TLS_CERT_ENV, TLS_KEY_ENV, TOKEN_ENV

log = structlog.get_logger("reuse_runtime.backends")

_SECRETS = (TOKEN_ENV, TLS_CERT_ENV, TLS_KEY_ENV, TLS_CA_ENV)
#: Fork servers started again after one died, before replicas are exec'd for good.
FORK_SERVER_RESTARTS = 3


class ReplicaProcess(Protocol):
    """A replica's process, forked or exec'd: what the backend does with it."""

    pid: int

    @property
    def returncode(self) -> int | None: ...

    def send_signal(self, signum: int) -> None: ...

    def kill(self) -> None: ...

    def kill_group(self) -> None:
        """SIGKILL its process group (a process a task forked goes too), and it."""
        ...

    async def wait(self) -> int: ...


class ExecProcess:
    """A replica exec'd as a child of the controller."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self.pid = process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    def send_signal(self, signum: int) -> None:
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def kill_group(self) -> None:
        if self._process.returncode is None:
            # It leads its own session (start_new_session), so its group id is its pid,
            # and stays reserved until we reap it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            self.kill()

    async def wait(self) -> int:
        return await self._process.wait()


class LocalReplica:
    """A worker process and the tail of what it wrote to stderr."""

    def __init__(
        self,
        replica_id: str,
        process: ReplicaProcess,
        stderr: asyncio.StreamReader,
        log_path: Path | None,
    ):
        self.replica_id = replica_id
        self.process = process
        self.log_path = log_path
        self._stderr_stream = stderr
        self._stderr: deque[str] = deque(maxlen=40)
        self.killed = False
        self._reader: asyncio.Task[None] | None = None
        self._exit: asyncio.Task[int] | None = None

    def describe(self) -> str:
        return f"pid {self.process.pid}"

    def stderr_tail(self) -> str:
        return "".join(self._stderr).strip()

    async def _collect(self) -> None:
        sink = (
            os.fdopen(
                os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
                "a",
                encoding="utf-8",
            )
            if self.log_path
            else None
        )
        try:
            async for raw in self._stderr_stream:
                line = raw.decode(errors="replace")
                self._stderr.append(line)
                if sink is not None:
                    sink.write(line)
                    sink.flush()
        finally:
            if sink is not None:
                sink.close()


class LocalBackend:
    """Start replicas as local processes: forked from a fork server, or exec'd."""

    name = "local"
    #: Replicas run on this machine, in the caller's working directory.
    shares_files = True

    def __init__(self, log_dir: Path | None = None, *, fork_server: bool | None = None) -> None:
        self._log_dir = log_dir
        self._replicas: dict[str, LocalReplica] = {}
        self._fork = forkserver.supported() and (
            forkserver.wanted() if fork_server is None else fork_server
        )
        self._fork_server: ForkServer | None = None
        self._fork_restarts = 0

    async def open(self) -> None:
        """Start the fork server now, so its imports overlap the controller's start."""
        if self._fork and self._fork_server is None:
            await self._start_fork_server()

    async def start(self, launch: ReplicaLaunch) -> LocalReplica:
        spec = launch.environment
        env = dict(os.environ)
        cwd = spec.working_dir or None
        if launch.fetch_code:
            env.pop("PYTHONPATH", None)
            cwd = str(private_dir(code_dir()))
        elif spec.python_path:
            env["PYTHONPATH"] = os.pathsep.join(spec.python_path)
        env.update(dict(spec.env_vars))
        for name in _SECRETS:
            env.pop(name, None)
        # Secrets travel in the environment, never on the command line (ps would show them).
        env.update(launch.security.environment())
        env.setdefault("REUSE_RUNTIME_LOG_LEVEL", "warning")
        # The replica's stderr goes to its log file: JSON lines there.
        env.setdefault("REUSE_RUNTIME_LOG_FORMAT", "json")
        args = ["worker", *worker_arguments(launch)]
        log_path = self._log_dir / f"{launch.replica_id}.log" if self._log_dir else None
        # A replica that fetches its code starts in its code folder: the fork server gives
        # it that folder and the sys.path exec would (no PYTHONPATH of the caller's).
        forked = await self._forked(args, env, cwd or "")
        if forked is not None:
            process, stderr = forked
        else:
            process, stderr = await self._exec(args, env, cwd)
        replica = LocalReplica(launch.replica_id, process, stderr, log_path)
        loop = asyncio.get_running_loop()
        replica._reader = loop.create_task(replica._collect(), name=f"stderr:{launch.replica_id}")
        replica._exit = loop.create_task(process.wait(), name=f"exit:{launch.replica_id}")
        self._replicas[launch.replica_id] = replica
        return replica

    async def _exec(
        self, args: list[str], env: dict[str, str], cwd: str | None
    ) -> tuple[ReplicaProcess, asyncio.StreamReader]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "reuse_runtime",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,  # a Ctrl-C in the caller's terminal reaches only the caller
        )
        assert process.stderr is not None
        return ExecProcess(process), process.stderr

    async def _forked(
        self, args: list[str], env: dict[str, str], working_dir: str
    ) -> tuple[ReplicaProcess, asyncio.StreamReader] | None:
        """The replica forked by the fork server; None when it must be exec'd instead."""
        if not self._fork:
            return None
        server = self._fork_server
        if server is None or (server.failure and self._fork_restarts < FORK_SERVER_RESTARTS):
            if server is not None:
                self._fork_restarts += 1
                log.warning("the fork server ended; starting another", why=server.failure)
                await server.close()
            server = await self._start_fork_server()
        if not server.can_fork(env):
            return None
        cwd = working_dir or os.getcwd()
        forkserver.check_directory(cwd)  # fails as exec into it would
        read_end, write_end = os.pipe()
        try:
            process = await server.spawn(args, env, cwd, write_end)
        except ForkRefused as exc:
            os.close(read_end)
            log.debug("starting a replica with exec", why=str(exc))
            return None
        except ForkServerError as exc:
            os.close(read_end)
            log.warning("could not fork a replica; starting it with exec", error=str(exc))
            return None
        loop = asyncio.get_running_loop()
        stderr = asyncio.StreamReader(loop=loop)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stderr, loop=loop), os.fdopen(read_end, "rb", 0)
        )
        return process, stderr

    async def _start_fork_server(self) -> ForkServer:
        log_path = self._log_dir / "fork-server.log" if self._log_dir else None
        server = self._fork_server = ForkServer(log_path)
        environment = {k: v for k, v in os.environ.items() if k not in _SECRETS}
        await server.start(environment)
        return server

    async def stop(self, handle: ReplicaHandle, grace: float) -> None:
        handle = _local(handle)
        handle.process.send_signal(signal.SIGTERM)

        async def overran() -> None:
            log.warning(
                "replica ignored SIGTERM; killing it", replica=handle.replica_id, grace_period=grace
            )
            await self.kill(handle)

        await stop_within(self._exited(handle), grace, overran)

    async def kill(self, handle: ReplicaHandle) -> None:
        """SIGKILL the replica and its process group: a process a task forked goes too."""
        handle = _local(handle)
        if handle.process.returncode is None:
            handle.killed = True
            handle.process.kill_group()
        await self._exited(handle)

    async def wait(self, handle: ReplicaHandle) -> ExitStatus:
        handle = _local(handle)
        code = await self._exited(handle)
        if handle._reader is not None:
            # The stderr tail explains the exit; give the reader a moment to finish.
            with contextlib.suppress(asyncio.TimeoutError):
                await wait_within(asyncio.shield(handle._reader), 1.0)
        self._replicas.pop(handle.replica_id, None)
        if code < 0:
            return ExitStatus(signal=-code, by_runtime=handle.killed)
        return ExitStatus(code=code)

    @staticmethod
    async def _exited(handle: LocalReplica) -> int:
        assert handle._exit is not None
        return await asyncio.shield(handle._exit)

    def list(self) -> list[ReplicaHandle]:
        return [r for r in self._replicas.values() if r.process.returncode is None]

    async def healthy(self, handle: ReplicaHandle) -> bool:
        return _local(handle).process.returncode is None

    async def close(self) -> None:
        replicas = list(self._replicas.values())
        await asyncio.gather(*(self.stop(r, 5.0) for r in replicas), return_exceptions=True)
        for replica in replicas:
            for task in (replica._reader, replica._exit):
                if task is not None and not task.done():
                    task.cancel()
        self._replicas.clear()
        if self._fork_server is not None:
            await self._fork_server.close()


def _local(handle: ReplicaHandle) -> LocalReplica:
    return own_handle(handle, LocalReplica, "local")
