"""Liveness: a replica that stops reporting is declared lost by a deadline.

A replica reports on every busy/idle transition and at least once per heartbeat,
and its results count as reports too. One that stays silent past the deadline
(stopped with SIGSTOP, its event loop wedged or blocked) is killed and replaced,
and its tasks are retried as after a death.

Silence is counted from the later of the replica's last message and the moment
the controller's own loop last came back from a stall (:class:`Listening`): a
controller that could not listen (a paused process, an overloaded loop) does not
blame its replicas for what it did not hear. Both are pure, with the clock passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Heartbeats a ready replica may miss before it is declared lost.
HEARTBEATS_BEFORE_LOST = 5


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
        f"it stopped reporting for {seconds:.0f} s (stopped, wedged, or its event loop "
        f"blocked by a task)"
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
