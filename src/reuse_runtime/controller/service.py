"""`ControllerService`: pools per environment, behind the transport-neutral operations.

:mod:`reuse_runtime.wire.services` adapts it to gRPC. Clients register an
environment once and then submit tasks on a :class:`SubmitSession` (one per
stream); replicas attach through :meth:`ControllerService.attach`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import structlog

from reuse_runtime.backends.base import Backend
from reuse_runtime.bundles.store import BundleStore
from reuse_runtime.controller.cache import ResultCache
from reuse_runtime.controller.metrics import ControllerMetrics
from reuse_runtime.controller.pool import ReplicaPool
from reuse_runtime.controller.records import ReplicaState, TaskRecord
from reuse_runtime.controller.replay import ReplayBudget, ReplayLog, default_replay_bytes
from reuse_runtime.controller.telemetry import PoolTelemetry, RunTable
from reuse_runtime.controller.versions import CodeVersions
from reuse_runtime.errors import BadInputError, ClosedError
from reuse_runtime.model import (
    ENVIRONMENT_NAME,
    CodeBundle,
    ControllerStatus,
    EnvironmentSpec,
    EnvironmentStatus,
    ErrorKind,
    GroupStatus,
    LogLine,
    ReplicaReport,
    ReplicaStatus,
    RunProgress,
    Submission,
    TaskResult,
    TaskState,
)
from reuse_runtime.security import Security

log = structlog.get_logger("reuse_runtime.controller")

#: Why the tasks of a client whose stream ended are cancelled.
CLIENT_GONE = "cancelled: the client that submitted it went away"
#: What a descendant of a cancelled task is told.
ORPHANED = "cancelled: its parent was cancelled"
#: Cancelled tasks remembered (see ControllerService.cancel_tree), and for how long.
CANCELLED_REMEMBERED = 100_000
CANCELLED_FOR = 600.0


class SubmitSession:
    """The tasks of one client stream: submits them, and batches results and output back."""

    def __init__(self, service: ControllerService, client_id: str = "") -> None:
        self._service = service
        self.client_id = client_id
        self._results: list[TaskResult] = []
        self._logs: list[LogLine] = []
        self._wakeup = asyncio.Event()
        self._outstanding: dict[str, TaskRecord] = {}
        self._input_closed = False
        self._ended = False
        self._returned: list[str] = []
        self._runs: set[str] = set()
        self._held: dict[str, int] = {}  # run id -> children this client holds back

    def submit(self, submission: Submission) -> None:
        service = self._service
        spec = submission.task
        if service.draining:
            # Shutting down: the client sends it to the next controller.
            self._returned.append(spec.task_id)
            self._wakeup.set()
            return
        if spec.bundle is not None:
            # Kept before anything can answer the task here (a cache hit, a rejection):
            # its client sends a version's source once per stream, and the next tasks
            # of that version, which come without it, may need it on a replica. One
            # copy per version: replicas get it with their first task that needs it
            # (see Dispatcher._dispatch).
            service.bundles.setdefault(spec.bundle.digest, spec.bundle)
            spec = replace(spec, bundle=None)
        pool = service.pools.get(submission.env_key)
        if pool is None:
            self._reject(
                spec.task_id,
                ErrorKind.BAD_INPUT,
                (
                    f"unknown environment {submission.env_key!r}: register it first "
                    f"(the controller may have restarted)"
                ),
            )
            return
        problem = spec.problem()
        if problem is not None:
            self._reject(spec.task_id, ErrorKind.BAD_INPUT, problem)
            return
        existing = service.tasks.get(spec.task_id)
        if existing is not None:
            if not self._adopt(existing):
                self._reject(
                    spec.task_id,
                    ErrorKind.BAD_INPUT,
                    f"task id {spec.task_id!r} is already in use; ids must be unique",
                )
            return
        if service.cancelled:  # a task sent again (its client lost a controller) starts clean
            service.cancelled.pop(spec.task_id, None)
        if submission.cache_key and not submission.cache_overwrite:
            value = service.cached_result(submission)
            if value is not None:
                self._results.append(
                    TaskResult(spec.task_id, TaskState.SUCCEEDED, value=value, cached=True)
                )
                self._wakeup.set()
                return
        record = TaskRecord(
            submission,
            spec,
            self._deliver,
            retries_left=max(0, submission.retries),
            hand_back=self._hand_back,
            owner=self,
        )
        parent = service.tasks.get(spec.parent_task_id) if spec.parent_task_id else None
        if (
            parent.cancel_requested
            if parent is not None
            else bool(spec.parent_task_id and service.cancelled)
            and spec.parent_task_id in service.cancelled
        ):
            # A parent that is cancelled (or was, and is gone) starts no more children.
            self._results.append(
                TaskResult.failure(
                    spec.task_id,
                    ErrorKind.CANCELLED,
                    "CancelledError",
                    f"task {spec.name or spec.task_id} was {ORPHANED}",
                    state=TaskState.CANCELLED,
                )
            )
            self._wakeup.set()
            return
        if parent is not None:
            parent.made_calls = True
            log = parent.replay
            key = spec.call_key
            if key:
                replayed = log.done.get(key) if log is not None and log.done else None
                if replayed is None and service.restored:
                    # A run this controller resumed: its children recorded before the restart.
                    restored = service.restored.get(spec.run_id)
                    replayed = restored.get(key) if restored is not None else None
                if replayed is not None:  # it already ran for an earlier attempt of its parent
                    self._results.append(replace(replayed, task_id=spec.task_id))
                    pool.telemetry.task_replayed()
                    self._wakeup.set()
                    return
                if log is not None and log.nested:
                    record.replay = log.nested_log(key, create=False)
            record.parent = parent
            if parent.kids is None:
                parent.kids = set()
                if parent.replay is None:
                    parent.replay = _log_of(parent, service.replay_budget)
            parent.kids.add(record)
            service.pool_of(parent).child_started(parent)
        if spec.run_id:
            run = record.run = service.runs.opened(spec.run_id, bool(spec.parent_task_id))
            if run.record is not None:
                record.created = time.time()
        if submission.stream_logs and spec.run_id:
            self._runs.add(spec.run_id)
            service.log_routes[spec.run_id] = self
        service.tasks[spec.task_id] = record
        self._outstanding[spec.task_id] = record
        if spec.group:
            service.group_counts(submission.env_key, spec.group)[0] += 1
        pool.submit(record)

    def _adopt(self, record: TaskRecord) -> bool:
        """Take over a task this client sent on a stream that broke, instead of running it
        twice: its result comes here, and a cancellation the break caused is withdrawn."""
        old = record.owner
        if record.finished or not self.client_id or old is self or old.client_id != self.client_id:
            return False
        old._outstanding.pop(record.task_id, None)
        record.owner, record.deliver, record.hand_back = self, self._deliver, self._hand_back
        self._outstanding[record.task_id] = record
        self._service.cancelled.pop(record.task_id, None)
        if record.cancel_requested.startswith(CLIENT_GONE):
            record.cancel_requested = ""
            record.revived = True  # if the cancel already reached it, it runs again
        return True

    def cancel(self, task_id: str) -> None:
        """Cancel one of this stream's own tasks (its caller stopped waiting for it)."""
        record = self._outstanding.get(task_id)
        if record is not None:
            self._service.cancel_tree(record, "cancelled by its caller")

    def held(self, run_id: str, count: int) -> None:
        """The client now holds back ``count`` children of ``run_id`` (flow control)."""
        change = max(0, count) - self._held.get(run_id, 0)
        if count > 0:
            self._held[run_id] = count
        else:
            self._held.pop(run_id, None)
        if change:
            self._service.runs.held(run_id, change)

    def close_input(self) -> None:
        self._input_closed = True
        self._wakeup.set()

    def abort(self, reason: str) -> None:
        """The client went away: cancel what it still waits for, and their descendants."""
        why = f"{CLIENT_GONE} ({reason})"
        for record in list(self._outstanding.values()):
            if record.parent is not None:
                # The replica running its parent is gone (see Retries.lost).
                record.parent.lost_children = True
            self._service.cancel_tree(record, why)
        for run_id in self._runs:
            if self._service.log_routes.get(run_id) is self:
                del self._service.log_routes[run_id]
        self._service.sessions.discard(self)
        for run_id in list(self._held):
            self.held(run_id, 0)
        self.close_input()

    def end(self) -> None:
        """End the stream from this side once what is queued is sent (a shutdown)."""
        self._ended = True
        self._wakeup.set()

    def take_returned(self) -> list[str]:
        returned, self._returned = self._returned, []
        return returned

    def log(self, lines: list[LogLine]) -> None:
        self._logs.extend(lines)
        self._wakeup.set()

    async def batches(self) -> AsyncIterator[tuple[list[TaskResult], list[LogLine]]]:
        """Results and output as they come (tasks handed back: :meth:`take_returned`)."""
        while True:
            if self._results or self._logs or self._returned:
                results, logs = self._results, self._logs
                self._results, self._logs = [], []
                yield results, logs
                continue
            if (self._input_closed and not self._outstanding) or self._ended:
                return
            self._wakeup.clear()
            await self._wakeup.wait()

    def _deliver(self, result: TaskResult) -> None:
        record = self._forget(result.task_id)
        if record is not None:
            run = record.run
            if run is not None:
                self._service.runs.closed(run, result, bool(record.spec.parent_task_id))
                if run.record is not None:
                    run.record(record, result)
            if record.spec.group or record.submission.cache_key:
                self._service.finished(record, result)
            if record.spec.call_key:
                parent = record.parent
                # Even after its parent ended: a nested log lives on in the grandparent's.
                if parent is not None and parent.replay is not None:
                    parent.replay.record(record.spec.call_key, result)
        self._results.append(result)
        self._wakeup.set()

    def _hand_back(self, task_id: str) -> None:
        record = self._forget(task_id)
        if record is not None and record.parent is not None:
            record.parent.returned_kids += 1
        self._returned.append(task_id)
        self._wakeup.set()

    def _forget(self, task_id: str) -> TaskRecord | None:
        """The task is done with at this controller (a result, or handed back)."""
        record = self._outstanding.pop(task_id, None)
        record = record or self._service.tasks.get(task_id)
        self._service.tasks.pop(task_id, None)
        if record is not None:
            parent = record.parent
            if parent is not None:
                if parent.kids is not None:
                    parent.kids.discard(record)
                self._service.pool_of(parent).child_finished(parent)
            run_id = record.spec.run_id
            if record.submission.stream_logs and self._service.log_routes.get(run_id) is self:
                del self._service.log_routes[run_id]
                self._runs.discard(run_id)
        return record

    def _reject(self, task_id: str, kind: ErrorKind, message: str) -> None:
        self._results.append(TaskResult.failure(task_id, kind, "BadInputError", message))
        self._wakeup.set()


class ControllerService:
    """Pools, tasks and replicas of one controller."""

    def __init__(
        self,
        backend: Backend,
        *,
        address: Callable[[], str],
        security: Security,
        max_backlog: int,
        loss_budget: int,
        cancel_grace: float,
        heartbeat: float,
        report_deadline: float = 0.0,
        metrics: ControllerMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        cache_path: Path | None = None,
        bundles: BundleStore | None = None,
        fetch_code: bool = False,
    ) -> None:
        self.backend = backend
        self._address = address
        self._security = security
        self.max_backlog = max_backlog
        self.loss_budget = loss_budget
        self.cancel_grace = cancel_grace
        self.heartbeat = heartbeat
        self.report_deadline = report_deadline
        self.pools: dict[str, ReplicaPool] = {}
        self.tasks: dict[str, TaskRecord] = {}
        self.bundles: dict[str, CodeBundle] = {}
        self.log_routes: dict[str, SubmitSession] = {}
        # Ids of cancelled tasks that ran (so may have children on the way), with when:
        # a child that arrives after its parent's record is gone is cancelled at once.
        self.cancelled: OrderedDict[str, float] = OrderedDict()
        self.sessions: set[SubmitSession] = set()
        # Shutting down: nothing new is accepted, unfinished tasks go back to their clients.
        self.draining = False
        self.cache = ResultCache(cache_path) if cache_path is not None else None
        self.cache_hits: dict[str, int] = {}
        # (environment key, group) -> [running, succeeded, failed]
        self.groups: dict[str, dict[str, list[int]]] = {}
        self._replica_pools: dict[str, ReplicaPool] = {}
        self._process = psutil.Process()
        self.runs = RunTable()
        # Runs resumed after a restart: their children recorded as finished, by call key
        # (durable replay across controllers; see runs.py).
        self.restored: dict[str, dict[str, TaskResult]] = {}
        # Bytes of child results every parent's replay log keeps, together.
        self.replay_budget = ReplayBudget(default_replay_bytes())
        self.metrics = metrics
        self._clock = clock
        # Projects' code bundles and versions (see versions.py), and whether the
        # backend's replicas fetch the bundles rather than see the client's files.
        self.code = CodeVersions(bundles, self.pools)
        self._fetch_code = fetch_code

    # ------------------------------------------------------------ operations

    def register_environment(self, spec: EnvironmentSpec) -> str:
        if self.draining:
            raise ClosedError("the controller is shutting down; try again when it is back")
        _check_environment(spec)
        key = spec.key()
        self.code.check(spec)
        if self.metrics is not None:
            self.metrics.environment(spec.name).registrations += 1
        if key not in self.pools:
            if spec.hooks_bundle is not None:
                self.bundles.setdefault(spec.hooks_bundle.digest, spec.hooks_bundle)
            self.pools[key] = ReplicaPool(
                key,
                spec,
                self.backend,
                controller_address=self._address,
                security=self._security,
                on_logs=self._route_logs,
                register_replica=self._register_replica,
                max_backlog=self.max_backlog,
                loss_budget=self.loss_budget,
                cancel_grace=self.cancel_grace,
                heartbeat=self.heartbeat,
                report_deadline=self.report_deadline,
                bundles=self.bundles,
                clock=self._clock,
                telemetry=PoolTelemetry(
                    spec.name,
                    self.metrics.environment(spec.name) if self.metrics is not None else None,
                    clock=self._clock,
                ),
                fetch_code=self._fetch_code and bool(spec.code_bundle),
                read_code=self.code.read_bundle,
            )
            self.code.supersede(spec, key)
            log.info(
                "environment registered",
                env=spec.name,
                key=key,
                replicas=f"{spec.policy.min_replicas}..{spec.policy.max_replicas}",
                concurrency=spec.policy.concurrency,
                reusable=spec.policy.reusable,
            )
        return key

    def open_session(self, client_id: str = "") -> SubmitSession:
        session = SubmitSession(self, client_id)
        self.sessions.add(session)
        return session

    def cancel(self, task_id: str, run_id: str) -> int:
        if task_id:
            targets = [self.tasks[task_id]] if task_id in self.tasks else []
        else:
            targets = [r for r in self.tasks.values() if run_id and r.spec.run_id == run_id]
        for record in targets:
            self.cancel_tree(record, "cancelled by its caller")
        return len(targets)

    def cancel_tree(self, record: TaskRecord, reason: str) -> None:
        """Cancel a task and every descendant the controller knows of, at once.

        A cancelled task that ran may still be submitting children: its id is
        remembered for a while, and such a child is cancelled on arrival.
        """
        now = time.monotonic()
        stack, why = [record], reason
        while stack:
            current = stack.pop()
            if current.replica is not None or current.kids:
                self.cancelled[current.task_id] = now
            self.pool_of(current).cancel(current, why)
            if current.kids:
                stack.extend(current.kids)
            why = ORPHANED
        self._forget_cancelled(now)

    def _forget_cancelled(self, now: float) -> None:
        cancelled = self.cancelled
        while cancelled and (
            len(cancelled) > CANCELLED_REMEMBERED
            or now - next(iter(cancelled.values())) > CANCELLED_FOR
        ):
            cancelled.popitem(last=False)

    async def attach(self, stream: Any, events: AsyncIterator[Any]) -> None:
        hello = stream.hello
        pool = self._replica_pools.get(hello.replica_id)
        if pool is not None and not hello.environment:
            await pool.attach(hello.replica_id, stream, events)
            return
        if not hello.environment:
            raise BadInputError(
                f"replica {hello.replica_id!r} was not started by this controller; a worker "
                f"started elsewhere attaches with --environment NAME"
            )
        await self._pool_named(hello.environment).attach_external(stream, events)

    def _pool_named(self, name: str) -> ReplicaPool:
        """The pool an external worker joins: by key, else the newest of that name."""
        if name in self.pools:
            return self.pools[name]
        named = [pool for pool in self.pools.values() if pool.spec.name == name]
        if not named:
            known = sorted({pool.spec.name for pool in self.pools.values()})
            raise BadInputError(
                f"no environment named {name!r} is registered at this controller (registered: "
                f"{', '.join(known) or 'none'}); an environment is registered when a client "
                f"first submits one of its tasks"
            )
        return named[-1]

    def run_progress(self, run_id: str) -> RunProgress:
        return self.runs.progress(run_id)

    def replica_report(self, report: ReplicaReport) -> bool:
        """A report sent outside a replica's stream (its watchdog, while its loop is blocked)."""
        pool = self._replica_pools.get(report.replica_id)
        return pool is not None and pool.report_from_watchdog(report)

    def status(self) -> ControllerStatus:
        return ControllerStatus(
            environments=tuple(_environment_status(self, p) for p in self.pools.values()),
            rss_bytes=self._process.memory_info().rss,
            address=self._address(),
        )

    # ------------------------------------------------------------ internals

    def tick(self, listening_since: float = 0.0) -> None:
        for pool in list(self.pools.values()):
            pool.tick(listening_since)

    def pool_of(self, record: TaskRecord) -> ReplicaPool:
        return self.pools[record.submission.env_key]

    def cached_result(self, submission: Submission) -> bytes | None:
        """A stored result for the submission's cache key: counted, logged and shown to its run."""
        if self.cache is None:
            return None
        value = self.cache.get(submission.cache_key, submission.cache_max_age)
        if value is None:
            return None
        spec, env_key = submission.task, submission.env_key
        self.cache_hits[env_key] = self.cache_hits.get(env_key, 0) + 1
        if spec.group:
            self.group_counts(env_key, spec.group)[1] += 1
        label = f"{spec.group}/{spec.name}" if spec.group else spec.name
        log.info("cache hit", task=spec.name, env=env_key, key=submission.cache_key[:16])
        hit = LogLine(spec.task_id, label, spec.run_id, "cache", "cache hit", spec.parent_task_id)
        self._route_logs([hit])
        return value

    def finished(self, record: TaskRecord, result: TaskResult) -> None:
        """Book a task's end: its group's counts, and its result in the cache."""
        submission = record.submission
        if record.spec.group:
            counts = self.group_counts(submission.env_key, record.spec.group)
            counts[0] -= 1
            counts[1 if result.ok else 2] += 1
        if submission.cache_key and result.ok and self.cache is not None:
            self.cache.put(submission.cache_key, record.spec.name, result.value)

    def group_counts(self, env_key: str, group: str) -> list[int]:
        groups = self.groups.setdefault(env_key, {})
        counts = groups.get(group)
        if counts is None:
            if len(groups) >= MAX_GROUPS:
                # Forget the oldest finished group: names made per call must not grow forever.
                idle = next((name for name, c in groups.items() if c[0] <= 0), None)
                if idle is not None:
                    del groups[idle]
            counts = groups[group] = [0, 0, 0]
        return counts

    def _register_replica(self, replica_id: str, pool: ReplicaPool | None) -> None:
        if pool is None:
            self._replica_pools.pop(replica_id, None)
        else:
            self._replica_pools[replica_id] = pool

    def _route_logs(self, lines: list[LogLine]) -> None:
        by_session: dict[int, tuple[SubmitSession, list[LogLine]]] = {}
        for line in lines:
            session = self.log_routes.get(line.run_id)
            if session is not None:
                by_session.setdefault(id(session), (session, []))[1].append(line)
        for session, batch in by_session.values():
            session.log(batch)

    async def drain(self, grace: float) -> None:
        """Stop accepting; hand waiting tasks back to their clients; give running ones
        up to ``grace`` seconds to finish. Call :meth:`close` next."""
        self.draining = True
        returned = sum(pool.drain() for pool in self.pools.values())
        running = sum(pool.busy for pool in self.pools.values())
        log.info(
            "draining",
            handed_back=returned,
            running=running,
            grace_period=grace,
            clients=len(self.sessions),
        )
        deadline = time.monotonic() + grace
        pools = list(self.pools.values())
        while any(pool.busy for pool in pools) and time.monotonic() < deadline:
            for pool in pools:
                pool.settled.clear()
            waits = [asyncio.ensure_future(pool.settled.wait()) for pool in pools]
            try:
                await asyncio.wait(
                    waits, timeout=deadline - time.monotonic(), return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for waiting in waits:
                    waiting.cancel()

    async def close(self) -> None:
        """Stop every replica; what did not finish goes back to its client; end the streams."""
        self.draining = True
        await asyncio.gather(*(p.close() for p in self.pools.values()), return_exceptions=True)
        if self.cache is not None:
            self.cache.close()
        for session in list(self.sessions):
            session.end()


def _log_of(parent: TaskRecord, budget: ReplayBudget) -> ReplayLog:
    """A parent's replay log, made when its first child arrives: for a child that is a
    parent itself, the one its own parent keeps under its call key (shared by every call
    with that key, so a retry continues where the first call stopped)."""
    grandparent = parent.parent
    if grandparent is None or not parent.spec.call_key:
        return ReplayLog(budget=budget)
    if grandparent.replay is None:
        grandparent.replay = _log_of(grandparent, budget)
    log = grandparent.replay.nested_log(parent.spec.call_key, create=True)
    assert log is not None
    return log


MAX_REPLICAS = 1000
MAX_CONCURRENCY = 100_000
#: Groups ``status`` keeps counts for, per environment.
MAX_GROUPS = 200


def _check_environment(spec: EnvironmentSpec) -> None:
    p = spec.policy
    problems = []
    if not ENVIRONMENT_NAME.fullmatch(spec.name):
        problems.append(
            f"the name must be 1 to 63 letters, digits, '-', '_' or '.', starting with a letter "
            f"or digit; got {spec.name[:80]!r}"
        )
    if not 1 <= p.concurrency <= MAX_CONCURRENCY:
        problems.append(f"concurrency must be in 1..{MAX_CONCURRENCY}, got {p.concurrency}")
    if not (1 <= p.max_replicas <= MAX_REPLICAS and 0 <= p.min_replicas <= p.max_replicas):
        problems.append(
            f"replicas must satisfy 0 <= min <= max and 1 <= max <= {MAX_REPLICAS}, got "
            f"({p.min_replicas}, {p.max_replicas})"
        )
    for label, seconds in (
        ("idle_ttl", p.idle_ttl),
        ("scaledown_ttl", p.scaledown_ttl),
        ("max_lifetime", p.max_lifetime),
        ("stop grace", spec.stop_grace),
    ):
        if not (math.isfinite(seconds) and seconds >= 0):
            problems.append(f"{label} must be a finite number of seconds >= 0, got {seconds}")
    if p.max_tasks < 0 or p.max_rss < 0:
        problems.append("max_tasks and max_rss must not be negative")
    if problems:
        raise BadInputError("invalid environment: " + "; ".join(problems))


def _where(replica: ReplicaState) -> str:
    if replica.handle is not None:
        return replica.handle.describe()
    hello = replica.stream.hello if replica.stream is not None else None
    if replica.external and hello is not None:
        return f"external, serving {hello.address}" + (f" (pid {hello.pid})" if hello.pid else "")
    return ""


def _environment_status(service: ControllerService, pool: ReplicaPool) -> EnvironmentStatus:
    p = pool.policy
    return EnvironmentStatus(
        key=pool.key,
        name=pool.spec.name,
        min_replicas=p.min_replicas,
        max_replicas=p.max_replicas,
        concurrency=p.concurrency,
        backlog=pool.waiting,
        replicas=tuple(
            ReplicaStatus(
                replica_id=r.replica_id,
                state=r.phase.value,
                assigned=len(r.running),
                report=r.report,
                where=_where(r),
                retire_reason=r.retire_reason,
                external=r.external,
            )
            for r in pool.replicas.values()
        ),
        completed=pool.completed,
        failed=pool.failed,
        cancelled=pool.cancelled,
        dormant=pool.scale_state.dormant,
        last_error=pool.last_error,
        events=tuple(pool.telemetry.events),
        version=pool.spec.version(),
        superseded=pool.superseded,
        runs=pool.runs(),
        cache_hits=service.cache_hits.get(pool.key, 0),
        late_results=pool.telemetry.late,
        groups=tuple(
            GroupStatus(name, *counts) for name, counts in service.groups.get(pool.key, {}).items()
        ),
    )
