"""`pick_replica`: where the next task goes, as a pure function; `RouteIndex`: the same
choice among many replicas, kept as their room changes.

A task goes to a replica with a free slot. Among those, replicas that already
have the task's code loaded come first (their module state is warm), then the
least loaded. Ties keep the order given, so routing is deterministic.

A replica may also be sent a few tasks beyond its slots (its ``prefetch``; its
limiter queues them): such room counts only when no replica has a slot free,
so a prefetch never queues a task behind others while a slot is idle.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
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


#: A heap entry: (0 or -1 for "has a free slot", -room/capacity, order, version, replica id).
#: Smallest first: a slot, then the most room per capacity, then the earliest replica.
_Entry = tuple[int, float, int, int, str]


@dataclass(slots=True)
class _Indexed:
    """What the index holds of one replica: its entry's key, and the code it has loaded."""

    version: int
    slot: int
    ratio: float
    order: int
    warm: AbstractSet[str]
    warm_count: int


class RouteIndex:
    """The replicas with room, in :func:`pick_replica`'s order, kept up to date by changes.

    :func:`pick_replica` looks at every candidate: O(replicas) per task, a millisecond
    among a thousand. This answers the same question from heaps: O(log replicas) per
    change of a replica's room, and a pick reads the top of one or two heaps.

    * :meth:`update` is called whenever a replica's room, capacity or prefetch, or the
      code it has loaded, may have changed; a replica without room, or that may not be
      routed to, is :meth:`discard`-ed. An update that changes nothing costs a lookup.
    * :meth:`pick` is :func:`pick_replica` over the replicas in the index that
      ``eligible`` accepts. One it refuses (a replica gone silent, say) is dropped from
      the index at once, and comes back with its next :meth:`update`.

    Heaps keep stale entries (an older version of a replica) until they reach the top
    or outnumber the live ones, when the heap is rebuilt. Besides the heap of every
    replica, a heap per code key holds the replicas warm for it: built on the first
    pick that needs it, kept for the ``warm_heaps`` code keys picked most recently.
    """

    def __init__(self, warm_heaps: int = 16) -> None:
        self._replicas: dict[str, _Indexed] = {}
        self._all: list[_Entry] = []
        self._warm: OrderedDict[str, list[_Entry]] = OrderedDict()
        self._warm_heaps = warm_heaps
        self._version = 0

    def __contains__(self, replica_id: str) -> bool:
        return replica_id in self._replicas

    def __len__(self) -> int:
        return len(self._replicas)

    def update(
        self,
        replica_id: str,
        *,
        order: int,
        room: int,
        capacity: int,
        prefetch: int,
        warm: AbstractSet[str],
    ) -> None:
        """The replica's room now (``room <= 0``: it leaves the index); ``order`` breaks
        ties (earlier first); ``warm``: the code keys it has loaded (a live set, read
        again when a code key's heap is built)."""
        if room <= 0:
            self.discard(replica_id)
            return
        slot = -1 if room > prefetch else 0
        ratio = -room / capacity
        known = self._replicas.get(replica_id)
        if (
            known is not None
            and known.slot == slot
            and known.ratio == ratio
            and known.warm_count == len(warm)
        ):
            return
        self._version += 1
        version = self._version
        self._replicas[replica_id] = _Indexed(version, slot, ratio, order, warm, len(warm))
        entry = (slot, ratio, order, version, replica_id)
        heapq.heappush(self._all, entry)
        if len(self._all) > 2 * len(self._replicas) + 64:
            self._all = self._rebuild(None)
        heaps = self._warm
        if heaps:
            keys = [k for k in warm if k in heaps] if len(warm) <= len(heaps) else list(heaps)
            for key in keys:
                if key in warm:
                    heap = heaps[key]
                    heapq.heappush(heap, entry)
                    if len(heap) > 2 * len(self._replicas) + 64:
                        heaps[key] = self._rebuild(key)

    def discard(self, replica_id: str) -> None:
        """The replica may not be routed to until its next :meth:`update`."""
        self._replicas.pop(replica_id, None)

    def pick(
        self, code_key: str, eligible: Callable[[str], bool], *, queue: bool = True
    ) -> str | None:
        """The replica :func:`pick_replica` would choose among the eligible ones (warm
        meaning ``code_key`` is loaded there); None when none has room, or, with
        ``queue`` false, when none has a free slot (a task would wait in its queue)."""
        best = self._top(self._all, eligible)
        if best is None or (best[0] == 0 and not queue):
            return None
        chosen = self._replicas[best[4]]
        if code_key in chosen.warm:
            return best[4]
        heap = self._warm.get(code_key)
        if heap is None:
            heap = self._warm[code_key] = self._rebuild(code_key)
            if len(self._warm) > self._warm_heaps:
                self._warm.popitem(last=False)
        else:
            self._warm.move_to_end(code_key)
        warm = self._top(heap, eligible)
        # A warm replica wins unless only the other has a free slot (warmth ranks second).
        if warm is not None and warm[0] <= best[0]:
            return warm[4]
        return best[4]

    def _top(self, heap: list[_Entry], eligible: Callable[[str], bool]) -> _Entry | None:
        replicas = self._replicas
        while heap:
            entry = heap[0]
            known = replicas.get(entry[4])
            if known is None or known.version != entry[3]:
                heapq.heappop(heap)  # stale: the replica changed, or left
            elif not eligible(entry[4]):
                del replicas[entry[4]]
                heapq.heappop(heap)
            else:
                return entry
        return None

    def _rebuild(self, code_key: str | None) -> list[_Entry]:
        """A heap of the live entries: every replica's, or those warm for ``code_key``."""
        heap = [
            (r.slot, r.ratio, r.order, r.version, replica_id)
            for replica_id, r in self._replicas.items()
            if code_key is None or code_key in r.warm
        ]
        heapq.heapify(heap)
        return heap
