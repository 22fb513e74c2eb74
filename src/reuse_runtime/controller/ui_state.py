"""The controller as the web UI sees it: its service, as a :class:`~reuse_runtime.ui.LiveState`.

Every call reads the service's own structures on the controller's loop, and only
when a browser asks (the history sampler aside: a few counters per environment
every ten seconds). Nothing here is on a task's path, and nothing walks a run's
tasks: what is running is read from the replicas (at most their slots), a parent's
waiting children are counted by the size of its set.
"""

from __future__ import annotations

import socket
import ssl

from reuse_runtime.controller.records import TaskRecord
from reuse_runtime.controller.runs import RunBook
from reuse_runtime.controller.service import ControllerService
from reuse_runtime.errors import RunNotFoundError
from reuse_runtime.model import EnvironmentStatus, RunProgress
from reuse_runtime.security import Security
from reuse_runtime.store.interface import RunReader
from reuse_runtime.store.phases import ActionPhase
from reuse_runtime.ui import LiveState, PoolCounters, RunningAction, RunningPage, WebUI

#: Why the UI's abort cancels a run's tasks.
ABORTED = "aborted from the web UI"


class ControllerLiveState:
    """A :class:`~reuse_runtime.ui.LiveState` over one controller's service."""

    def __init__(self, service: ControllerService, book: RunBook | None = None) -> None:
        self._service = service
        self._book = book

    def environments(self) -> tuple[EnvironmentStatus, ...]:
        return self._service.status().environments

    def counters(self) -> tuple[PoolCounters, ...]:
        return tuple(
            PoolCounters(
                pool.key,
                pool.spec.name,
                pool.completed,
                pool.failed,
                pool.waiting,
                len(pool.replicas),
            )
            for pool in self._service.pools.values()
        )

    def progress(self, run: str) -> RunProgress:
        return self._service.run_progress(run)

    def running(
        self, run: str, *, parent: str | None = None, group: str | None = None, limit: int = 50
    ) -> RunningPage:
        service = self._service
        on_replicas: list[TaskRecord] = []
        # The tasks on replicas, not the run's: a fan-out of 100,000 children waiting
        # for a slot costs nothing here. A parent waiting for its children is on its
        # replica too (suspended).
        for pool in service.pools.values():
            for replica in pool.replicas.values():
                for record in replica.running.values():
                    spec = record.spec
                    if spec.run_id == run and (parent is None or spec.parent_task_id == parent):
                        on_replicas.append(record)
        counted: dict[tuple[str, ActionPhase], int] = {}
        for record in on_replicas:
            key = (record.spec.group, ActionPhase.RUNNING)
            counted[key] = counted.get(key, 0) + 1
        waiting = 0
        if parent:
            holder = service.tasks.get(parent)
            if holder is not None and holder.kids and holder.spec.run_id == run:
                waiting = max(0, len(holder.kids) - len(on_replicas))
        if group is not None:
            on_replicas = [r for r in on_replicas if r.spec.group == group]
        shown = tuple(_action(service, record) for record in on_replicas[:limit])
        groups = tuple((name, phase, n) for (name, phase), n in sorted(counted.items()))
        return RunningPage(shown, len(on_replicas), groups, waiting)

    def action(self, run: str, action_id: str) -> RunningAction | None:
        record = self._service.tasks.get(action_id)
        if record is None or record.spec.run_id != run:
            return None
        return _action(self._service, record)

    def aborting(self, run: str) -> bool:
        owned = self._book.live.get(run) if self._book is not None else None
        return owned is not None and bool(owned.aborted)

    async def abort(self, run: str, reason: str) -> bool:
        """Abort ``run``: a run this controller owns through its book (it ends ABORTED);
        any other, by cancelling every task of it here (each root's tree, with
        ``reason``). Whether there was anything to abort."""
        if self._book is not None:
            try:
                return await self._book.abort_run(run, reason) > 0
            except RunNotFoundError:
                pass  # not one of the book's: its tasks, if any are here
        service = self._service
        roots = [
            r
            for r in service.tasks.values()
            if r.spec.run_id == run and (r.parent is None or r.parent.spec.run_id != run)
        ]
        for record in roots:
            service.cancel_tree(record, f"cancelled: {reason or ABORTED}")
        return bool(roots)

    async def signal(self, run: str, action_id: str, value: str) -> None:
        """Signal the condition ``action_id`` of ``run`` with ``value``, parsed as its type."""
        if self._book is None:
            raise RunNotFoundError("this controller keeps no runs' conditions")
        self._book.conditions.signal(run, action_id, value)


def _phase(record: TaskRecord) -> ActionPhase:
    return ActionPhase.RUNNING if record.replica is not None else ActionPhase.QUEUED


def _action(service: ControllerService, record: TaskRecord) -> RunningAction:
    spec = record.spec
    replica = record.replica
    pool = service.pools.get(record.submission.env_key)
    return RunningAction(
        action_id=spec.task_id,
        parent_id=spec.parent_task_id,
        task=spec.name,
        environment=pool.spec.name if pool is not None else record.submission.env_key,
        group=spec.group,
        phase=_phase(record),
        replica=replica.replica_id if replica is not None else "",
        attempts=record.attempts,
    )


def server_tls(security: Security) -> ssl.SSLContext | None:
    """An HTTPS context from the controller's certificate, when it has one (browsers
    present no client certificate: the token is what they log in with)."""
    tls = security.tls
    if tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert_path, tls.key_path)
    return context


def web_ui(
    service: ControllerService,
    reader: RunReader,
    security: Security,
    *,
    token: str,
    sock: socket.socket,
    book: RunBook | None = None,
) -> WebUI:
    """The controller's web UI (not started) on its listening socket: its store, its live
    state, its abort (through ``book``, the runs the controller owns, when given)."""
    live = ControllerLiveState(service, book)
    state: LiveState = live
    return WebUI(
        reader,
        token=token,
        live=state,
        abort=live.abort,
        signal=live.signal if book is not None else None,
        sock=sock,
        ssl_context=server_tls(security),
    )
