"""The controller as the web UI sees it: its service, as a :class:`~reuse_runtime.ui.LiveState`.

Every call reads the service's own structures on the controller's loop, and only
when a browser asks (the history sampler aside: a few counters per environment
every ten seconds). Nothing here is on a task's path.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable

from reuse_runtime.controller.records import TaskRecord
from reuse_runtime.controller.service import ControllerService
from reuse_runtime.model import EnvironmentStatus, RunProgress
from reuse_runtime.security import Security
from reuse_runtime.store.interface import RunReader
from reuse_runtime.store.phases import ActionPhase
from reuse_runtime.ui import LiveState, PoolCounters, RunningAction, RunningPage, WebUI

#: Why the UI's abort cancels a run's tasks.
ABORTED = "aborted from the web UI"


class ControllerLiveState:
    """A :class:`~reuse_runtime.ui.LiveState` over one controller's service."""

    def __init__(self, service: ControllerService) -> None:
        self._service = service

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
        tasks = self._service.tasks
        candidates: Iterable[TaskRecord]
        counted: dict[tuple[str, ActionPhase], int] = {}
        if parent is None:
            candidates = [r for r in tasks.values() if r.spec.run_id == run]
        elif not parent:
            candidates = [
                r for r in tasks.values() if r.spec.run_id == run and not r.spec.parent_task_id
            ]
        else:
            holder = tasks.get(parent)
            kids = holder.kids if holder is not None and holder.spec.run_id == run else None
            candidates = list(kids) if kids else []
            for record in candidates:
                key = (record.spec.group, _phase(record))
                counted[key] = counted.get(key, 0) + 1
        if group is not None:
            candidates = [r for r in candidates if r.spec.group == group]
        running: list[RunningAction] = []
        waiting: list[RunningAction] = []
        total = 0
        for record in candidates:
            total += 1
            chosen = running if record.replica is not None else waiting
            if len(chosen) < limit:
                chosen.append(_action(self._service, record))
        shown = (running + waiting)[:limit]
        groups = tuple((name, phase, n) for (name, phase), n in sorted(counted.items()))
        return RunningPage(tuple(shown), total, groups)

    def action(self, run: str, action_id: str) -> RunningAction | None:
        record = self._service.tasks.get(action_id)
        if record is None or record.spec.run_id != run:
            return None
        return _action(self._service, record)

    async def abort(self, run: str, reason: str) -> bool:
        """Cancel every task of ``run`` at this controller (each root's tree, with
        ``reason``); whether there was any."""
        service = self._service
        roots = [
            r
            for r in service.tasks.values()
            if r.spec.run_id == run and (r.parent is None or r.parent.spec.run_id != run)
        ]
        for record in roots:
            service.cancel_tree(record, f"cancelled: {reason or ABORTED}")
        return bool(roots)


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
    host: str,
    port: int,
) -> WebUI:
    """The controller's web UI (not started): its store, its live state, its abort."""
    live = ControllerLiveState(service)
    state: LiveState = live
    return WebUI(
        reader,
        token=token,
        live=state,
        abort=live.abort,
        host=host,
        port=port,
        ssl_context=server_tls(security),
    )
