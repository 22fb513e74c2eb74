"""`Retries`: what becomes of a task whose attempt ended, when the task may run again.

* **Its replica died under it.** It runs again on another replica, within a
  replica-loss budget that is separate from the user's ``retries``; past it the
  task is quarantined: it fails with a replica-lost error naming the causes. From
  its first loss on it runs *alone* (``TaskRecord.solo``, placed by dispatch.py),
  so a task that kills replicas is caught by itself and its bystanders go free.
* **It was a victim.** A parent whose replica died while it waited for its
  children (or replayed them) is not a suspect: it runs again, not alone, and its
  finished children are answered from its replay log (replay.py); only a much
  larger count of such deaths stops it.
* **It raised, with ``retries`` left.** It runs again, after its backoff.
* **It never ran** (a draining replica refused it), or its cancellation was
  withdrawn (its client came back): it goes back at no cost.
* **The controller is shutting down.** It goes back to its client, unfinished.

A task that runs again goes to the head of the backlog. Ending a task, or handing
it back, is the pool's (:class:`RetryHost`).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from reuse_runtime.controller.dispatch import Dispatcher
from reuse_runtime.controller.records import TaskRecord, attempt_ended, cancellation, failure
from reuse_runtime.controller.telemetry import PoolTelemetry
from reuse_runtime.model import ErrorKind, TaskResult, TaskState
from reuse_runtime.runinfo import PHASE_OF_STATE, ActionPhase, ErrorInfo, error_info_of


class RetryHost(Protocol):
    """What retries ask of their pool (:class:`~reuse_runtime.controller.pool.ReplicaPool`)."""

    #: The pool is shutting down: what has not finished goes back to its client.
    closed: bool

    def finish(self, record: TaskRecord, result: TaskResult) -> None:
        """Deliver ``record``'s one terminal result."""
        ...

    def hand_back(self, record: TaskRecord) -> None:
        """Give ``record`` back to its client, unfinished."""
        ...


class Retries:
    """The retries of one environment's tasks. Lives on the controller's loop."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        host: RetryHost,
        telemetry: PoolTelemetry,
        loss_budget: int,
    ) -> None:
        self._dispatcher = dispatcher
        self._host = host
        self.telemetry = telemetry
        self.loss_budget = loss_budget
        # Retries waiting out their backoff (not in the backlog meanwhile).
        self._backing_off: set[TaskRecord] = set()

    @property
    def victim_budget(self) -> int:
        """Replica deaths a parent may suffer while it waits for its children."""
        return 5 * (self.loss_budget + 1)

    def settle(self, record: TaskRecord, result: TaskResult) -> None:
        """A replica sent ``record``'s result: the task ends with it, or runs again."""
        self.telemetry.task_ran(result)
        error = result.error
        if record.revived and result.state is TaskState.CANCELLED:
            record.revived = False
            record.attempts -= 1  # cancelled for a client that came back: not a failure
            self._dispatcher.queue_first(record)
            return
        if (
            error is not None
            and self._host.closed
            and not record.cancel_requested
            and error.kind in (ErrorKind.CANCELLED, ErrorKind.UNAVAILABLE)
        ):
            # Stopped by the shutdown, not by its caller or its code: it goes back.
            self._host.hand_back(record)
            return
        if result.state is TaskState.FAILED and error is not None and not record.cancel_requested:
            if error.kind is ErrorKind.UNAVAILABLE:
                # A draining replica refused it: it never ran, so it costs nothing.
                record.attempts -= 1
                self._dispatcher.queue_first(record)
                return
            if error.kind is ErrorKind.USER and record.retries_left > 0:
                backoff = record.submission.retry_backoff
                retry = max(0, record.submission.retries) - record.retries_left
                record.retries_left -= 1
                attempt_ended(
                    record, result.replica_id, PHASE_OF_STATE[result.state], error_info_of(error)
                )
                self.telemetry.task_retried(record)
                delay = backoff.delay(retry) if backoff is not None else 0.0
                if delay > 0:
                    record.backing_off = True
                    self._backing_off.add(record)
                    asyncio.get_running_loop().call_later(delay, self._requeue, record)
                else:
                    self._dispatcher.queue_first(record)
                return
        self._host.finish(record, result)

    def _requeue(self, record: TaskRecord) -> None:
        """A retry whose backoff has passed: it goes first, unless it was cancelled meanwhile."""
        record.backing_off = False
        self._backing_off.discard(record)
        if record.finished:
            return
        if record.cancel_requested:
            self._host.finish(record, cancellation(record, record.cancel_requested))
            return
        if self._host.closed:
            self._host.hand_back(record)
            return
        self._dispatcher.queue_first(record)
        self._dispatcher.pump()

    def take_backing_off(self) -> list[TaskRecord]:
        """The retries waiting out their backoff, which wait no more (a drain)."""
        backing_off, self._backing_off = self._backing_off, set()
        return list(backing_off)

    def lost(self, record: TaskRecord, replica_id: str, cause: str, *, oom: bool = False) -> None:
        """``record``'s replica ended (``cause``) before the task did."""
        if record.cancel_requested:
            self._host.finish(record, cancellation(record, record.cancel_requested))
            return
        if self._host.closed:
            self._host.hand_back(record)  # its replica was stopped by the shutdown
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
        _lost(record, replica_id, cause)
        self.telemetry.task_retried(record)
        self._dispatcher.queue_first(record)

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
        _lost(record, replica_id, cause)
        self.telemetry.task_retried(record)
        self._dispatcher.queue_first(record)

    def _quarantine(
        self, record: TaskRecord, message: str, type_name: str = "ReplicaLostError"
    ) -> None:
        self._host.finish(record, failure(record, ErrorKind.REPLICA_LOST, type_name, message))


def _lost(record: TaskRecord, replica_id: str, cause: str) -> None:
    """The attempt that ran on a replica that died, as a recorded run keeps it."""
    attempt_ended(
        record,
        replica_id,
        ActionPhase.FAILED,
        ErrorInfo("REPLICA_LOST", "ReplicaLostError", f"its replica {replica_id} {cause}"),
    )
