"""`ReplicaPool`: one environment's replicas, its backlog, and every task's fate.

The pool owns the promise that nothing is lost: each accepted task reaches
exactly one terminal state, delivered once (:meth:`ReplicaPool.finish`), or goes
back to its client unfinished when the controller shuts down
(:meth:`ReplicaPool.hand_back`). It composes three parts, each with one job:

* :class:`~reuse_runtime.controller.dispatch.Dispatcher`: admission and the
  backlog, and which replica gets each task (slots, prefetch, suspects alone).
* :class:`~reuse_runtime.controller.retries.Retries`: what becomes of an attempt
  when the task may run again (a lost replica, a retry, a refusal, a shutdown),
  the replica-loss budget and quarantine.
* :class:`~reuse_runtime.controller.lifecycle.ReplicaLifecycle`: replicas from
  launch to their end: start, ready, reports and their deadline, recycling, loss,
  autoscaling.

Each part imports only those before it in that list; what one asks of the pool it
names in a small protocol (``DispatchHost``, ``RetryHost``, ``LifecycleHost``),
which the pool implements. The pool itself handles what crosses them: a replica's
results (the hot path, with dispatch), cancellation and its deadline, draining
and closing. Every call between the parts is a plain method call.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import structlog

from reuse_runtime.backends.base import Backend
from reuse_runtime.controller.autoscaler import PoolSnapshot, ReplicaPhase, ScaleState
from reuse_runtime.controller.dispatch import RUNTIME_WEIGHT, Dispatcher
from reuse_runtime.controller.lifecycle import ReplicaLifecycle
from reuse_runtime.controller.records import ReplicaState, TaskRecord, cancellation, failure
from reuse_runtime.controller.retries import Retries
from reuse_runtime.controller.telemetry import PoolTelemetry
from reuse_runtime.model import (
    CodeBundle,
    EnvironmentSpec,
    ErrorKind,
    LogLine,
    RemoteError,
    ReplicaReport,
    ResultsBatch,
    TaskResult,
    TaskState,
)
from reuse_runtime.security import Security

log = structlog.get_logger("reuse_runtime.controller")


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
        fetch_code: bool = False,
        read_code: Callable[[str], bytes] | None = None,
    ) -> None:
        self.key = key
        self.spec = spec
        self.policy = spec.policy
        self.cancel_grace = cancel_grace
        self._on_logs = on_logs
        self._register_replica = register_replica
        self._clock = clock
        self.telemetry = telemetry or PoolTelemetry(spec.name, clock=clock)
        # The replicas, by id: the lifecycle adds and removes them, the dispatcher
        # fills and empties their slots.
        self.replicas: dict[str, ReplicaState] = {}
        # Shutting down: nothing new is accepted, and what does not finish goes back.
        self.closed = False
        self.completed = 0
        self.failed = 0
        self.cancelled = 0
        # Set whenever a task leaves while the pool drains (see ControllerService.drain).
        self.settled = asyncio.Event()
        self._dispatcher = Dispatcher(
            spec,
            self.replicas,
            host=self,
            telemetry=self.telemetry,
            bundles=bundles,
            max_backlog=max_backlog,
            cancel_grace=cancel_grace,
            heartbeat=heartbeat,
            report_deadline=report_deadline,
            clock=clock,
        )
        self._retries = Retries(
            self._dispatcher, host=self, telemetry=self.telemetry, loss_budget=loss_budget
        )
        self._lifecycle = ReplicaLifecycle(
            key,
            spec,
            backend,
            self.replicas,
            host=self,
            dispatcher=self._dispatcher,
            retries=self._retries,
            telemetry=self.telemetry,
            controller_address=controller_address,
            security=security,
            register_replica=self._register,
            heartbeat=heartbeat,
            report_deadline=report_deadline,
            clock=clock,
            fetch_code=fetch_code,
            read_code=read_code,
        )
        # The key of the newer version of this environment that replaced it, if any.
        self.superseded_by = ""

    # ------------------------------------------------------------ versions

    def supersede(self, by: str) -> None:
        """A newer version of the environment (pool ``by``) serves from now on: this one
        finishes what it has, then scales to zero after ``scaledown_ttl`` (not held at
        its minimum, not kept until ``idle_ttl``)."""
        self.superseded_by = by
        self._lifecycle.superseded = True

    @property
    def superseded(self) -> bool:
        return bool(self.superseded_by)

    def runs(self, limit: int = 20) -> tuple[str, ...]:
        """The runs with tasks here now, waiting or running (at most ``limit``)."""
        found: dict[str, None] = {}
        for replica in self.replicas.values():
            for record in replica.running.values():
                if record.spec.run_id:
                    found[record.spec.run_id] = None
        for record in itertools.islice(self._dispatcher.backlog, 1000):
            if len(found) >= limit:
                break
            if record.spec.run_id and not record.finished:
                found[record.spec.run_id] = None
        return tuple(sorted(found)[:limit])

    # ------------------------------------------------------------ tasks

    def submit(self, record: TaskRecord) -> None:
        """Accept a task, or reject it at once when the backlog is full."""
        if self.closed:
            self.hand_back(record)
            return
        self._dispatcher.admit(record)

    def child_started(self, parent: TaskRecord) -> None:
        """A child of ``parent`` was accepted: the parent's slot is lent while it waits."""
        self._dispatcher.child_started(parent)

    def child_finished(self, parent: TaskRecord) -> None:
        """A child of ``parent`` ended (or went back to its client)."""
        self._dispatcher.child_finished(parent)

    def cancel(self, record: TaskRecord, reason: str = "cancelled") -> None:
        """Cancel a waiting task at once, or ask its replica to cancel a running one."""
        if record.finished or record.cancel_requested:
            return
        record.cancel_requested = reason
        replica = record.replica
        if replica is None:  # waiting, or backing off before a retry: not finished
            self.finish(record, cancellation(record, reason))
            # A retry waiting out its backoff is not in the backlog: its timer finds it finished.
            if not record.backing_off:
                self._dispatcher.mark_stale()
            return
        if replica.stream is not None:
            replica.stream.cancel(record.task_id)
            asyncio.get_running_loop().call_later(
                self.cancel_grace, self.expire, record, replica, False
            )

    def expire(self, record: TaskRecord, replica: ReplicaState, timed_out: bool) -> None:
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
        self._dispatcher.unassign(replica, record)
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
            result = cancellation(record, reason)
        self.finish(record, result)
        self.retire(replica, f"task {record.task_id} ignored being {what}", kill=True)

    def given_work(self, replica: ReplicaState, at: float) -> None:
        """An idle replica was sent a task at ``at``: the busy report deadline applies."""
        self._lifecycle.given_work(replica, at)

    # ------------------------------------------------------------ results

    def on_results(self, replica: ReplicaState, batch: ResultsBatch) -> None:
        """A batch of results (and its tasks' output) from ``replica``: each task ends,
        or runs again; the freed slots are refilled."""
        if batch.logs:
            self._on_logs(batch.logs)
        now = self._clock()
        self._lifecycle.heard(replica, now)
        dispatcher, retries = self._dispatcher, self._retries
        mean = dispatcher.mean_runtime
        for result in batch.results:
            record = replica.running.get(result.task_id)
            if record is None:  # already settled elsewhere (a cancel past its grace)
                self.telemetry.late_results(1)
                continue
            if result.duration > 0 and not record.made_calls:  # a parent's is its children's
                mean = (
                    result.duration
                    if mean is None
                    else mean + RUNTIME_WEIGHT * (result.duration - mean)
                )
            dispatcher.unassign(replica, record)
            if record.sent_at and not record.made_calls:
                dispatcher.round_trip(replica, now - record.sent_at - result.duration, now)
            replica.completed += 1
            replica.last_task_end = now
            if (
                result.state is TaskState.CANCELLED
                and not record.cancel_requested
                and replica.phase is ReplicaPhase.DRAINING
                and not self.closed
            ):
                # Stopped from outside (a deleted pod, a SIGTERM) past its drain's grace:
                # the replica went, not the task. It is retried elsewhere.
                retries.lost(record, replica.replica_id, "was stopped before the task finished")
                continue
            retries.settle(record, result)
        if mean is not None:
            dispatcher.runtime_is(mean)
        if replica.retire_reason and not replica.running:
            self._lifecycle.stop(replica)
        dispatcher.heard(replica)

    def finish(self, record: TaskRecord, result: TaskResult) -> None:
        """Deliver ``record``'s terminal result, once; later calls do nothing."""
        if record.finished:
            return
        record.finished = True
        if self.closed:
            self.settled.set()
        if result.attempts != record.attempts:
            result = replace(result, attempts=record.attempts)
        if result.state is TaskState.SUCCEEDED:
            self.completed += 1
        elif result.state is TaskState.CANCELLED:
            self.cancelled += 1
        else:
            self.failed += 1
        self.telemetry.task_finished(result)
        record.deliver(result)

    def hand_back(self, record: TaskRecord) -> None:
        """Hand a task back to its client, unfinished, to run on the next controller."""
        if record.finished:
            return
        if record.hand_back is None:  # nobody to take it back
            self.finish(
                record,
                failure(
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

    # ------------------------------------------------------------ replicas

    async def attach_external(self, stream: Any, events: AsyncIterator[Any]) -> None:
        """Serve a worker someone else started (``--environment``), until its stream ends."""
        await self._lifecycle.attach_external(stream, events)

    async def attach(self, replica_id: str, stream: Any, events: AsyncIterator[Any]) -> None:
        """Serve a replica that connected, until its stream ends."""
        await self._lifecycle.attach(replica_id, stream, events)

    def report_from_watchdog(self, report: ReplicaReport) -> bool:
        """A report that came apart from the replica's stream; False if it is unknown."""
        return self._lifecycle.report_from_watchdog(report)

    def retire(
        self, replica: ReplicaState, reason: str, *, kill: bool = False, recycle: str = ""
    ) -> None:
        """Stop routing to a replica; stop it once its tasks are done (or now, if kill)."""
        self._lifecycle.retire(replica, reason, kill=kill, recycle=recycle)

    def tick(self, listening_since: float = 0.0) -> None:
        """The periodic pass: report deadlines, lifetimes, one autoscaling decision
        (see :meth:`ReplicaLifecycle.tick`)."""
        self._lifecycle.tick(listening_since)

    def snapshot(self) -> PoolSnapshot:
        """What the autoscaler sees of the pool now."""
        return self._lifecycle.snapshot()

    def _register(self, replica_id: str, known: bool) -> None:
        self._register_replica(replica_id, self if known else None)

    # ------------------------------------------------------------ shutdown

    def drain(self) -> int:
        """Take no more tasks; hand the waiting ones back to their clients. Returns how many."""
        self.closed = True
        waiting = [r for r in self._dispatcher.clear() if not r.finished]
        waiting += self._retries.take_backing_off()  # retries waiting out their backoff
        for record in waiting:
            self.hand_back(record)
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

    async def close(self) -> None:
        """Stop every replica; hand what is still waiting or running back to its client."""
        self.drain()
        await self._lifecycle.close()

    # ------------------------------------------------------------ state

    @property
    def backlog(self) -> deque[TaskRecord]:
        """The waiting tasks, oldest first (cancelled ones may linger; see :attr:`waiting`)."""
        return self._dispatcher.backlog

    @property
    def waiting(self) -> int:
        """Tasks in the backlog, not counting cancelled ones still in the deque."""
        return self._dispatcher.waiting

    @property
    def assigned(self) -> int:
        """Tasks on replicas, suspended parents included."""
        return self._dispatcher.assigned

    @property
    def scale_state(self) -> ScaleState:
        return self._lifecycle.scale_state

    @property
    def last_error(self) -> str:
        """Why the last replica failed to start or was lost (``status`` shows it)."""
        return self._lifecycle.last_error
