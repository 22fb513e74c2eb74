"""`TaskLimiter`: the one source of truth for how busy a replica is.

It bounds the tasks that run at once to ``capacity``; the excess waits in
arrival order. It also owns the replica's idle clock: the replica is *idle*
when no task runs, waits, or is suspended on a child task. Idle reports read
:meth:`TaskLimiter.statistics` and nothing else.

A task that awaits a child task lends its slot (:meth:`lend`) and takes one
back afterwards (:meth:`reclaim`), so a parent can never starve its children.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LimiterStatistics:
    """A snapshot of the limiter. ``idle_since`` is Unix time, ``None`` while busy."""

    capacity: int
    active: int
    waiting: int
    suspended: int
    completed: int
    failed: int
    idle_since: float | None
    idle_seconds: float

    @property
    def busy(self) -> bool:
        return self.idle_since is None


class TaskLimiter:
    """A FIFO capacity limiter with statistics and busy/idle transition callbacks.

    Not thread-safe: use it from the event loop only.
    """

    def __init__(
        self,
        capacity: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._clock = clock
        self._wall_clock = wall_clock
        self._active = 0
        self._suspended = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._completed = 0
        self._failed = 0
        self._busy = False
        self._idle_since_wall: float = wall_clock()
        self._idle_since_mono: float = clock()
        self._listeners: list[Callable[[bool], None]] = []

    @property
    def capacity(self) -> int:
        return self._capacity

    def add_listener(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(busy)`` on every busy/idle transition."""
        self._listeners.append(callback)

    def statistics(self) -> LimiterStatistics:
        idle = not self._busy
        return LimiterStatistics(
            capacity=self._capacity,
            active=self._active,
            waiting=len(self._waiters),
            suspended=self._suspended,
            completed=self._completed,
            failed=self._failed,
            idle_since=self._idle_since_wall if idle else None,
            idle_seconds=max(0.0, self._clock() - self._idle_since_mono) if idle else 0.0,
        )

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody waits for one; returns whether it did."""
        if self._active < self._capacity and not self._waiters:
            self._active += 1
            self._update()
            return True
        return False

    async def acquire(self) -> None:
        """Take a slot, waiting in arrival order while all are taken."""
        if self.try_acquire():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._update()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # The slot was granted just as we were cancelled: pass it on.
                self._active -= 1
                self._grant()
            else:
                # A slot that freed as it was cancelled has already dropped its turn.
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            self._update()
            raise

    def release(self, *, failed: bool = False, count: bool = True) -> None:
        """Give back a slot taken by :meth:`acquire`, counting the task as finished."""
        self._active -= 1
        if not count:
            pass
        elif failed:
            self._failed += 1
        else:
            self._completed += 1
        self._grant()
        self._update()

    def lend(self) -> None:
        """Give the slot to others while this task waits on child tasks."""
        self._active -= 1
        self._suspended += 1
        self._grant()

    async def reclaim(self) -> None:
        """Take a slot back after :meth:`lend`, waiting in line like any task.

        If this is cancelled, the task holds no slot and must not release one.
        """
        self._suspended -= 1
        await self.acquire()

    def _grant(self) -> None:
        while self._waiters and self._active < self._capacity:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._active += 1
                waiter.set_result(None)

    def _update(self) -> None:
        busy = (self._active + self._suspended + len(self._waiters)) > 0
        if busy == self._busy:
            return
        self._busy = busy
        if not busy:
            self._idle_since_wall = self._wall_clock()
            self._idle_since_mono = self._clock()
        for callback in self._listeners:
            callback(busy)
