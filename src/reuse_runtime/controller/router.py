"""`pick_replica`: where the next task goes, as a pure function.

A task goes to a replica with a free slot. Among those, replicas that already
have the task's code loaded come first (their module state is warm), then the
least loaded. Ties keep the order given, so routing is deterministic.
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


def pick_replica(candidates: Iterable[RouteCandidate]) -> str | None:
    """The replica for the next task, or ``None`` when every slot is taken."""
    best: RouteCandidate | None = None
    best_key: tuple[bool, float] = (False, -1.0)
    for candidate in candidates:
        if candidate.free <= 0:
            continue
        key = (candidate.warm, candidate.free / candidate.capacity)
        if best is None or key > best_key:
            best, best_key = candidate, key
    return best.replica_id if best is not None else None
