"""`pick_replica`: where the next task goes, as a pure function.

A task goes to a replica with a free slot. Among those, replicas that already
have the task's code loaded come first (their module state is warm), then the
least loaded. Ties keep the order given, so routing is deterministic.

A replica may also be sent a few tasks beyond its slots (its ``prefetch``; its
limiter queues them): such room counts only when no replica has a slot free,
so a prefetch never queues a task behind others while a slot is idle.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RouteCandidate:
    replica_id: str
    free: int
    capacity: int
    warm: bool
    prefetch: int = 0  # of ``free``, how many are beyond its slots (queued there)


def pick_replica(candidates: Iterable[RouteCandidate]) -> str | None:
    """The replica for the next task, or ``None`` when every slot is taken."""
    best: RouteCandidate | None = None
    best_key: tuple[bool, bool, float] = (False, False, -1.0)
    for candidate in candidates:
        if candidate.free <= 0:
            continue
        slot = candidate.free > candidate.prefetch
        key = (slot, candidate.warm, candidate.free / candidate.capacity)
        if best is None or key > best_key:
            best, best_key = candidate, key
    return best.replica_id if best is not None else None
