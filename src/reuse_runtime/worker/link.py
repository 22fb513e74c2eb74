"""`ControllerLink`: a replica attached to its controller (``--controller``).

One stream carries everything: the replica says hello, the controller answers
with a :class:`~reuse_runtime.model.ReplicaInit` (the on-start hook runs now,
before any task), then sends work. The replica sends back results and output
in batches, and a report on every busy/idle transition and at least every
heartbeat interval: every heartbeat while it has tasks, and every idle heartbeat
(the init says how long; a controller that says nothing gets every heartbeat)
while it has none.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable

import structlog

from reuse_runtime.aio import TaskSet, wait_within
from reuse_runtime.client import ControllerConnection
from reuse_runtime.model import (
    DispatchCommand,
    DrainCommand,
    FunctionRef,
    ReplicaHello,
    ReplicaInit,
)
from reuse_runtime.security import Security
from reuse_runtime.worker.servicer import TaskSession, WorkerService

log = structlog.get_logger("reuse_runtime.worker")


class ControllerLink:
    """Serve one controller over its Connect stream.

    Call-order contract: ``await run()`` in a tracked task. It returns when the
    controller ends the stream, and raises when the stream breaks; either way it
    calls ``on_end`` first (with the error, or None), before its own cleanup, so
    the replica starts shutting down at once. During a drain, call :meth:`finish`
    once no task runs: it flushes the last results, sends a final report, and
    closes the stream.
    """

    def __init__(
        self,
        service: WorkerService,
        address: str,
        security: Security,
        hello: ReplicaHello,
        *,
        heartbeat: float,
        on_end: Callable[[BaseException | None], None],
        resumed: bool = False,
    ) -> None:
        self._service = service
        self._address = address
        self._security = security
        self._hello = hello
        self._heartbeat = heartbeat
        self._on_end = on_end
        # A link dialled again after a lost one: the on-start hook already ran here.
        self._resumed = resumed
        self._tasks = TaskSet("controller-link")
        self._session: TaskSession | None = None
        self._conn: ControllerConnection | None = None
        self._init: ReplicaInit | None = None
        self._started = asyncio.Event()  # set once the on-start hook has ended
        self._finishing = False
        self._forward: asyncio.Task[None] | None = None
        self.drain_requested = asyncio.Event()
        self.drain_reason = ""
        # The controller took this replica: its init arrived.
        self.attached = False
        # Its code could not be had: it never reports ready, not even as it ends.
        self._no_code = False

    async def run(self) -> None:
        conn = ControllerConnection(self._address, self._security, self._hello)
        session = self._service.open_session()
        self._conn, self._session = conn, session
        forward = self._forward = self._tasks.spawn(self._forward_results(session, conn), "results")
        try:
            async for command in conn.commands():
                if isinstance(command, DispatchCommand):
                    for spec in command.tasks:
                        session.submit(spec)
                    for task_id in command.cancel:
                        session.cancel(task_id)
                elif isinstance(command, ReplicaInit):
                    await self._start(command, conn)
                elif isinstance(command, DrainCommand):
                    self.drain_reason = command.reason
                    self.drain_requested.set()
        except Exception as exc:
            self._on_end(exc)
            raise
        else:
            self._on_end(None)
        finally:
            if not forward.done():
                session.abort("the controller stream ended")
            await self._tasks.cancel_all("controller link closed")
            if not self._finishing:
                await conn.discard()  # a link dialled again gets a channel of its own

    async def _start(self, init: ReplicaInit, conn: ControllerConnection) -> None:
        # Hooks pair up: on_stop runs at the drain of every replica whose on_start ran,
        # after it ended. A replica told to drain before its init came runs neither.
        if self._init is not None or self._finishing:
            return
        self._init = init
        if self._service.metrics is not None:
            self._service.metrics.bind(init.environment)
        # The project's code comes before anything that may import it (a hook, a task).
        # A bundle that cannot be had ends the link: the replica exits saying why.
        try:
            await self._service.project.install(
                init.code_bundle,
                fetch=conn.fetch_bundle if init.fetch_code else None,
                source=f"the controller at {self._address}",
            )
        except BaseException:
            self._init = None  # its on-start never ran, so no on-stop runs either
            self._no_code = True
            self._started.set()
            raise
        self.attached = True
        try:
            if init.on_start is not None and not self._resumed:
                await run_hook(self._service, init.on_start, init, "on_start")
        finally:
            self._started.set()
        conn.send_report(self._service.report())
        self._tasks.spawn(self._report_loop(conn), "reports")

    def again(self) -> ControllerLink:
        """A new link to the same controller, for the same replica (``--reconnect``)."""
        return ControllerLink(
            self._service,
            self._address,
            self._security,
            self._hello,
            heartbeat=self._heartbeat,
            on_end=self._on_end,
            resumed=self._resumed or self.attached,
        )

    async def finish(self, timeout: float = 5.0) -> None:
        """Flush the remaining results, run the on-stop hook, send a final report, half-close."""
        self._finishing = True
        if self._init is not None:
            await self._started.wait()  # an on_start still running ends first
        session, conn = self._session, self._conn
        if session is None or conn is None:
            return
        session.close_input()
        if self._forward is not None:
            # Ends once every in-flight task has reported; the drain already waited for them.
            await asyncio.wait({self._forward}, timeout=timeout)
        if self._init is not None and self._init.on_stop is not None:
            await run_hook(self._service, self._init.on_stop, self._init, "on_stop")
        if not self._no_code:
            conn.send_report(self._service.report())
        await conn.close()

    async def _forward_results(self, session: TaskSession, conn: ControllerConnection) -> None:
        async for results, logs in session.batches():
            conn.send_results(results, logs)

    async def _report_loop(self, conn: ControllerConnection) -> None:
        changed = self._service.monitor.changed
        loop = asyncio.get_running_loop()
        idle_every = max(self._heartbeat, _idle_heartbeat(self._init))
        report = self._service.report()
        while True:
            idle = not (report.active or report.waiting or report.draining)
            changed.clear()
            # A timer, not wait_for: a cancellation must never be swallowed here.
            heartbeat = loop.call_later(idle_every if idle else self._heartbeat, changed.set)
            try:
                await changed.wait()
            finally:
                heartbeat.cancel()
            report = self._service.report()
            conn.send_report(report)


#: The longest idle heartbeat a replica takes from its controller, in seconds.
MAX_IDLE_HEARTBEAT = 60.0


def _idle_heartbeat(init: ReplicaInit | None) -> float:
    """The idle heartbeat the controller asked for; 0 for none, or one out of bounds."""
    asked = init.idle_heartbeat if init is not None else 0.0
    return asked if 0.0 < asked <= MAX_IDLE_HEARTBEAT else 0.0


async def run_hook(service: WorkerService, ref: FunctionRef, init: ReplicaInit, which: str) -> None:
    """Run a lifecycle hook; a failing hook is logged, and does not kill the replica."""
    try:
        fn = await service.executor.loader.resolve(ref, init.bundle)
        limit = init.stop_grace if which == "on_stop" else None
        if inspect.iscoroutinefunction(fn):
            await wait_within(fn(), limit)
        else:
            # A sync hook (a model load, say) must not block the loop's heartbeats.
            await wait_within(asyncio.to_thread(fn), limit)
    except Exception as exc:
        log.error(f"{which} hook failed", hook=str(ref), error=f"{type(exc).__name__}: {exc}")
