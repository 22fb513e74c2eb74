"""`ReplicaPool`: one environment's replicas, its backlog, and every task's fate.

The pool owns the promise that nothing is lost: each accepted task reaches
exactly one terminal state, delivered once.

* **Routing.** A waiting task goes to a ready replica with a free slot
  (:func:`pick_replica`): warm code first, then the least loaded. A replica
  never holds more than ``concurrency`` slot-holding tasks. A parent task that
  awaits children holds no slot (the worker lends it), so children can run on
  the parent's replica: ``replicas=1, concurrency=1`` cannot deadlock.
* **Backlog.** Bounded; a submission beyond it is rejected at once.
* **Retries.** A task whose replica dies is retried on another one, within a
  replica-loss budget that is separate from the user's ``retries``; past it the
  task is quarantined: it fails with a replica-lost error naming the causes.
  A retried task runs *alone* on its replica (its own children aside), so a
  task that kills replicas is caught by itself and its bystanders go free.
* **Recycling.** A replica past ``max_tasks``, ``max_rss`` or ``max_lifetime``
  takes no new tasks, finishes its own, and is stopped; the autoscaler starts a
  fresh one.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from reuse_runtime.aio import TaskSet, wait_within
from reuse_runtime.backends.base import (
    AdoptingBackend,
    Backend,
    ExitStatus,
    ReplicaHandle,
    ReplicaLaunch,
)
from reuse_runtime.controller.autoscaler import (
    PoolSnapshot,
    ReplicaPhase,
    ReplicaView,
    ScaleState,
    decide_scale,
)
from reuse_runtime.controller.liveness import describe_silence, silence
from reuse_runtime.controller.replay import ReplayLog
from reuse_runtime.controller.router import RouteCandidate, pick_replica
from reuse_runtime.controller.telemetry import PoolTelemetry, RunCounts, loss_cause
from reuse_runtime.errors import BadInputError
from reuse_runtime.model import (
    CodeBundle,
    EnvironmentSpec,
    ErrorKind,
    LogLine,
    RemoteError,
    ReplicaInit,
    ReplicaReport,
    ResultsBatch,
    Submission,
    TaskResult,
    TaskSpec,
    TaskState,
)
from reuse_runtime.security import Security

log = structlog.get_logger("reuse_runtime.controller")

#: A replica that has not attached this long after launch counts as a failed start.
READY_TIMEOUT = 60.0
#: A replica of ``concurrency`` c is sent up to c // PREFETCH_DIVISOR tasks beyond it;
#: its limiter queues them, so a slot that frees starts the next task without waiting
#: a round trip to the controller (short tasks at full load). Below c = 10: none (but
#: see SHORT_PREFETCH_DIVISOR).
PREFETCH_DIVISOR = 10
#: While the environment's tasks are short (their mean runtime under SHORT_TASK_S), it
#: is sent c // SHORT_PREFETCH_DIVISOR: many end within a moment of each other, and a
#: refill that waits for the round trip leaves their slots idle for a noticeable share
#: of a task's runtime. A task queued so deep waits about one short task at most; longer
#: tasks keep the shallow prefetch, so they are not held behind others on a busy replica.
SHORT_PREFETCH_DIVISOR = 2
SHORT_TASK_S = 0.05
#: Weight of each finished task in the environment's mean runtime (a moving average).
RUNTIME_WEIGHT = 0.05
# Seconds a replica's stream may stay open once its backend says it has ended (its
# process exited, its pod is gone): a connection cut without a FIN (a pod's network
# torn down) never ends by itself, so past this the backend's word is final.
STREAM_END_GRACE = 5.0
#: After this many failed starts in a row, waiting tasks fail instead of waiting on.
START_FAILURES_BEFORE_GIVING_UP = 3


@dataclass(eq=False, slots=True)
class TaskRecord:
    """One accepted task, from submission to its single terminal result."""

    submission: Submission
    spec: TaskSpec
    deliver: Callable[[TaskResult], None]
    retries_left: int
    # Gives the task back to its client unfinished (the controller is shutting down).
    hand_back: Callable[[str], None] | None = None
    # The Submit session it came on (see SubmitSession.adopt).
    owner: Any = None
    # Its cancellation was withdrawn (its client came back): if it ends cancelled, it runs again.
    revived: bool = False
    # What its children ended with, by call key: a retry of it gets them at once.
    replay: ReplayLog | None = None
    # The client that ran it (its replica) went away with children outstanding.
    lost_children: bool = False
    # This attempt has called children, some perhaps answered at once from its replay
    # log: its code was running fine, so a death of its replica is not pinned on it.
    made_calls: bool = False
    # Deaths of its replica while it only waited for its children (see _lost).
    victim_losses: int = 0
    attempts: int = 0
    losses: int = 0
    replica: ReplicaState | None = None
    children: int = 0
    parent: TaskRecord | None = None
    # Its children at the controller, so a cancellation reaches every descendant.
    kids: set[TaskRecord] | None = None
    # Its children handed back to their client by a controller shutting down.
    returned_kids: int = 0
    cancel_requested: str = ""
    finished: bool = False
    # It was on a replica that died: it now runs alone (its own children aside).
    solo: bool = False
    loss_causes: list[str] = field(default_factory=list)
    run: RunCounts | None = None
    queued_at: float = 0.0
    # Waiting out a retry backoff: neither in the backlog nor on a replica.
    backing_off: bool = False

    @property
    def task_id(self) -> str:
        return self.spec.task_id


@dataclass(eq=False, slots=True)
class ReplicaState:
    """The controller's view of one replica."""

    replica_id: str
    started_at: float
    phase: ReplicaPhase = ReplicaPhase.STARTING
    handle: ReplicaHandle | None = None
    stream: Any = None  # wire.services.ReplicaStream, once attached
    capacity: int = 1
    prefetch: int = 0  # tasks sent beyond capacity, queued by its limiter (PREFETCH_DIVISOR)
    running: dict[str, TaskRecord] = field(default_factory=dict)
    suspended: int = 0
    # A suspect task running alone here; only its descendants may join it.
    exclusive: TaskRecord | None = None
    warm: set[str] = field(default_factory=set)
    bundles: set[str] = field(default_factory=set)
    report: ReplicaReport | None = None
    report_at: float = 0.0
    heard_at: float = 0.0  # its last message of any kind (see liveness.py)
    blocked_by: str = ""  # the task blocking its event loop, as its watchdog last said
    last_task_end: float = 0.0
    dispatched: int = 0
    completed: int = 0
    retire_reason: str = ""
    kill_reason: str = ""
    unresponsive: bool = False  # killed because it stopped reporting (see liveness.py)
    stopping: bool = False
    exit_status: ExitStatus | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    gone: bool = False
    # Started by someone else (--environment): routed to, never stopped, no TTLs.
    external: bool = False

    @property
    def free(self) -> int:
        return self.capacity - (len(self.running) - self.suspended)

    @property
    def room(self) -> int:
        """Tasks it may be sent now: its free slots and its prefetch."""
        return self.capacity + self.prefetch - (len(self.running) - self.suspended)

    def idle_since(self) -> float | None:
        """Controller-clock time since which the replica has had no task; None while busy."""
        if self.running or self.phase is ReplicaPhase.STARTING:
            return None
        marks = [self.last_task_end]
        report = self.report
        if report is not None:
            if report.idle_since is None:
                return None
            marks.append(self.report_at - report.idle_seconds)
        return max(marks)


class ReplicaPool:
    """The replicas and tasks of one environment. Lives on the controller's loop."""

    def __init__(
        self,
        key: str,
        spec: EnvironmentSpec,
        backend: Backend,
        *,
        controller_address: Callable[[], str],
        security: Security,
        on_logs: Callable[[list[LogLine]], None],
        register_replica: Callable[[str, ReplicaPool | None], None],
        max_backlog: int,
        loss_budget: int,
        cancel_grace: float,
        heartbeat: float,
        report_deadline: float,
        bundles: dict[str, CodeBundle],
        clock: Callable[[], float] = time.monotonic,
        telemetry: PoolTelemetry | None = None,
    ) -> None:
        self.key = key
        self.spec = spec
        self.policy = spec.policy
        self._backend = backend
        self._controller_address = controller_address
        self._security = security
        self._on_logs = on_logs
        self._register_replica = register_replica
        self.max_backlog = max_backlog
        self.loss_budget = loss_budget
        self.cancel_grace = cancel_grace
        self._heartbeat = heartbeat
        self.report_deadline = report_deadline
        self._suspect_after = max(report_deadline / 2, 1.5 * heartbeat)
        self._bundles = bundles
        self._clock = clock
        self.telemetry = telemetry or PoolTelemetry(spec.name, clock=clock)
        self.backlog: deque[TaskRecord] = deque()
        # Retries waiting out their backoff (not in the backlog meanwhile).
        self._backing_off: set[TaskRecord] = set()
        # Cancelled records left in the backlog (removing one from a deque is O(n)):
        # skipped when they reach its head, compacted away when they are half of it.
        self._stale = 0
        self.replicas: dict[str, ReplicaState] = {}
        self.scale_state = ScaleState()
        self.start_failures = 0
        self.last_start_failure: float | None = None
        self.last_error = ""
        self.completed = 0
        self.failed = 0
        self._assigned = 0
        self._tasks = TaskSet(f"pool:{key}")
        self._ids = itertools.count(1)
        self._closed = False
        self._pump_scheduled = False
        # The moving mean of its tasks' runtimes (None before the first; see
        # SHORT_PREFETCH_DIVISOR).
        self._mean_runtime: float | None = None
        # Set whenever a task leaves while the pool drains (see ControllerService.drain).
        self.settled = asyncio.Event()
        self._adopted = False

    # ------------------------------------------------------------ tasks

    def submit(self, record: TaskRecord) -> None:
        """Accept a task, or reject it at once when the backlog is full."""
        if self._closed:
            self._return(record)
            return
        if self.waiting >= self.max_backlog:
            # Dispatch what fits first: a full backlog means no free slot either.
            self._pump_now()
        if self.waiting >= self.max_backlog:
            record.finished = True
            self.telemetry.task_rejected()
            record.deliver(
                _failed(
                    record,
                    ErrorKind.REJECTED,
                    "BacklogFullError",
                    f"environment {self.spec.name!r} has {self.waiting} tasks waiting, its "
                    f"backlog limit; retry later, raise the limit (--max-backlog), or give it more "
                    f"replicas",
                )
            )
            return
        self.telemetry.task_queued(record)
        self.backlog.append(record)
        self.pump()

    def pump(self) -> None:
        """Dispatch waiting tasks to free slots, once per loop iteration.

        Everything that queues a task or frees a slot within one iteration (a batch
        of submissions, a batch of results) shares one pass: a replica is refilled
        with one dispatch message, and a submission that finds every slot taken
        costs nothing here. No timer: the pass runs at the next iteration.
        """
        if self._pump_scheduled or not self.backlog:
            return
        self._pump_scheduled = True
        asyncio.get_running_loop().call_soon(self._pump_now)

    def _pump_now(self) -> None:
        self._pump_scheduled = False
        backlog = self.backlog
        if not backlog:
            return
        # A replica silent for half its report deadline may be frozen: it gets no new
        # work until it is heard from again (or declared lost).
        heard_since = self._clock() - self._suspect_after if self.report_deadline else 0.0
        open_ = [
            r
            for r in self.replicas.values()
            if r.phase is ReplicaPhase.READY
            and r.stream is not None
            and r.room > 0
            and r.heard_at >= heard_since
        ]
        while backlog and open_:
            record = backlog[0]
            if record.finished:  # cancelled while it waited
                backlog.popleft()
                self._stale -= 1
                continue
            code_key = _code_key(record.spec)
            chosen = self._route(record, code_key, open_)
            if chosen is None:
                return  # the oldest task waits for its replica, and nothing overtakes it
            backlog.popleft()
            if record.cancel_requested:
                self._finish(record, _cancelled(record, record.cancel_requested))
                continue
            self._dispatch(record, chosen, code_key)
            if chosen.room <= 0 or chosen.phase is not ReplicaPhase.READY:
                open_.remove(chosen)

    def _route(
        self, record: TaskRecord, code_key: str, open_: list[ReplicaState]
    ) -> ReplicaState | None:
        """The replica for ``record`` among those with a free slot (see :func:`pick_replica`)."""
        if len(open_) == 1 and not record.solo and open_[0].exclusive is None:
            return open_[0]
        chosen = pick_replica(
            RouteCandidate(r.replica_id, r.room, r.capacity, code_key in r.warm, r.prefetch)
            for r in open_
            if (not record.solo or not r.running)
            and (r.exclusive is None or _descends_from(record, r.exclusive))
        )
        return self.replicas[chosen] if chosen is not None else None

    def _dispatch(self, record: TaskRecord, replica: ReplicaState, code_key: str) -> None:
        spec = record.spec
        bundle = spec.bundle
        if bundle is None and spec.ref is not None:
            known = self._bundles.get(spec.ref.code_version)
            if known is not None and known.module == spec.ref.module:
                bundle = known
        if bundle is not None and bundle.digest in replica.bundles:
            bundle = None
        if bundle is not spec.bundle:
            spec = replace(spec, bundle=bundle)
        if bundle is not None:
            replica.bundles.add(bundle.digest)
        record.attempts += 1
        if record.attempts > 1:  # the first attempt leaves it 0, and costs nothing
            spec = replace(spec, attempt=record.attempts)
        record.replica = replica
        record.lost_children = record.made_calls = False
        if record.solo:
            replica.exclusive = record
        replica.running[record.task_id] = record
        replica.warm.add(code_key)
        replica.dispatched += 1
        self._assigned += 1
        if record.children:
            replica.suspended += 1
        self.telemetry.task_dispatched(record, replica)
        replica.stream.dispatch(spec)
        if spec.timeout:
            # The replica cancels at the deadline; this catches a task that ignores it.
            asyncio.get_running_loop().call_later(
                spec.timeout + self.cancel_grace, self._expire, record, replica, True
            )
        if (
            self.policy.max_tasks
            and replica.dispatched >= self.policy.max_tasks
            and not replica.external
        ):
            self._retire(
                replica, f"ran max_tasks={self.policy.max_tasks} tasks", recycle="max_tasks"
            )

    def _unassign(self, replica: ReplicaState, record: TaskRecord) -> None:
        """The task no longer runs on the replica (it finished, or the replica is gone)."""
        del replica.running[record.task_id]
        self._assigned -= 1
        if record.children:
            replica.suspended -= 1
        if replica.exclusive is record:
            replica.exclusive = None
        record.replica = None
        self.telemetry.task_unassigned(record)

    def child_started(self, parent: TaskRecord) -> None:
        """A child of ``parent`` was accepted: the parent's slot is lent while it waits."""
        parent.children += 1
        replica = parent.replica
        if parent.children == 1 and replica is not None and parent.task_id in replica.running:
            replica.suspended += 1
            self.pump()

    def child_finished(self, parent: TaskRecord) -> None:
        parent.children -= 1
        replica = parent.replica
        if parent.children == 0 and replica is not None and parent.task_id in replica.running:
            replica.suspended -= 1

    def cancel(self, record: TaskRecord, reason: str = "cancelled") -> None:
        """Cancel a waiting task at once, or ask its replica to cancel a running one."""
        if record.finished or record.cancel_requested:
            return
        record.cancel_requested = reason
        if record.replica is None:  # waiting, or backing off before a retry: not finished
            self._finish(record, _cancelled(record, reason))
            if record.backing_off:
                return  # not in the backlog: its timer finds it finished
            self._stale += 1
            if self._stale > 64 and self._stale * 2 > len(self.backlog):
                self.backlog = deque(r for r in self.backlog if not r.finished)
                self._stale = 0
            return
        replica = record.replica
        if replica is not None and replica.stream is not None:
            replica.stream.cancel(record.task_id)
            asyncio.get_running_loop().call_later(
                self.cancel_grace, self._expire, record, replica, False
            )

    def _expire(self, record: TaskRecord, replica: ReplicaState, timed_out: bool) -> None:
        """A task still running past its cancel grace period (or its timeout plus that
        grace) ignored ``CancelledError``: it fails, and its replica is replaced."""
        if record.finished or replica.running.get(record.task_id) is not record:
            return
        if not timed_out and not record.cancel_requested:
            return  # the cancellation was withdrawn (see SubmitSession.adopt)
        what = "timed out" if timed_out else "cancelled"
        log.warning(
            f"task ignored being {what}; replacing its replica",
            task=record.task_id,
            replica=replica.replica_id,
            grace_period=self.cancel_grace,
        )
        self._unassign(replica, record)
        reason = (
            f"{record.cancel_requested or what}; it ignored CancelledError for "
            f"{self.cancel_grace:g} s, so its replica was replaced"
        )
        if timed_out:
            timeout = record.spec.timeout or 0.0
            result = TaskResult(
                record.task_id,
                TaskState.TIMED_OUT,
                error=RemoteError(
                    ErrorKind.TIMED_OUT,
                    "TimeoutError",
                    f"task {record.spec.name or record.task_id} timed out after {timeout:g} s; "
                    f"it ignored CancelledError for {self.cancel_grace:g} s, so its replica "
                    f"was replaced",
                ),
            )
        else:
            result = _cancelled(record, reason)
        self._finish(record, result)
        self._retire(replica, f"task {record.task_id} ignored being {what}", kill=True)

    # ------------------------------------------------------------ results

    def _on_results(self, replica: ReplicaState, batch: ResultsBatch) -> None:
        if batch.logs:
            self._on_logs(batch.logs)
        now = replica.heard_at = self._clock()
        mean = self._mean_runtime
        for result in batch.results:
            record = replica.running.get(result.task_id)
            if record is None:
                continue  # already settled elsewhere (a cancel past its grace)
            if result.duration > 0 and not record.made_calls:  # a parent's is its children's
                mean = (
                    result.duration
                    if mean is None
                    else mean + RUNTIME_WEIGHT * (result.duration - mean)
                )
            self._unassign(replica, record)
            replica.completed += 1
            replica.last_task_end = now
            if (
                result.state is TaskState.CANCELLED
                and not record.cancel_requested
                and replica.phase is ReplicaPhase.DRAINING
                and not self._closed
            ):
                # Stopped from outside (a deleted pod, a SIGTERM) past its drain's grace:
                # the replica went, not the task. It is retried elsewhere.
                self._lost(record, replica.replica_id, "was stopped before the task finished")
                continue
            self._settle(record, result)
        if mean is not None:
            self._runtime_is(mean)
        if replica.retire_reason and not replica.running:
            self._stop(replica)
        self.pump()

    def _runtime_is(self, mean: float) -> None:
        """The tasks' mean runtime moved: deepen or shorten the replicas' prefetch."""
        was_short = self._short_tasks
        self._mean_runtime = mean
        if self._short_tasks is was_short:
            return
        for replica in self.replicas.values():
            if replica.stream is not None and not replica.external:
                replica.prefetch = self._prefetch(replica.capacity)

    @property
    def _short_tasks(self) -> bool:
        return self._mean_runtime is not None and self._mean_runtime < SHORT_TASK_S

    def _prefetch(self, capacity: int) -> int:
        """Tasks a replica of ``capacity`` slots is sent beyond them, queued there."""
        return capacity // (SHORT_PREFETCH_DIVISOR if self._short_tasks else PREFETCH_DIVISOR)

    def _settle(self, record: TaskRecord, result: TaskResult) -> None:
        self.telemetry.task_ran(result)
        error = result.error
        if record.revived and result.state is TaskState.CANCELLED:
            record.revived = False
            record.attempts -= 1  # cancelled for a client that came back: not a failure
            self.backlog.appendleft(record)
            return
        if (
            self._closed
            and error is not None
            and not record.cancel_requested
            and error.kind in (ErrorKind.CANCELLED, ErrorKind.UNAVAILABLE)
        ):
            # Stopped by the shutdown, not by its caller or its code: it goes back.
            self._return(record)
            return
        if result.state is TaskState.FAILED and error is not None and not record.cancel_requested:
            if error.kind is ErrorKind.UNAVAILABLE:
                # A draining replica refused it: it never ran, so it costs nothing.
                record.attempts -= 1
                self.backlog.appendleft(record)
                return
            if error.kind is ErrorKind.USER and record.retries_left > 0:
                backoff = record.submission.retry_backoff
                retry = max(0, record.submission.retries) - record.retries_left
                record.retries_left -= 1
                self.telemetry.task_retried(record)
                delay = backoff.delay(retry) if backoff is not None else 0.0
                if delay > 0:
                    record.backing_off = True
                    self._backing_off.add(record)
                    asyncio.get_running_loop().call_later(delay, self._requeue, record)
                else:
                    self.backlog.appendleft(record)
                return
        self._finish(record, result)

    def _requeue(self, record: TaskRecord) -> None:
        """A retry whose backoff has passed: it goes first, unless it was cancelled meanwhile."""
        record.backing_off = False
        self._backing_off.discard(record)
        if record.finished:
            return
        if record.cancel_requested:
            self._finish(record, _cancelled(record, record.cancel_requested))
            return
        if self._closed:
            self._return(record)
            return
        self.backlog.appendleft(record)
        self.pump()

    def _finish(self, record: TaskRecord, result: TaskResult) -> None:
        if record.finished:
            return
        record.finished = True
        if self._closed:
            self.settled.set()
        if result.attempts != record.attempts:
            result = replace(result, attempts=record.attempts)
        if result.state is TaskState.SUCCEEDED:
            self.completed += 1
        else:
            self.failed += 1
        self.telemetry.task_finished(result)
        record.deliver(result)

    # ------------------------------------------------------------ replicas

    async def attach_external(self, stream: Any, events: AsyncIterator[Any]) -> None:
        """Serve a worker someone else started (``--environment``), until its stream ends.

        It is routed to like any replica, but never stopped, recycled or counted
        by the autoscaler: its owner (compose, systemd, a Deployment) manages it.
        """
        hello = stream.hello
        if hello.replica_id in self.replicas:
            raise BadInputError(
                f"a replica with id {hello.replica_id!r} is already attached to environment "
                f"{self.spec.name!r}; give each worker its own --replica-id"
            )
        replica = ReplicaState(
            hello.replica_id,
            started_at=self._clock(),
            capacity=hello.capacity or self.policy.concurrency,
            external=True,
        )
        replica.exited.set()  # nothing of ours runs it: there is no exit to wait for
        self.replicas[hello.replica_id] = replica
        self._register_replica(hello.replica_id, self)
        log.info(
            "external replica attached",
            env=self.spec.name,
            replica=hello.replica_id,
            address=hello.address,
            capacity=replica.capacity,
        )
        await self.attach(hello.replica_id, stream, events)

    async def attach(self, replica_id: str, stream: Any, events: AsyncIterator[Any]) -> None:
        """Serve a replica that connected, until its stream ends."""
        replica = self.replicas.get(replica_id)
        if replica is None or replica.gone:
            stream.drain("this replica is no longer wanted")
            return
        replica.stream = stream
        replica.heard_at = self._clock()
        replica.capacity = stream.hello.capacity or self.policy.concurrency
        replica.prefetch = self._prefetch(replica.capacity)
        stream.send_init(
            ReplicaInit(
                environment=self.spec.name,
                on_start=self.spec.on_start,
                on_stop=self.spec.on_stop,
                bundle=self.spec.hooks_bundle,
                stop_grace=self.spec.stop_grace,
            )
        )
        try:
            async for event in events:
                if isinstance(event, ResultsBatch):
                    self._on_results(replica, event)
                elif isinstance(event, ReplicaReport):
                    self._on_report(replica, event)
        except Exception as exc:
            log.warning(
                "replica stream broke", replica=replica_id, error=f"{type(exc).__name__}: {exc}"
            )
        finally:
            replica.stream = None
        # A replica without its stream can do nothing more: make sure it is gone.
        if not replica.exited.is_set():
            try:
                await wait_within(replica.exited.wait(), 2.0)
            except asyncio.TimeoutError:
                if replica.handle is not None:
                    await self._backend.kill(replica.handle)
                await replica.exited.wait()
        self._forget(replica, cause="lost its connection to the controller")

    def report_from_watchdog(self, report: ReplicaReport) -> bool:
        """A report that came apart from the replica's stream; False if it is unknown."""
        replica = self.replicas.get(report.replica_id)
        if replica is None or replica.gone or replica.stream is None:
            return False
        # One that names the task blocking the loop shows in status and is not a
        # heartbeat: a loop held by one task past the report deadline is declared lost.
        # One without a culprit says the loop is busy running many tasks: a heartbeat.
        self._on_report(replica, report, loop_alive=not report.loop_blocked_by)
        return True

    def _on_report(
        self, replica: ReplicaState, report: ReplicaReport, *, loop_alive: bool = True
    ) -> None:
        replica.report = report
        replica.report_at = self._clock()
        if loop_alive:
            replica.heard_at = replica.report_at
            # Heard from again: a replica that was silent long enough to get no new work
            # (see _pump_now) may take the waiting tasks now.
            self.pump()
        replica.blocked_by = "" if loop_alive else report.loop_blocked_by
        if replica.phase is ReplicaPhase.STARTING:
            replica.phase = ReplicaPhase.READY
            self.start_failures = 0
            took = replica.report_at - replica.started_at
            self.telemetry.replica_ready(replica, took)
            log.info(
                "replica ready", env=self.spec.name, replica=replica.replica_id, took=round(took, 3)
            )
            self.pump()
        if replica.external:
            # Its owner decides when it goes; a draining one just takes nothing more.
            if report.draining and replica.phase is not ReplicaPhase.DRAINING:
                replica.phase = ReplicaPhase.DRAINING
                replica.retire_reason = "the replica is draining"
        elif self.policy.max_rss and report.rss_bytes > self.policy.max_rss:
            self._retire(
                replica,
                f"its RSS {report.rss_bytes} bytes is over max_rss={self.policy.max_rss}",
                recycle="max_rss",
            )
        elif report.recycle_reason:
            self._retire(replica, report.recycle_reason, recycle="requested")
        elif report.draining and not replica.retire_reason:
            # It is draining on its own (a SIGTERM from outside): route nothing more to it,
            # and do not stop it again: a second SIGTERM makes a worker exit at once.
            replica.phase = ReplicaPhase.DRAINING
            replica.retire_reason = "the replica is draining"
            replica.stopping = True

    def _retire(
        self, replica: ReplicaState, reason: str, *, kill: bool = False, recycle: str = ""
    ) -> None:
        """Stop routing to a replica; stop it once its tasks are done (or now, if kill).

        ``recycle`` names the bound it reached (``max_tasks``, ...), when it is recycled.
        """
        if not replica.retire_reason:
            replica.retire_reason = reason
            if recycle:
                self.telemetry.replica_recycled(replica, recycle, reason)
            log.info(
                "recycling replica", env=self.spec.name, replica=replica.replica_id, reason=reason
            )
        replica.phase = ReplicaPhase.DRAINING
        if kill:
            replica.kill_reason = replica.kill_reason or reason
            if replica.handle is not None and not replica.stopping:
                replica.stopping = True
                self._tasks.spawn(self._backend.kill(replica.handle), f"kill:{replica.replica_id}")
        elif not replica.running:
            self._stop(replica)

    def _stop(self, replica: ReplicaState) -> None:
        if replica.stopping:
            return
        replica.stopping = True
        replica.phase = ReplicaPhase.DRAINING
        if replica.handle is not None:
            self._tasks.spawn(
                self._backend.stop(replica.handle, self.spec.stop_grace + 5.0),
                f"stop:{replica.replica_id}",
            )

    def _start_replica(self) -> None:
        replica_id = f"{self.spec.name}-{next(self._ids)}-{secrets.token_hex(2)}"
        replica = ReplicaState(
            replica_id, started_at=self._clock(), capacity=self.policy.concurrency
        )
        self.replicas[replica_id] = replica
        self._register_replica(replica_id, self)
        self.telemetry.replica_started(replica)
        self._tasks.spawn(self._run_replica(replica), f"replica:{replica_id}")

    async def _run_replica(self, replica: ReplicaState) -> None:
        launch = ReplicaLaunch(
            replica_id=replica.replica_id,
            environment=self.spec,
            controller_address=self._controller_address(),
            security=self._security,
            grace_period=self.spec.stop_grace,
            heartbeat=self._heartbeat,
        )
        try:
            replica.handle = await self._backend.start(launch)
        except Exception as exc:
            replica.exit_status = ExitStatus(
                detail=f"could not launch: {type(exc).__name__}: {exc}"
            )
            replica.exited.set()
            self._forget(replica, cause=replica.exit_status.detail)
            return
        await self._follow_replica(replica)

    async def _follow_replica(self, replica: ReplicaState) -> None:
        """Until a launched (or adopted) replica ends: its ready deadline, then its end."""
        assert replica.handle is not None
        ready_timer = self._tasks.spawn(
            self._ready_deadline(replica), f"ready:{replica.replica_id}"
        )
        try:
            replica.exit_status = await self._backend.wait(replica.handle)
        finally:
            ready_timer.cancel()
            replica.exited.set()
        if replica.stream is not None:
            await asyncio.sleep(STREAM_END_GRACE)  # its stream's end forgets it, as a rule
        stream = replica.stream
        if stream is None:
            self._forget(replica, cause=replica.exit_status.describe())
        elif not replica.gone:
            log.warning(
                "replica ended but its stream is still open; dropping the stream",
                env=self.spec.name,
                replica=replica.replica_id,
                exit=replica.exit_status.describe(),
            )
            self._forget(replica, cause=replica.exit_status.describe())
            stream.close()

    async def _ready_deadline(self, replica: ReplicaState) -> None:
        # A backend may need longer (a pod is scheduled and its image pulled first).
        timeout = float(getattr(self._backend, "ready_timeout", READY_TIMEOUT))
        await asyncio.sleep(timeout)
        if replica.phase is ReplicaPhase.STARTING and replica.handle is not None:
            log.warning(
                "replica did not become ready; killing it",
                replica=replica.replica_id,
                timeout=timeout,
            )
            await self._backend.kill(replica.handle)

    def _forget(self, replica: ReplicaState, *, cause: str) -> None:
        """The replica is gone: retry or fail its tasks, and record a failed start."""
        if replica.gone:
            return
        replica.gone = True
        self.replicas.pop(replica.replica_id, None)
        self._register_replica(replica.replica_id, None)
        status = replica.exit_status
        if status is not None:
            cause = status.describe()
        if replica.kill_reason:
            cause = f"was replaced because {replica.kill_reason}"
        never_ready = (
            replica.phase is ReplicaPhase.STARTING and not replica.stopping and not replica.external
        )
        if replica.phase is ReplicaPhase.STARTING and not replica.external:
            self.telemetry.replica_start_ended(replica, failed=never_ready, cause=cause)
        elif replica.kill_reason:
            self.telemetry.replica_lost(
                replica, "unresponsive" if replica.unresponsive else "killed", cause
            )
        elif not replica.stopping:
            draining = replica.phase is ReplicaPhase.DRAINING
            self.telemetry.replica_lost(replica, loss_cause(status, draining=draining), cause)
        if never_ready:
            self.start_failures += 1
            self.last_start_failure = self._clock()
            tail = replica.handle.stderr_tail() if replica.handle is not None else ""
            self.last_error = f"replica {replica.replica_id} failed to start ({cause})" + (
                f":\n{tail}" if tail else ""
            )
            log.error(
                "replica failed to start",
                env=self.spec.name,
                replica=replica.replica_id,
                cause=cause,
                stderr=tail[-2000:],
                failures=self.start_failures,
            )
            if self.start_failures >= START_FAILURES_BEFORE_GIVING_UP and not self.replicas:
                self._fail_backlog()
        elif not replica.stopping:
            # `status` shows it: "replica X ran out of memory: ... limit of 200Mi".
            self.last_error = f"replica {replica.replica_id} {cause}"
            log.warning(
                "replica lost",
                env=self.spec.name,
                replica=replica.replica_id,
                cause=cause,
                inflight=len(replica.running),
            )
        oom = status is not None and status.oom
        for record in list(replica.running.values()):
            self._unassign(replica, record)
            self._lost(record, replica.replica_id, cause, oom=oom)
        self.pump()

    def _lost(self, record: TaskRecord, replica_id: str, cause: str, *, oom: bool = False) -> None:
        if record.cancel_requested:
            self._finish(record, _cancelled(record, record.cancel_requested))
            return
        if self._closed:
            self._return(record)  # its replica was stopped by the shutdown
            return
        if record.children or record.lost_children or record.made_calls:
            self._lost_while_waiting(record, replica_id, cause)
            return
        record.losses += 1
        record.loss_causes.append(f"{replica_id} {cause}")
        # From now on it runs alone on a replica, so a death can be pinned on it
        # and its bystanders are not charged again.
        record.solo = True
        if record.losses > self.loss_budget:
            causes = "; ".join(record.loss_causes)
            self._quarantine(
                record,
                f"task {record.spec.name or record.task_id} was running on {record.losses} "
                f"replicas that died ({causes}); it is quarantined and will not be retried "
                f"(replica-loss budget: {self.loss_budget} retries)",
                # The caller gets OOMError when the last replica ran out of memory.
                "OOMError" if oom else "ReplicaLostError",
            )
            return
        self.telemetry.task_retried(record)
        self.backlog.appendleft(record)

    def _quarantine(
        self, record: TaskRecord, message: str, type_name: str = "ReplicaLostError"
    ) -> None:
        self._finish(record, _failed(record, ErrorKind.REPLICA_LOST, type_name, message))

    def _lost_while_waiting(self, record: TaskRecord, replica_id: str, cause: str) -> None:
        """Its replica died while it waited for its children (or replayed them): it is the
        victim, not a suspect. It runs again, not alone, and its finished children are
        replayed (see replay.py); only a much larger count of such deaths stops it."""
        record.lost_children = record.made_calls = False
        record.victim_losses += 1
        record.loss_causes.append(f"{replica_id} {cause}, while it waited for its children")
        limit = self.victim_budget
        if record.victim_losses > limit:
            causes = "; ".join(record.loss_causes[-5:])
            self._quarantine(
                record,
                f"task {record.spec.name or record.task_id} lost its replica "
                f"{record.victim_losses} times while it waited for its children (the last: "
                f"{causes}); it will not be retried again (limit: {limit}, five times the "
                f"replica-loss budget plus one)",
            )
            return
        self.telemetry.task_retried(record)
        self.backlog.appendleft(record)

    @property
    def victim_budget(self) -> int:
        """Replica deaths a parent may suffer while it waits for its children."""
        return 5 * (self.loss_budget + 1)

    def _return(self, record: TaskRecord) -> None:
        """Hand a task back to its client, unfinished, to run on the next controller."""
        if record.finished:
            return
        if record.hand_back is None:  # nobody to take it back
            self._finish(
                record,
                _failed(
                    record,
                    ErrorKind.UNAVAILABLE,
                    "ClosedError",
                    "the controller shut down before the task ran",
                ),
            )
            return
        record.finished = True
        self.settled.set()
        record.hand_back(record.task_id)

    def drain(self) -> int:
        """Take no more tasks; hand the waiting ones back to their clients. Returns how many."""
        self._closed = True
        waiting = [r for r in self.backlog if not r.finished]
        waiting += self._backing_off  # retries waiting out their backoff
        self._backing_off = set()
        self.backlog.clear()
        self._stale = 0
        for record in waiting:
            self._return(record)
        return len(waiting)

    @property
    def busy(self) -> int:
        """Running tasks that can still finish: not parents whose children were handed back."""
        return sum(
            1
            for replica in self.replicas.values()
            for record in replica.running.values()
            if not (record.returned_kids and not record.children)
        )

    def _fail_backlog(self) -> None:
        waiting = list(self.backlog)
        self.backlog.clear()
        self._stale = 0
        for record in waiting:
            self._finish(
                record,
                _failed(
                    record,
                    ErrorKind.UNAVAILABLE,
                    "EnvironmentUnavailableError",
                    f"environment {self.spec.name!r} could not start a replica after "
                    f"{self.start_failures} attempts. {self.last_error}",
                ),
            )

    # ------------------------------------------------------------ autoscaling

    def snapshot(self) -> PoolSnapshot:
        external = [
            r
            for r in self.replicas.values()
            if r.external and r.phase is ReplicaPhase.READY and r.stream is not None
        ]
        return PoolSnapshot(
            replicas=tuple(
                ReplicaView(r.replica_id, r.phase, len(r.running) - r.suspended, r.idle_since())
                for r in self.replicas.values()
                if not r.stopping and not r.external
            ),
            external_ready=len(external),
            external_free=sum(max(0, r.free) for r in external),
            backlog=self.waiting,
            assigned=self._assigned,
            consecutive_start_failures=self.start_failures,
            last_start_failure=self.last_start_failure,
        )

    def _adopt_replicas(self) -> None:
        """Take over the live replicas a predecessor controller left (Kubernetes pods).

        They count as starting replicas until their workers dial back in, so the
        autoscaler starts none in their place.
        """
        self._adopted = True
        if not isinstance(self._backend, AdoptingBackend):
            return
        for handle in self._backend.claim(self.key):
            replica = ReplicaState(
                handle.replica_id,
                started_at=self._clock(),
                capacity=self.policy.concurrency,
                handle=handle,
            )
            self.replicas[replica.replica_id] = replica
            self._register_replica(replica.replica_id, self)
            self._tasks.spawn(self._follow_replica(replica), f"replica:{replica.replica_id}")
            log.info("adopting replica", env=self.spec.name, replica=replica.replica_id)

    def tick(self, listening_since: float = 0.0) -> None:
        """Adopt a predecessor's replicas (once), then apply the report deadline, the
        lifetime bound, and one autoscaling decision.

        ``listening_since``: when the controller's loop last came back from a stall
        (see :class:`~reuse_runtime.controller.liveness.Listening`).
        """
        if not self._adopted:
            self._adopt_replicas()
        now = self._clock()
        self._check_liveness(now, listening_since)
        if self.policy.max_lifetime:
            for replica in list(self.replicas.values()):
                if (
                    not replica.external
                    and replica.phase is ReplicaPhase.READY
                    and now - replica.started_at > self.policy.max_lifetime
                ):
                    self._retire(
                        replica,
                        f"older than max_lifetime={self.policy.max_lifetime:g} s",
                        recycle="max_lifetime",
                    )
        decision, self.scale_state = decide_scale(
            self.snapshot(), self.policy, self.scale_state, now
        )
        for _ in range(decision.start):
            self._start_replica()
        for replica_id in decision.stop:
            stopping = self.replicas.get(replica_id)
            if stopping is not None:
                log.info(
                    "stopping replica",
                    env=self.spec.name,
                    replica=replica_id,
                    reason=decision.reason,
                )
                if not stopping.retire_reason:
                    self.telemetry.replica_stopped(stopping, "scaled_down", decision.reason)
                self._retire(stopping, decision.reason)
        if decision.start:
            log.info(
                "starting replicas",
                env=self.spec.name,
                count=decision.start,
                reason=decision.reason,
            )

    def _check_liveness(self, now: float, listening_since: float) -> None:
        """Kill and replace a ready replica that stopped reporting (see liveness.py)."""
        deadline = self.report_deadline
        if not deadline:
            return
        for replica in list(self.replicas.values()):
            if (
                replica.phase is ReplicaPhase.STARTING
                or replica.stream is None
                or replica.stopping
                or replica.kill_reason
            ):
                continue
            quiet = silence(replica.heard_at, listening_since, now)
            if quiet > deadline:
                blocked_by = replica.blocked_by
                log.warning(
                    "replica stopped reporting; killing it",
                    env=self.spec.name,
                    replica=replica.replica_id,
                    silent_seconds=round(quiet, 1),
                    deadline=deadline,
                    inflight=len(replica.running),
                )
                replica.unresponsive = True
                self._retire(replica, describe_silence(quiet, blocked_by), kill=True)

    @property
    def waiting(self) -> int:
        """Tasks in the backlog, not counting cancelled ones still in the deque."""
        return len(self.backlog) - self._stale

    @property
    def assigned(self) -> int:
        return self._assigned

    async def close(self) -> None:
        """Stop every replica; hand what is still waiting or running back to its client."""
        self.drain()
        # The drain's grace is over: what still runs waits for children handed back, or
        # overran it. Stop it now (it goes back to its client), so no replica waits out
        # its own grace for a task that cannot finish.
        for replica in self.replicas.values():
            if replica.stream is not None:
                for task_id in replica.running:
                    replica.stream.cancel(task_id)
        stops = [
            self._backend.stop(r.handle, self.spec.stop_grace + 5.0)
            for r in self.replicas.values()
            if r.handle is not None
        ]
        for r in self.replicas.values():
            r.stopping = True
        await asyncio.gather(*stops, return_exceptions=True)
        for replica in list(self.replicas.values()):
            self._forget(replica, cause="the controller shut down")
        await self._tasks.cancel_all("pool closed")


def _descends_from(record: TaskRecord, ancestor: TaskRecord) -> bool:
    parent = record.parent
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent.parent
    return False


def _code_key(spec: TaskSpec) -> str:
    ref = spec.ref
    return f"{ref.module}@{ref.code_version}" if ref is not None else ""


def _failed(record: TaskRecord, kind: ErrorKind, type_name: str, message: str) -> TaskResult:
    return TaskResult.failure(record.task_id, kind, type_name, message, attempts=record.attempts)


def _cancelled(record: TaskRecord, reason: str) -> TaskResult:
    return TaskResult.failure(
        record.task_id,
        ErrorKind.CANCELLED,
        "CancelledError",
        f"task {record.spec.name or record.task_id} was {reason}",
        state=TaskState.CANCELLED,
        attempts=record.attempts,
    )
