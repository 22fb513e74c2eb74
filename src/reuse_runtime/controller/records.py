"""What the controller keeps of a task, a replica and a run: records, shared by the pool's parts.

:class:`TaskRecord` lives from a task's submission to its single terminal result,
:class:`ReplicaState` is the controller's view of one replica, :class:`RunCounts`
one run's progress. The pool's parts (:mod:`~reuse_runtime.controller.dispatch`,
:mod:`~reuse_runtime.controller.lifecycle`, :mod:`~reuse_runtime.controller.retries`)
and its telemetry read and write them; this module imports none of those.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reuse_runtime.backends.base import ExitStatus, ReplicaHandle
from reuse_runtime.controller.autoscaler import ReplicaPhase
from reuse_runtime.controller.replay import ReplayLog
from reuse_runtime.model import (
    ErrorKind,
    ReplicaReport,
    RunProgress,
    Submission,
    TaskResult,
    TaskSpec,
    TaskState,
)
from reuse_runtime.runinfo import ActionPhase, Attempt, ErrorInfo


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
    # Deaths of its replica while it only waited for its children (see retries.py).
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
    # When it was accepted, and its attempt dispatched (Unix times), for a run that is
    # recorded (see runs.py).
    created: float = 0.0
    started: float = 0.0
    # Its attempts that ended and were retried, for a recorded run (see attempt_ended).
    tries: list[Attempt] | None = None
    # When it was sent to a free slot (it starts on arrival), else 0: its result then
    # times the round trip to its replica (see Dispatcher.round_trip).
    sent_at: float = 0.0

    @property
    def task_id(self) -> str:
        return self.spec.task_id


#: Numbers replicas in the order they are made: routing breaks ties by it (see router.py).
_replica_order = itertools.count()


@dataclass(eq=False, slots=True)
class ReplicaState:
    """The controller's view of one replica."""

    replica_id: str
    started_at: float
    phase: ReplicaPhase = ReplicaPhase.STARTING
    handle: ReplicaHandle | None = None
    stream: Any = None  # wire.services.ReplicaStream, once attached
    capacity: int = 1
    prefetch: int = 0  # tasks sent beyond capacity, queued by its limiter (see dispatch.py)
    # The round trip to it: the least seen over this window and the last (see dispatch.py).
    rtt_window: float = math.inf
    rtt_last_window: float = math.inf
    rtt_window_since: float = 0.0
    running: dict[str, TaskRecord] = field(default_factory=dict)
    suspended: int = 0
    # A suspect task running alone here; only its descendants may join it.
    exclusive: TaskRecord | None = None
    warm: set[str] = field(default_factory=set)
    bundles: set[str] = field(default_factory=set)
    report: ReplicaReport | None = None
    report_at: float = 0.0
    heard_at: float = 0.0  # its last message of any kind (see liveness.py)
    # Its last report said it was idle: it reports less often (see liveness.py).
    reported_idle: bool = False
    blocked_by: str = ""  # the task blocking its event loop, as its watchdog last said
    last_task_end: float = 0.0
    dispatched: int = 0
    completed: int = 0
    retire_reason: str = ""
    kill_reason: str = ""
    unresponsive: bool = False  # killed because it stopped reporting (see liveness.py)
    # When it was heard from again after it was declared lost (see lifecycle.py).
    back_at: float = 0.0
    stopping: bool = False
    exit_status: ExitStatus | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    gone: bool = False
    # Started by someone else (--environment): routed to, never stopped, no TTLs.
    external: bool = False
    # A predecessor controller's, taken over at a restart (see autoscaler rule 7).
    adopted: bool = False
    # When it was made, among all replicas: earlier ones win ties in routing.
    order: int = field(default_factory=lambda: next(_replica_order))

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


@dataclass(eq=False, slots=True)
class RunCounts:
    """One run's tasks at the controller. Children are the tasks that have a parent."""

    run_id: str
    open: int = 0  # tasks of the run at the controller, root included
    children: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    held: int = 0  # children its clients hold back (flow control)
    # The run is recorded (a run the controller owns, see runs.py): each of its tasks is
    # handed to this at its end, and the root's dispatch to ``on_root_dispatched``.
    record: Callable[[TaskRecord, TaskResult], None] | None = None
    on_root_dispatched: Callable[[], None] | None = None

    def snapshot(self, *, ended: bool = False) -> RunProgress:
        return RunProgress(
            found=True,
            ended=ended,
            children=self.children,
            held=self.held,
            running=self.running,
            succeeded=self.succeeded,
            failed=self.failed,
            retried=self.retried,
        )


def attempt_ended(
    record: TaskRecord, replica_id: str, phase: ActionPhase, error: ErrorInfo
) -> None:
    """An attempt of ``record`` ended and it runs again: a recorded run keeps the attempt
    for the action's record. Only retries get here: one attempt costs nothing."""
    run = record.run
    if run is None or run.record is None:
        return
    attempt = Attempt(record.attempts, replica_id, record.started, time.time(), phase, error)
    if record.tries is None:
        record.tries = [attempt]
    else:
        record.tries.append(attempt)


def failure(record: TaskRecord, kind: ErrorKind, type_name: str, message: str) -> TaskResult:
    """A failed result for ``record``, with its attempts so far."""
    return TaskResult.failure(record.task_id, kind, type_name, message, attempts=record.attempts)


def cancellation(record: TaskRecord, reason: str) -> TaskResult:
    """The cancelled result of ``record``; ``reason`` completes "task X was ..."."""
    return TaskResult.failure(
        record.task_id,
        ErrorKind.CANCELLED,
        "CancelledError",
        f"task {record.spec.name or record.task_id} was {reason}",
        state=TaskState.CANCELLED,
        attempts=record.attempts,
    )
