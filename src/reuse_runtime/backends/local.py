"""`LocalBackend`: replicas as `reuse-runtime worker` subprocesses on this machine.

This is the embedded default. Each replica runs with the controller's Python,
in the environment's working directory and with its ``PYTHONPATH``, so it can
import the same code the caller can.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections import deque
from pathlib import Path

import structlog

from reuse_runtime.aio import stop_within, wait_within
from reuse_runtime.backends.base import (
    ExitStatus,
    ReplicaHandle,
    ReplicaLaunch,
    own_handle,
    worker_arguments,
)
from reuse_runtime.security import TLS_CA_ENV, TLS_CERT_ENV, TLS_KEY_ENV, TOKEN_ENV

log = structlog.get_logger("reuse_runtime.backends")


class LocalReplica:
    """A worker subprocess and the tail of what it wrote to stderr."""

    def __init__(self, replica_id: str, process: asyncio.subprocess.Process, log_path: Path | None):
        self.replica_id = replica_id
        self.process = process
        self.log_path = log_path
        self._stderr: deque[str] = deque(maxlen=40)
        self.killed = False
        self._reader: asyncio.Task[None] | None = None
        self._exit: asyncio.Task[int] | None = None

    def describe(self) -> str:
        return f"pid {self.process.pid}"

    def stderr_tail(self) -> str:
        return "".join(self._stderr).strip()

    async def _collect(self) -> None:
        assert self.process.stderr is not None
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
            async for raw in self.process.stderr:
                line = raw.decode(errors="replace")
                self._stderr.append(line)
                if sink is not None:
                    sink.write(line)
                    sink.flush()
        finally:
            if sink is not None:
                sink.close()


class LocalBackend:
    """Start replicas as local subprocesses."""

    name = "local"

    def __init__(self, log_dir: Path | None = None) -> None:
        self._log_dir = log_dir
        self._replicas: dict[str, LocalReplica] = {}

    async def start(self, launch: ReplicaLaunch) -> LocalReplica:
        spec = launch.environment
        env = dict(os.environ)
        if spec.python_path:
            env["PYTHONPATH"] = os.pathsep.join(spec.python_path)
        env.update(dict(spec.env_vars))
        for name in (TOKEN_ENV, TLS_CERT_ENV, TLS_KEY_ENV, TLS_CA_ENV):
            env.pop(name, None)
        # Secrets travel in the environment, never on the command line (ps would show them).
        env.update(launch.security.environment())
        env.setdefault("REUSE_RUNTIME_LOG_LEVEL", "warning")
        # The replica's stderr goes to its log file: JSON lines there.
        env.setdefault("REUSE_RUNTIME_LOG_FORMAT", "json")
        args = [sys.executable, "-m", "reuse_runtime", "worker", *worker_arguments(launch)]
        cwd = spec.working_dir or None
        log_path = self._log_dir / f"{launch.replica_id}.log" if self._log_dir else None
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,  # a Ctrl-C in the caller's terminal reaches only the caller
        )
        replica = LocalReplica(launch.replica_id, process, log_path)
        loop = asyncio.get_running_loop()
        replica._reader = loop.create_task(replica._collect(), name=f"stderr:{launch.replica_id}")
        replica._exit = loop.create_task(process.wait(), name=f"exit:{launch.replica_id}")
        self._replicas[launch.replica_id] = replica
        return replica

    async def stop(self, handle: ReplicaHandle, grace: float) -> None:
        handle = _local(handle)
        if handle.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
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
            # The replica leads its own session (start_new_session), so its group id is
            # its pid, and stays reserved until we reap it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(handle.process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                handle.process.send_signal(signal.SIGKILL)
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


def _local(handle: ReplicaHandle) -> LocalReplica:
    return own_handle(handle, LocalReplica, "local")
