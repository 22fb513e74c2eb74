"""`decide_scale`: how many replicas a pool should have, as a pure function.

The decision depends only on a snapshot of the pool, the policy, the typed
:class:`ScaleState` carried between ticks, and ``now`` (the controller's
monotonic clock, injected). It is unit-tested tick by tick, with no cluster and
no sleeping.

Rules, in order:

1. **Dormant.** A pool that has never been used, or whose whole environment
   idled for ``idle_ttl``, has no replicas. The next task wakes it.
2. **Environment idle TTL.** When no task has run or waited for ``idle_ttl``,
   every replica stops, ``min_replicas`` included.
3. **Scale up.** Want enough replicas for the tasks running and waiting
   (``ceil(demand / concurrency)``), between ``min_replicas`` (at least one
   while there is work) and ``max_replicas``. Starting replicas count, so a
   burst starts each replica once. Draining replicas (recycled, finishing
   their last tasks) count toward ``max_replicas`` until they stop, so the
   environment never holds more than ``max_replicas`` replicas running tasks.
   A draining replica whose tasks are all parents waiting for their children
   holds no slot and does not count: the children it waits for need one.
4. **Scale down.** A replica with no tasks, idle at least ``scaledown_ttl``, is
   stopped while more than the wanted count (and ``min_replicas``) remain.
   Longest-idle first.
5. **Start failures back off** exponentially (0.5 s doubling, at most 30 s).
   After :data:`START_FAILURES_BEFORE_GIVING_UP` in a row the pool gives up
   (its waiting tasks fail), and while no task runs or waits, nothing starts:
   not even ``min_replicas``, since an image that cannot be pulled would be
   pulled again every deadline until ``idle_ttl``. New work tries again.
6. **External replicas** (workers someone else started, attached with
   ``--environment``) are not in ``replicas``: they are never stopped and no
   TTL applies to them. Their free slots serve waiting tasks first, and while
   one is ready, being busy alone does not call for a replica of our own.
7. **Adopted replicas** (a predecessor controller's, taken over at a restart)
   wake a dormant environment: they are kept, warm, as if the environment had
   gone idle at their adoption, so they stop only by the TTLs. The tasks their
   clients send again may come after the pool's first tick.
8. **Superseded versions.** A pool whose environment has a newer code version
   serving still runs the work it has (its runs end where they started), but
   is not held at ``min_replicas``, and once it has been idle for
   ``scaledown_ttl`` (not ``idle_ttl``) it goes dormant: zero replicas.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

from reuse_runtime.model import PoolPolicy

#: After this many failed starts in a row, waiting tasks fail instead of waiting on, and
#: an environment without work stops trying (rule 5).
START_FAILURES_BEFORE_GIVING_UP = 3


class ReplicaPhase(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"


@dataclass(frozen=True, slots=True)
class ReplicaView:
    """What the autoscaler needs to know about one replica."""

    replica_id: str
    phase: ReplicaPhase
    # Tasks the controller has on it and that hold a slot (suspended parents excluded).
    running: int
    # Controller-clock time since which it has had no task at all; None while busy.
    idle_since: float | None
    # Taken over from a predecessor controller (rule 7).
    adopted: bool = False


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    replicas: tuple[ReplicaView, ...]
    # Tasks accepted and waiting for a slot.
    backlog: int
    # Tasks on replicas, suspended parents included: the environment is busy while > 0.
    assigned: int = 0
    consecutive_start_failures: int = 0
    last_start_failure: float | None = None
    # Ready external replicas, and their free slots.
    external_ready: int = 0
    external_free: int = 0
    # A newer version of the environment serves now (rule 8).
    superseded: bool = False


@dataclass(frozen=True, slots=True)
class ScaleState:
    dormant: bool = True
    # When the whole environment last became idle (no task running or waiting).
    idle_since: float | None = None


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    start: int = 0
    stop: tuple[str, ...] = ()
    reason: str = ""


NOTHING = ScaleDecision()


def start_backoff(failures: int) -> float:
    """Seconds to wait before starting again after ``failures`` failed starts in a row."""
    if failures <= 0:
        return 0.0
    return float(min(30.0, 0.5 * 2 ** (failures - 1)))


def decide_scale(
    snapshot: PoolSnapshot, policy: PoolPolicy, state: ScaleState, now: float
) -> tuple[ScaleDecision, ScaleState]:
    if snapshot.superseded:
        # Rule 8: an old version is held at no minimum, and idles out after scaledown_ttl.
        policy = replace(
            policy,
            min_replicas=0,
            idle_ttl=min(policy.idle_ttl, policy.scaledown_ttl),
        )
    live = [r for r in snapshot.replicas if r.phase is not ReplicaPhase.DRAINING]
    running = sum(r.running for r in snapshot.replicas)
    busy = snapshot.backlog > 0 or snapshot.assigned > 0 or running > 0

    if busy:
        state = ScaleState(dormant=False, idle_since=None)
    else:
        if state.dormant and any(r.adopted for r in live):
            state = ScaleState(dormant=False, idle_since=now)  # rule 7
        if state.dormant:
            stop = tuple(r.replica_id for r in live)
            return ScaleDecision(stop=stop, reason="environment is dormant"), state
        if state.idle_since is None:
            idle_marks = [r.idle_since for r in live if r.idle_since is not None]
            state = replace(state, idle_since=max(idle_marks, default=now))
        assert state.idle_since is not None
        if now - state.idle_since >= policy.idle_ttl:
            stop = tuple(r.replica_id for r in live)
            return (
                ScaleDecision(stop=stop, reason=f"environment idle for {policy.idle_ttl:g} s"),
                ScaleState(dormant=True, idle_since=state.idle_since),
            )

    # A draining replica still runs its last tasks: it holds its slots until it stops,
    # so it counts toward max_replicas (a recycled replica's successor waits for them).
    # One whose tasks are all parents waiting for children holds no slot: counting it
    # would leave those children nowhere to run (a one-task-per-process environment
    # whose every process waits on a child would wait for ever).
    draining = sum(
        1
        for r in snapshot.replicas
        if r.phase is ReplicaPhase.DRAINING and (r.running > 0 or r.idle_since is not None)
    )
    room = max(0, policy.max_replicas - draining)
    demand = sum(r.running for r in live) + max(0, snapshot.backlog - snapshot.external_free)
    floor = 1 if busy and not snapshot.external_ready else 0
    wanted = max(math.ceil(demand / policy.concurrency), policy.min_replicas, floor)
    wanted = min(wanted, room)

    gave_up = not busy and snapshot.consecutive_start_failures >= START_FAILURES_BEFORE_GIVING_UP
    if len(live) < wanted and not gave_up:
        waited = (
            now - snapshot.last_start_failure if snapshot.last_start_failure is not None else None
        )
        backoff = start_backoff(snapshot.consecutive_start_failures)
        if waited is not None and waited < backoff:
            return NOTHING, state
        return (
            ScaleDecision(
                start=wanted - len(live),
                reason=f"{demand} tasks want {wanted} replicas"
                + (f" ({draining} draining)" if draining else ""),
            ),
            state,
        )

    # Scale down: idle replicas past their TTL, longest idle first, while more than wanted.
    removable = sorted(
        (
            r
            for r in live
            if r.running == 0
            and r.idle_since is not None
            and now - r.idle_since >= policy.scaledown_ttl
            and r.phase is ReplicaPhase.READY
        ),
        key=lambda r: r.idle_since or 0.0,
    )
    excess = len(live) - max(wanted, policy.min_replicas)
    stop = tuple(r.replica_id for r in removable[: max(0, excess)])
    if stop:
        return ScaleDecision(stop=stop, reason=f"idle for {policy.scaledown_ttl:g} s"), state
    return NOTHING, state
