"""The last hour of each environment: tasks/s, queue length and replicas, sampled.

:class:`PoolHistory` keeps one point per environment every ``interval`` seconds
(a few integers read from the controller's counters: the UI's only cost while
no browser is open), at most ``span`` seconds of them. Tasks/s is the change of
the ended-task counter between two samples (a pool made between two samples
counts from zero at the first). Pure: the sampler hands it the time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from reuse_runtime.ui.live import PoolCounters

#: Seconds between samples, and the seconds the chart shows.
SAMPLE_SECONDS = 10.0
SPAN_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Point:
    """One environment at one moment: ``at`` is epoch seconds."""

    at: float
    tasks_per_second: float
    backlog: int
    replicas: int


class PoolHistory:
    """Points per environment name, oldest first, over the last ``span`` seconds."""

    def __init__(self, *, interval: float = SAMPLE_SECONDS, span: float = SPAN_SECONDS) -> None:
        if interval <= 0 or span < interval:
            raise ValueError(f"need 0 < interval <= span, got {interval} and {span}")
        self.interval = interval
        self._size = int(span / interval) + 1
        self._points: dict[str, deque[Point]] = {}
        # The last sample of each pool key: (time, tasks ended); and when it was taken.
        self._last: dict[str, tuple[float, int]] = {}
        self._last_at: float | None = None

    def record(self, now: float, counters: Iterable[PoolCounters]) -> None:
        """Add one point per environment (pools of one name, several versions, add up)."""
        pools = list(counters)
        by_name = self.peek(now, pools)
        self._last = {pool.key: (now, pool.completed + pool.failed) for pool in pools}
        self._last_at = now
        for name, point in by_name.items():
            points = self._points.get(name)
            if points is None:
                points = self._points[name] = deque(maxlen=self._size)
            points.append(point)
        # An environment gone from the controller keeps its hour, then is forgotten.
        for name in list(self._points):
            points = self._points[name]
            if name not in by_name and points and now - points[-1].at > self._size * self.interval:
                del self._points[name]

    def peek(self, now: float, counters: Iterable[PoolCounters]) -> dict[str, Point]:
        """The point each environment would get now, by name, without recording it."""
        by_name: dict[str, list[float]] = {}
        for pool in counters:
            ended = pool.completed + pool.failed
            # A pool made since the last sample ended all its tasks since then.
            last = self._last.get(pool.key)
            if last is None and self._last_at is not None:
                last = (self._last_at, 0)
            rate = 0.0
            if last is not None and now > last[0]:
                rate = max(0, ended - last[1]) / (now - last[0])
            total = by_name.setdefault(pool.name, [0.0, 0, 0])
            total[0] += rate
            total[1] += pool.backlog
            total[2] += pool.replicas
        return {
            name: Point(now, round(rate, 3), int(backlog), int(replicas))
            for name, (rate, backlog, replicas) in by_name.items()
        }

    def names(self) -> list[str]:
        return sorted(self._points)

    def points(self, name: str) -> tuple[Point, ...]:
        return tuple(self._points.get(name, ()))
