"""What a pool tells the outside world: run progress, replica events, and metrics.

:class:`PoolTelemetry` is the narrow interface the pool calls at a few points of
a task's life (queued, dispatched, off its replica, ran, finished, retried) and
of a replica's (started, ready, start ended, lost, recycled, stopped). It keeps:

* each run's :class:`~reuse_runtime.controller.records.RunCounts` (children running
  and retried; the service counts the rest), in a :class:`RunTable`, which
  ``Run.wait()`` shows as a progress bar;
* the environment's recent replica events, which ``status`` shows;
* Prometheus series, when the controller serves metrics
  (:class:`~reuse_runtime.metrics.EnvironmentMetrics`; ``None`` costs nothing).

Per-task calls do a few increments; nothing here looks up a label or allocates.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

from reuse_runtime.backends.base import ExitStatus
from reuse_runtime.controller.records import ReplicaState, RunCounts, TaskRecord
from reuse_runtime.metrics import EnvironmentMetrics
from reuse_runtime.model import PoolEvent, RunProgress, TaskResult, TaskState

#: Replica events an environment remembers for ``status``.
RECENT_EVENTS = 20
#: Ended runs whose final counts the controller keeps, for a progress bar's last look.
ENDED_RUNS = 256


def loss_cause(status: ExitStatus | None, *, draining: bool = False) -> str:
    """The ``cause`` label of a replica that ended without being asked to.

    ``oom``, ``signal`` (killed by one), ``exit`` (it exited by itself), ``drained``
    (it drained on its own, say a SIGTERM from outside, and exited 0),
    ``disconnected`` (its stream to the controller broke: it was killed for that, or
    nothing says how it ended).
    """
    if status is None:
        return "disconnected"
    if status.oom:
        return "oom"
    if status.signal is not None:
        # The runtime killed it only after its stream to the controller broke.
        return "disconnected" if status.by_runtime else "signal"
    if status.code is not None:
        return "drained" if status.code == 0 and draining else "exit"
    return "unknown"


class RunTable:
    """The runs with tasks at the controller.

    A run is dropped when its last task ends; its final counts are kept among the
    last :data:`ENDED_RUNS` ended runs.
    """

    def __init__(self) -> None:
        self._runs: dict[str, RunCounts] = {}
        self._ended: OrderedDict[str, RunProgress] = OrderedDict()

    def __len__(self) -> int:
        return len(self._runs)

    def opened(self, run_id: str, child: bool) -> RunCounts:
        """A task of ``run_id`` was accepted."""
        run = self._runs.get(run_id)
        if run is None:
            run = self._runs[run_id] = RunCounts(run_id)
        run.open += 1
        if child:
            run.children += 1
        return run

    def closed(self, run: RunCounts, result: TaskResult, child: bool) -> None:
        """A task of the run reached its terminal state."""
        run.open -= 1
        if child:
            if result.state is TaskState.SUCCEEDED:
                run.succeeded += 1
            else:
                run.failed += 1
        if run.open <= 0 and self._runs.get(run.run_id) is run:
            del self._runs[run.run_id]
            self._ended[run.run_id] = run.snapshot(ended=True)
            self._ended.move_to_end(run.run_id)
            if len(self._ended) > ENDED_RUNS:
                self._ended.popitem(last=False)

    def held(self, run_id: str, change: int) -> None:
        """A client holds ``change`` more (or fewer) children of the run.

        A run whose tasks have all ended is over: what is held for it no longer counts.
        """
        run = self._runs.get(run_id)
        if run is not None:
            run.held = max(0, run.held + change)

    def progress(self, run_id: str) -> RunProgress:
        run = self._runs.get(run_id)
        if run is not None:
            return run.snapshot()
        return self._ended.get(run_id) or RunProgress(found=False)


class PoolTelemetry:
    """The pool's observer: progress, recent events and (optionally) metrics.

    Call-order contract: the pool calls ``task_queued`` once when it accepts a
    task, ``task_dispatched`` after each dispatch (attempts and the replica's
    ``dispatched`` already counted), ``task_unassigned`` whenever a task leaves
    its replica, ``task_ran`` for each result a replica sends, and
    ``task_finished`` exactly once per accepted task.
    """

    def __init__(
        self,
        environment: str,
        metrics: EnvironmentMetrics | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.environment = environment
        self.metrics = metrics
        self._clock = clock
        self._wall_clock = wall_clock
        self.events: deque[PoolEvent] = deque(maxlen=RECENT_EVENTS)
        #: Results discarded because their task had ended or moved on (see late_results).
        self.late = 0

    # ------------------------------------------------------------ tasks

    def task_queued(self, record: TaskRecord) -> None:
        if self.metrics is not None:
            record.queued_at = self._clock()

    def task_rejected(self) -> None:
        if self.metrics is not None:
            self.metrics.rejected += 1

    def task_dispatched(self, record: TaskRecord, replica: ReplicaState, now: float) -> None:
        """``record`` was sent to ``replica`` at ``now`` (the pool's clock, which is this one's)."""
        run = record.run
        if run is not None:
            if run.record is not None:  # a recorded run: the attempt's start
                record.started = time.time()
            if record.spec.parent_task_id:
                run.running += 1
            elif run.on_root_dispatched is not None:  # a run's root: it is running now
                run.on_root_dispatched()
        metrics = self.metrics
        if metrics is not None:
            if record.attempts == 1:
                metrics.queued.observe(now - record.queued_at)
            if replica.dispatched == 1 and not replica.external:
                metrics.cold_start["first_task"].observe(now - replica.started_at)

    def task_unassigned(self, record: TaskRecord) -> None:
        run = record.run
        if run is not None and record.spec.parent_task_id:
            run.running -= 1

    def task_ran(self, result: TaskResult) -> None:
        if self.metrics is not None and result.duration > 0:
            self.metrics.duration.observe(result.duration)

    def task_retried(self, record: TaskRecord) -> None:
        run = record.run
        if run is not None and record.spec.parent_task_id:
            run.retried += 1
        if self.metrics is not None:
            self.metrics.retried += 1

    def task_replayed(self) -> None:
        """A child call answered from its parent's replay log, without running."""
        if self.metrics is not None:
            self.metrics.replayed += 1

    def late_results(self, count: int) -> None:
        """Results came after their task had ended or been retried elsewhere: discarded."""
        self.late += count
        if self.metrics is not None:
            self.metrics.late_results += count

    def task_finished(self, result: TaskResult) -> None:
        if self.metrics is not None:
            self.metrics.finished(result.state)

    # ------------------------------------------------------------ replicas

    def replica_started(self, replica: ReplicaState) -> None:
        self._event("started", replica)

    def replica_ready(self, replica: ReplicaState, seconds: float) -> None:
        if replica.external:  # someone else started it: not a start of ours to time
            self._event("attached", replica, detail="a worker someone else started")
            return
        self._event("ready", replica, detail=f"ready in {seconds:.2f} s")
        if self.metrics is not None:
            self.metrics.starts["ready"] += 1
            self.metrics.cold_start["ready"].observe(seconds)

    def replica_start_ended(self, replica: ReplicaState, *, failed: bool, cause: str) -> None:
        """A replica ended before it was ready: it failed, or was stopped (cancelled)."""
        if failed:
            self._event("start_failed", replica, "failed", cause)
        if self.metrics is not None:
            self.metrics.starts["failed" if failed else "cancelled"] += 1

    def replica_lost(self, replica: ReplicaState, cause: str, detail: str) -> None:
        self._event("lost", replica, cause, detail)
        if self.metrics is not None:
            self.metrics.lost(cause)

    def replica_recycled(self, replica: ReplicaState, reason: str, detail: str) -> None:
        self._event("recycled", replica, reason, detail)
        if self.metrics is not None:
            self.metrics.recycled(reason)

    def replica_stopped(self, replica: ReplicaState, reason: str, detail: str) -> None:
        self._event("stopped", replica, reason, detail)

    def _event(self, kind: str, replica: ReplicaState, reason: str = "", detail: str = "") -> None:
        self.events.append(PoolEvent(self._wall_clock(), kind, replica.replica_id, reason, detail))
