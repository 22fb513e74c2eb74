"""`Dispatcher`: one pool's backlog, and which replica gets each waiting task.

* **Admission.** The backlog is bounded; a submission beyond it is rejected at once.
* **Order.** Oldest first: a task that cannot be placed yet waits at the head, and
  nothing overtakes it. A retry goes back to the head.
* **Placement.** A waiting task goes to a ready replica with room
  (:func:`~reuse_runtime.controller.router.pick_replica`): warm code first, then the
  least loaded. The replicas with room are kept in a
  :class:`~reuse_runtime.controller.router.RouteIndex`, so placing a task costs
  O(log replicas), not a look at every replica. A suspect task (``TaskRecord.solo``:
  it was on a replica that died) runs alone, its own descendants and parents that
  only wait aside; :meth:`Dispatcher._route` is the one place that rule lives. A
  replica silent for half its report deadline gets no new work.
* **Slots.** A replica never holds more than ``concurrency`` slot-holding tasks. A
  parent that awaits children holds no slot (the worker lends it), so children can
  run on the parent's replica: ``replicas=1, concurrency=1`` cannot deadlock.
* **Prefetch.** A replica is also sent tasks beyond its slots, which its limiter
  queues, and as many more as its slots finish in one round trip to it (a replica
  across a network). Long tasks are queued so only while more wait than the pool
  holds, now and at its full size: the last ones are never held behind busy slots
  while another replica's free up, nor a burst's behind the first replica ready
  while the others start.

What it asks of its pool (end a task, retire a replica, enforce a deadline) goes
through :class:`DispatchHost`. The replicas are the pool's
(:mod:`~reuse_runtime.controller.lifecycle` adds and removes them, and says so with
:meth:`Dispatcher.changed` and :meth:`Dispatcher.heard`); the dispatcher only fills
and empties their slots.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from reuse_runtime.controller.autoscaler import ReplicaPhase
from reuse_runtime.controller.liveness import idle_allowance
from reuse_runtime.controller.records import ReplicaState, TaskRecord, cancellation, failure
from reuse_runtime.controller.router import RouteCandidate, RouteIndex, pick_replica
from reuse_runtime.controller.telemetry import PoolTelemetry
from reuse_runtime.model import CodeBundle, EnvironmentSpec, ErrorKind, TaskResult, TaskSpec

#: A replica of ``concurrency`` c is sent up to c // PREFETCH_DIVISOR tasks beyond it;
#: its limiter queues them, so a slot that frees starts the next task without waiting
#: a round trip to the controller. Whatever the tasks' length: the tasks of one gather
#: start together and end together, and a shallow queue leaves the rest of its slots
#: idle for a round trip each time (100 ms tasks: c // 10 ran at 92-94% of the ideal
#: makespan, c // 2 at 95%; 10 ms tasks had c // 2 already).
#:
#: While the environment's tasks are long (a mean runtime of at least SHORT_TASK_S),
#: tasks are queued so only while the backlog holds more than the pool does: more than
#: its replicas hold now (running or queued there), and more than the slots of the pool
#: at its full size (``Dispatcher._route``). Near a gather's end, a task queued behind
#: one replica's busy slots would start after another replica's slots free up and find
#: nothing left to run (the 100 ms gather above ran one replica a whole task longer than
#: the other). At a burst's start, the replicas still starting (or about to, up to
#: max_replicas) would take what the first one ready queued: the burst's tasks wait here
#: for them, and run spread over the pool, not one after another on the first. A long
#: task with a timeout is never queued so: the controller's check that a task ended by
#: its timeout counts from its dispatch (it cannot see when a queued task starts), so a
#: task that waited a whole task in a replica's queue would be taken for one that
#: ignored its timeout, and its replica killed (see ReplicaPool.expire). Short tasks
#: are always queued: one waits a short task at most, and a steady stream of them keeps
#: a backlog shorter than the pool holds, where a refill without a queue would cost a
#: round trip and a message per slot (the noop gather: 10-15% more CPU per task).
PREFETCH_DIVISOR = 2
#: With a round trip known, a prefetch that covers it also adds c // RTT_MARGIN_DIVISOR.
RTT_MARGIN_DIVISOR = 10
#: Tasks shorter than this on average are short (see above); a round trip's prefetch is
#: measured against at least this runtime.
SHORT_TASK_S = 0.05
#: Seconds over which a replica's round trip is the least one seen (this window's, or
#: the last one's): queueing and busy loops only ever add to a round trip.
RTT_WINDOW = 10.0
#: Weight of each finished task in the environment's mean runtime (a moving average).
RUNTIME_WEIGHT = 0.05


class DispatchHost(Protocol):
    """What the dispatcher asks of its pool (a
    :class:`~reuse_runtime.controller.pool.ReplicaPool`)."""

    def finish(self, record: TaskRecord, result: TaskResult) -> None:
        """Deliver ``record``'s one terminal result."""
        ...

    def retire(
        self, replica: ReplicaState, reason: str, *, kill: bool = False, recycle: str = ""
    ) -> None:
        """Route nothing more to ``replica``; stop it once its tasks are done."""
        ...

    def expire(self, record: TaskRecord, replica: ReplicaState, timed_out: bool) -> None:
        """``record`` may still run on ``replica`` past its deadline plus the cancel grace."""
        ...

    def given_work(self, replica: ReplicaState, at: float) -> None:
        """``replica``, which last reported idle, was sent a task at ``at`` (the pool's
        clock): it is held to a busy replica's report deadline from then (see liveness.py)."""
        ...


class Dispatcher:
    """The backlog of one environment, and the dispatch of its tasks to replicas.

    Lives on the controller's loop. Call-order contract: :meth:`unassign` once
    whenever a dispatched task leaves its replica (a result, an expiry, a loss), and
    :meth:`changed` whenever a replica's phase or stream changes, or it is forgotten.
    """

    def __init__(
        self,
        spec: EnvironmentSpec,
        replicas: dict[str, ReplicaState],
        *,
        host: DispatchHost,
        telemetry: PoolTelemetry,
        bundles: dict[str, CodeBundle],
        max_backlog: int,
        cancel_grace: float,
        heartbeat: float,
        report_deadline: float,
        clock: Callable[[], float],
    ) -> None:
        self.spec = spec
        self.policy = spec.policy
        self.replicas = replicas
        self._host = host
        self.telemetry = telemetry
        self._bundles = bundles
        self.max_backlog = max_backlog
        self.cancel_grace = cancel_grace
        self.report_deadline = report_deadline
        self._suspect_after = max(report_deadline / 2, 1.5 * heartbeat)
        # A replica that reported idle reports less often (see liveness.py).
        self._idle_allowance = idle_allowance(heartbeat)
        self._clock = clock
        self.backlog: deque[TaskRecord] = deque()
        # Cancelled records left in the backlog (removing one from a deque is O(n)):
        # skipped when they reach its head, compacted away when they are half of it.
        self._stale = 0
        self._assigned = 0
        self._pump_scheduled = False
        # The replicas that may take a task, best first; those whose room (or phase)
        # changed since the last dispatch are re-indexed before the next one.
        self._index = RouteIndex()
        self._dirty: set[ReplicaState] = set()
        # Replicas running a suspect alone: only its descendants may join it.
        self._exclusive: set[ReplicaState] = set()
        # The moving mean of its tasks' runtimes (None before the first; see
        # prefetch). The pool's result handler updates it.
        self.mean_runtime: float | None = None
        # Its tasks are short: queued beyond a replica's slots however few wait.
        self._short_tasks = False
        # The slots of the pool at its full size (max_replicas of its own, and the
        # external replicas ready now): long tasks are queued beyond a replica's slots
        # only while more wait (see PREFETCH_DIVISOR).
        self._holds = self.policy.capacity
        self._external: dict[ReplicaState, int] = {}

    # ------------------------------------------------------------ the backlog

    def admit(self, record: TaskRecord) -> None:
        """Queue a task, or reject it at once when the backlog is full."""
        if self.waiting >= self.max_backlog:
            # Dispatch what fits first: a full backlog means no free slot either.
            self._pump_now()
        if self.waiting >= self.max_backlog:
            record.finished = True
            self.telemetry.task_rejected()
            record.deliver(
                failure(
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

    def queue_first(self, record: TaskRecord) -> None:
        """Put a task back at the head of the backlog (a retry goes first)."""
        self.backlog.appendleft(record)

    def mark_stale(self) -> None:
        """A task in the backlog was finished where it waits (cancelled): it stays in the
        deque until it reaches the head, or until such tasks are half of it."""
        self._stale += 1
        if self._stale > 64 and self._stale * 2 > len(self.backlog):
            self.backlog = deque(r for r in self.backlog if not r.finished)
            self._stale = 0

    def clear(self) -> list[TaskRecord]:
        """Empty the backlog; returns what it held (finished records included)."""
        waiting = list(self.backlog)
        self.backlog.clear()
        self._stale = 0
        return waiting

    @property
    def waiting(self) -> int:
        """Tasks in the backlog, not counting cancelled ones still in the deque."""
        return len(self.backlog) - self._stale

    @property
    def assigned(self) -> int:
        """Tasks on replicas, suspended parents included."""
        return self._assigned

    # ------------------------------------------------------------ dispatch

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

    def changed(self, replica: ReplicaState) -> None:
        """The replica's phase or stream changed, or it was forgotten: it is routed to,
        or no longer, from the next dispatch on."""
        self._dirty.add(replica)
        if replica.external:
            self._count_external(replica)
        self.pump()

    def _count_external(self, replica: ReplicaState) -> None:
        """An external replica's slots count in what the pool holds while it is ready."""
        slots = (
            replica.capacity
            if self.replicas.get(replica.replica_id) is replica
            and replica.phase is ReplicaPhase.READY
            and replica.stream is not None
            else 0
        )
        self._holds += slots - self._external.pop(replica, 0)
        if slots:
            self._external[replica] = slots

    def heard(self, replica: ReplicaState) -> None:
        """The replica was heard from (its ``heard_at`` moved): one that had gone silent,
        and so was left out of routing, may take tasks again."""
        if replica.replica_id not in self._index:
            self._dirty.add(replica)
        self.pump()

    def _reindex(self, replica: ReplicaState) -> None:
        replicas = self.replicas
        current = replicas.get(replica.replica_id)
        if current is not replica and current is not None:
            return  # a forgotten replica whose id a new one took
        if (
            current is not None
            and replica.phase is ReplicaPhase.READY
            and replica.stream is not None
            and replica.exclusive is None
        ):
            self._index.update(
                replica.replica_id,
                order=replica.order,
                room=replica.room,
                capacity=replica.capacity,
                prefetch=replica.prefetch,
                warm=replica.warm,
            )
        else:
            self._index.discard(replica.replica_id)

    def _pump_now(self) -> None:
        self._pump_scheduled = False
        backlog = self.backlog
        if not backlog:
            return
        if self._dirty:
            for replica in self._dirty:
                self._reindex(replica)
            self._dirty.clear()
        # One clock read per pump, not per task: the dispatches below time their round
        # trips from it.
        now = self._clock()
        # A replica silent for half its report deadline may be frozen: it gets no new
        # work until it is heard from again (or declared lost).
        heard_since = now - self._suspect_after if self.report_deadline else 0.0
        idle_since = heard_since - self._idle_allowance
        replicas = self.replicas
        ready = ReplicaPhase.READY

        def eligible(replica_id: str) -> bool:
            replica = replicas.get(replica_id)
            return (
                replica is not None
                and replica.phase is ready
                and replica.stream is not None
                and replica.heard_at >= (idle_since if replica.reported_idle else heard_since)
            )

        while backlog:
            record = backlog[0]
            if record.finished:  # cancelled while it waited
                backlog.popleft()
                self._stale -= 1
                continue
            code_key = _code_key(record.spec)
            chosen = self._route(record, code_key, eligible)
            if chosen is None:
                return  # the oldest task waits for its replica, and nothing overtakes it
            backlog.popleft()
            if record.cancel_requested:
                self._host.finish(record, cancellation(record, record.cancel_requested))
                continue
            self._dispatch(record, chosen, code_key, now)
            self._reindex(chosen)

    def _route(
        self,
        record: TaskRecord,
        code_key: str,
        eligible: Callable[[str], bool],
    ) -> ReplicaState | None:
        """The replica for ``record`` among those with room (see :func:`pick_replica`).

        Placement rules beyond room and warmth live here, and only here: a suspect
        (``record.solo``) goes only to a replica where nothing else *runs*, and a
        replica that runs a suspect (``exclusive``) takes only that suspect's
        descendants. Parents that only wait for their children (``suspended``) do not
        count as running: a death while they wait is not pinned on them (they are its
        victims, see retries.py), and they may hold every replica the pool may have,
        so a suspect that had to wait for them to end could wait for ever.

        Any other task is placed from the index, which holds no exclusive replica;
        these rare ones by a look at every replica.
        """
        if not record.solo and not (self._exclusive and self._joins_a_suspect(record)):
            # Long tasks are queued behind busy slots only while more wait than the pool
            # holds (see PREFETCH_DIVISOR): the last ones wait here for a free slot, and a
            # burst for the replicas still starting. One with a timeout, never.
            queue = self._short_tasks
            if not queue:
                waiting = len(self.backlog) - self._stale
                queue = (
                    waiting > self._assigned and waiting > self._holds and not record.spec.timeout
                )
            chosen_id = self._index.pick(code_key, eligible, queue=queue)
            return self.replicas[chosen_id] if chosen_id is not None else None
        chosen = pick_replica(
            RouteCandidate(r.replica_id, r.room, r.capacity, code_key in r.warm, r.prefetch)
            for r in self.replicas.values()
            if r.room > 0
            and eligible(r.replica_id)
            and (not record.solo or len(r.running) == r.suspended)
            and (r.exclusive is None or _descends_from(record, r.exclusive))
        )
        return self.replicas[chosen] if chosen is not None else None

    def _joins_a_suspect(self, record: TaskRecord) -> bool:
        return any(
            r.exclusive is not None and _descends_from(record, r.exclusive) for r in self._exclusive
        )

    def _dispatch(
        self, record: TaskRecord, replica: ReplicaState, code_key: str, now: float
    ) -> None:
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
        # Sent to a free slot, it starts on arrival: its result times the round trip.
        record.sent_at = now if replica.free > 0 else 0.0
        record.replica = replica
        # A new attempt: whether it calls children is its own (see retries.py).
        record.lost_children = record.made_calls = False
        if record.solo:
            replica.exclusive = record
            self._exclusive.add(replica)
        replica.running[record.task_id] = record
        if replica.reported_idle:
            self._host.given_work(replica, now)
        replica.warm.add(code_key)
        replica.dispatched += 1
        self._assigned += 1
        if record.children:
            replica.suspended += 1
        self.telemetry.task_dispatched(record, replica, now)
        replica.stream.dispatch(spec)
        if spec.timeout:
            # The replica cancels at the deadline; this catches a task that ignores it.
            asyncio.get_running_loop().call_later(
                spec.timeout + self.cancel_grace, self._host.expire, record, replica, True
            )
        if (
            self.policy.max_tasks
            and replica.dispatched >= self.policy.max_tasks
            and not replica.external
        ):
            self._host.retire(
                replica, f"ran max_tasks={self.policy.max_tasks} tasks", recycle="max_tasks"
            )

    def unassign(self, replica: ReplicaState, record: TaskRecord) -> None:
        """The task no longer runs on the replica (it finished, or the replica is gone)."""
        del replica.running[record.task_id]
        self._assigned -= 1
        if record.children:
            replica.suspended -= 1
        if replica.exclusive is record:
            replica.exclusive = None
            self._exclusive.discard(replica)
        self._dirty.add(replica)
        record.replica = None
        self.telemetry.task_unassigned(record)

    # ------------------------------------------------------------ slots

    def child_started(self, parent: TaskRecord) -> None:
        """A child of ``parent`` was accepted: the parent's slot is lent while it waits."""
        parent.children += 1
        replica = parent.replica
        if parent.children == 1 and replica is not None and parent.task_id in replica.running:
            replica.suspended += 1
            self._dirty.add(replica)
            self.pump()

    def child_finished(self, parent: TaskRecord) -> None:
        parent.children -= 1
        replica = parent.replica
        if parent.children == 0 and replica is not None and parent.task_id in replica.running:
            replica.suspended -= 1
            self._dirty.add(replica)

    # ------------------------------------------------------------ prefetch

    def runtime_is(self, mean: float) -> None:
        """The tasks' mean runtime moved: whether they are short (see PREFETCH_DIVISOR);
        a round trip's prefetch is measured against it from the next sample on."""
        self.mean_runtime = mean
        self._short_tasks = mean < SHORT_TASK_S

    def round_trip(self, replica: ReplicaState, seconds: float, now: float) -> None:
        """A task sent to a free slot of ``replica`` came back ``seconds`` later than it
        ran for: a round trip to it. Its prefetch covers the least one seen lately.

        Only a slot left idle for a round trip gives a sample: once the prefetch covers
        the round trip, none come (and none are needed) until it grows.
        """
        if now - replica.rtt_window_since > RTT_WINDOW:
            replica.rtt_last_window = replica.rtt_window
            replica.rtt_window, replica.rtt_window_since = seconds, now
        elif seconds < replica.rtt_window:
            replica.rtt_window = seconds
        else:
            return
        replica.prefetch = self.prefetch(replica.capacity, _rtt(replica))

    def prefetch(self, capacity: int, rtt: float = math.inf) -> int:
        """Tasks a replica of ``capacity`` slots is sent beyond them, queued there.

        A share of its slots; or, with ``rtt`` (its round trip) known and longer, the
        tasks its slots finish in one round trip (at most ``capacity``) and a tenth of
        its slots: a slot that frees starts the next task at once, instead of waiting
        for the round trip to the controller (a replica across a network).
        """
        share = capacity // PREFETCH_DIVISOR
        if not 0 < rtt < math.inf:
            return share
        runtime = max(self.mean_runtime or 0.0, SHORT_TASK_S)
        covered = min(capacity, int(capacity * rtt / runtime)) + capacity // RTT_MARGIN_DIVISOR
        return max(share, covered)


def _rtt(replica: ReplicaState) -> float:
    return min(replica.rtt_window, replica.rtt_last_window)


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
