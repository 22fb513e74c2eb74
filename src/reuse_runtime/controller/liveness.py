"""Liveness: a replica that stops reporting is declared lost by a deadline.

A replica reports on every busy/idle transition and at least once per heartbeat
(once per IDLE_HEARTBEATS heartbeats while idle), and its results count as reports
too. One that stays silent past the deadline
(stopped with SIGSTOP, its event loop wedged or blocked) is killed and replaced,
and its tasks are retried as after a death.

Silence is counted from the later of the replica's last message and the moment
the controller's own loop last came back from a stall (:class:`Listening`): a
controller that could not listen (a paused process, an overloaded loop) does not
blame its replicas for what it did not hear. Both are pure, with the clock passed in,
and so is :class:`SilenceWatch`, which finds the silent replicas among many without
looking at each one every tick.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)

#: Heartbeats a ready replica may miss before it is declared lost.
HEARTBEATS_BEFORE_LOST = 5
#: An idle replica (its last report said so) reports every IDLE_HEARTBEATS heartbeats,
#: not every one: with a thousand replicas attached, idle reports would otherwise be
#: most of an idle controller's work. Its deadline, and the silence after which it gets
#: no new work, are longer by the difference. A task sent to it makes it report at once,
#: and holds it to the busy deadline from the send (:meth:`SilenceWatch.tighten`). Ten:
#: a thousand idle workers' reports cost the controller about half what five did (issue
#: 30's target 5a), and only a frozen replica with nothing to do is found later (14 s).
IDLE_HEARTBEATS = 10


def idle_allowance(heartbeat: float) -> float:
    """The seconds more an idle replica may stay silent: its longer heartbeat's extra."""
    return (IDLE_HEARTBEATS - 1) * heartbeat


def silence(heard_at: float, listening_since: float, now: float) -> float:
    """Seconds a replica has been silent while the controller was listening."""
    return now - max(heard_at, listening_since)


def describe_silence(seconds: float, blocked_by: str = "") -> str:
    """The cause a replica lost this way is given; ``blocked_by``: the task its watchdog
    saw blocking its event loop, if any."""
    if blocked_by:
        return (
            f"it stopped reporting for {seconds:.0f} s: its event loop was blocked by task "
            f"{blocked_by}"
        )
    return (
        f"it stopped reporting for {seconds:.0f} s (stopped, wedged, cut off from the "
        f"controller, or its event loop blocked by a task)"
    )


@dataclass
class Listening:
    """When the controller's loop last resumed after a stall longer than ``stall``."""

    stall: float = 1.0
    since: float = 0.0
    _last: float | None = None

    def beat(self, now: float) -> float:
        """Record one turn of the controller's periodic loop; returns :attr:`since`."""
        if self._last is None or now - self._last > self.stall:
            self.since = now
        self._last = now
        return self.since


class SilenceWatch(Generic[T]):
    """Which replicas have been silent past their deadline, at a cost per message, not
    per replica per tick.

    :meth:`heard` notes each message with its time and the replica's deadline then (an
    idle replica's is longer: it reports less often). The replica is queued at the time
    its silence would pass that deadline, again only when that time moves by at least
    ``granularity`` seconds or comes earlier. :meth:`silent` takes the entries whose
    time has come: a replica heard from since is queued again at its latest message's
    time, one that was not is silent. So a tick looks only at the replicas whose
    deadline may just have passed, and a silent one is found at most ``granularity``
    seconds late.
    """

    def __init__(self, granularity: float = 0.1) -> None:
        self._granularity = granularity
        self._heard: dict[T, tuple[float, float]] = {}  # its last message, its deadline
        self._queued: dict[T, float] = {}  # when its queued entry comes due
        self._queue: list[tuple[float, int, T]] = []
        self._entries = itertools.count()

    def __len__(self) -> int:
        return len(self._heard)

    def heard(self, replica: T, at: float, deadline: float) -> None:
        """A message from ``replica`` at ``at`` (the controller's clock); it may be silent
        ``deadline`` seconds from now on."""
        self._heard[replica] = (at, deadline)
        due = at + deadline
        queued = self._queued.get(replica)
        if queued is None or due < queued or due - queued >= self._granularity:
            self._queue_at(replica, due)

    def tighten(self, replica: T, at: float, deadline: float) -> None:
        """From ``at`` on, ``replica`` may stay silent only ``deadline`` seconds, if its
        deadline was longer (an idle replica given a task): its silence counts from
        ``at``. Does nothing to a replica with that deadline already, or not watched."""
        known = self._heard.get(replica)
        if known is not None and known[1] > deadline:
            self.heard(replica, at, deadline)

    def forget(self, replica: T) -> None:
        """Watch ``replica`` no more (it is gone), until it is heard from again."""
        self._heard.pop(replica, None)
        self._queued.pop(replica, None)

    def silent(self, now: float, listening_since: float) -> list[tuple[T, float]]:
        """The replicas silent past their deadline (counted as :func:`silence` does),
        each with how long; each is returned once, and forgotten."""
        found = []
        queue, heard, queued = self._queue, self._heard, self._queued
        while queue and queue[0][0] < now:
            due, _, replica = heapq.heappop(queue)
            if queued.get(replica) != due:
                continue  # forgotten, or queued again since
            at, deadline = heard[replica]
            quiet = silence(at, listening_since, now)
            if quiet > deadline:
                found.append((replica, quiet))
                self.forget(replica)
            else:  # heard from since, or the controller itself was not listening
                self._queue_at(replica, max(at, listening_since) + deadline)
        return found

    def _queue_at(self, replica: T, due: float) -> None:
        self._queued[replica] = due
        heapq.heappush(self._queue, (due, next(self._entries), replica))
