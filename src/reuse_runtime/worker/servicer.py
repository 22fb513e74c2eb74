"""`WorkerService`: what a replica does for its callers, independent of transport.

:mod:`reuse_runtime.wire.services` adapts it to gRPC; the controller link
(:mod:`reuse_runtime.worker.link`) feeds it the same way. Both open a
:class:`TaskSession` per stream: it runs the stream's tasks and hands back their
results and output in batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from reuse_runtime.errors import ClosedError
from reuse_runtime.model import (
    ErrorKind,
    LogLine,
    ReplicaReport,
    TaskResult,
    TaskSpec,
)
from reuse_runtime.worker.executor import Executor
from reuse_runtime.worker.metrics import WorkerMetrics
from reuse_runtime.worker.monitor import ReplicaMonitor
from reuse_runtime.worker.project import ProjectCode


class TaskSession:
    """The tasks of one stream: starts them, and batches their results and output back.

    Batching adds no latency: :meth:`batches` yields whatever is ready each time
    it wakes, so under light load a batch holds one result, and under heavy load
    results pile up while the previous batch is being sent.
    """

    def __init__(self, service: WorkerService) -> None:
        self._service = service
        self._results: list[TaskResult] = []
        self._logs: list[LogLine] = []
        self._wakeup = asyncio.Event()
        self._inflight: set[str] = set()
        self._input_closed = False

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def submit(self, spec: TaskSpec) -> None:
        """Start a task; its result arrives through :meth:`batches`."""
        if self._service.draining:
            self._reply(_unavailable(spec, "this replica is draining and takes no new tasks"))
            return
        rejected = self._service.executor.start(spec, self._emit, self._done)
        if rejected is not None:
            self._reply(rejected)
        else:
            self._inflight.add(spec.task_id)

    def cancel(self, task_id: str) -> None:
        if task_id in self._inflight:
            self._service.executor.cancel(task_id)

    def close_input(self) -> None:
        """No more tasks will come; :meth:`batches` ends once the in-flight ones finish."""
        self._input_closed = True
        self._wakeup.set()

    def abort(self, reason: str) -> None:
        """The stream is gone: cancel what still runs for it."""
        for task_id in list(self._inflight):
            self._service.executor.cancel(task_id, reason)
        self.close_input()

    async def batches(self) -> AsyncIterator[tuple[list[TaskResult], list[LogLine]]]:
        while True:
            if self._results or self._logs:
                results, logs = self._results, self._logs
                self._results, self._logs = [], []
                yield results, logs
                continue
            if self._input_closed and not self._inflight:
                return
            self._wakeup.clear()
            await self._wakeup.wait()

    def _emit(self, line: LogLine) -> None:
        self._logs.append(line)
        self._wakeup.set()

    def _done(self, result: TaskResult) -> None:
        self._inflight.discard(result.task_id)
        self._reply(result)

    def _reply(self, result: TaskResult) -> None:
        self._results.append(result)
        self._wakeup.set()


class WorkerService:
    """The replica's operations: run tasks, cancel them, report status."""

    def __init__(
        self, executor: Executor, monitor: ReplicaMonitor, code_folder: Path | None = None
    ) -> None:
        self.executor = executor
        self.monitor = monitor
        # The project code bundle this replica runs (see worker/project.py).
        self.project = ProjectCode(executor.loader, code_folder)
        # The replica's Prometheus metrics, when it serves them (--metrics-port).
        self.metrics: WorkerMetrics | None = None

    @property
    def draining(self) -> bool:
        return self.monitor.draining

    async def execute(self, spec: TaskSpec) -> TaskResult:
        """Run one task. Its output is dropped: use a stream to receive it."""
        if self.draining:
            raise ClosedError("this replica is draining and takes no new tasks")
        return await self.executor.execute(spec, _discard)

    def open_session(self) -> TaskSession:
        return TaskSession(self)

    def cancel(self, task_id: str, run_id: str) -> int:
        if task_id:
            return int(self.executor.cancel(task_id))
        return 0

    def report(self) -> ReplicaReport:
        return self.monitor.report()


def _discard(line: LogLine) -> None:
    return None


def _unavailable(spec: TaskSpec, message: str) -> TaskResult:
    return TaskResult.failure(spec.task_id, ErrorKind.UNAVAILABLE, "ClosedError", message)
