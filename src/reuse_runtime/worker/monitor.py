"""`ReplicaMonitor`: what a replica reports about itself.

Busy/idle state and counts come from the :class:`TaskLimiter` statistics and
nothing else. The monitor adds resident memory, event-loop lag, and a
watchdog thread that names the task blocking the loop.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from types import FrameType

import psutil
import structlog

from reuse_runtime.model import ReplicaReport
from reuse_runtime.worker.limiter import TaskLimiter

log = structlog.get_logger("reuse_runtime.worker")

#: Seconds between the watchdog's own reports while the loop stays blocked.
WATCHDOG_REPORT_EVERY = 1.0


class ReplicaMonitor:
    """Builds :class:`ReplicaReport` snapshots and signals busy/idle transitions.

    Call-order contract: create inside the running loop, then ``await run()`` in a
    tracked task; cancel it to stop.
    """

    def __init__(
        self,
        replica_id: str,
        limiter: TaskLimiter,
        *,
        probe_interval: float = 0.1,
        block_threshold: float = 0.5,
    ) -> None:
        self.replica_id = replica_id
        self._limiter = limiter
        self._process = psutil.Process()
        self._started = time.monotonic()
        self._probe_interval = probe_interval
        self._block_threshold = block_threshold
        self._lags: deque[float] = deque(maxlen=max(1, int(5.0 / probe_interval)))
        self._beat = time.monotonic()
        self._loop_thread = threading.get_ident()
        self._loop = asyncio.get_running_loop()
        self.changed = asyncio.Event()
        self.draining = False
        self.recycle_reason = ""
        self.loop_blocked_by = ""
        #: Called from the watchdog thread with a report while the loop is blocked
        #: (the replica's link cannot send then: it runs on that loop).
        self.send_while_blocked: Callable[[ReplicaReport], object] | None = None
        limiter.add_listener(self._on_transition)

    def _on_transition(self, busy: bool) -> None:
        self.changed.set()

    def rss(self) -> int:
        try:
            return int(self._process.memory_info().rss)
        except psutil.Error:
            return 0

    def loop_lag(self) -> float:
        """The largest event-loop lag seen over the last few seconds."""
        return max(self._lags, default=0.0)

    def current_lag(self) -> float:
        """The loop lag, counting a block in progress: safe to call from another thread."""
        blocked = time.monotonic() - self._beat - self._probe_interval
        return max(self.loop_lag(), blocked, 0.0)

    def report(self) -> ReplicaReport:
        stats = self._limiter.statistics()
        return ReplicaReport(
            replica_id=self.replica_id,
            active=stats.active,
            capacity=stats.capacity,
            waiting=stats.waiting,
            idle_since=stats.idle_since,
            idle_seconds=stats.idle_seconds,
            completed=stats.completed,
            failed=stats.failed,
            rss_bytes=self.rss(),
            loop_lag=self.loop_lag(),
            draining=self.draining,
            uptime=time.monotonic() - self._started,
            loop_blocked_by=self.loop_blocked_by,
            sent_at=time.time(),
            recycle_reason=self.recycle_reason,
        )

    async def run(self) -> None:
        """Measure loop lag forever; a watchdog thread watches the heartbeat."""
        stop = threading.Event()
        watchdog = threading.Thread(
            target=self._watch, args=(stop,), name="reuse-loop-watchdog", daemon=True
        )
        watchdog.start()
        try:
            while True:
                before = time.monotonic()
                self._beat = before
                await asyncio.sleep(self._probe_interval)
                self._lags.append(max(0.0, time.monotonic() - before - self._probe_interval))
        finally:
            stop.set()

    def _watch(self, stop: threading.Event) -> None:
        reported_beat = 0.0
        sent_at = 0.0
        last_task = 0
        moved = False  # the loop ran other tasks since the watchdog's last report
        while not stop.wait(self._probe_interval):
            beat = self._beat
            now = time.monotonic()
            blocked_for = now - beat
            running = id(_running_task(self._loop))
            if running != last_task:
                moved = moved or last_task != 0
                last_task = running
            if blocked_for < self._block_threshold:
                moved = False
                continue
            if beat != reported_beat:
                reported_beat = beat
                sent_at = 0.0
                culprit = _blocking_task(sys._current_frames().get(self._loop_thread))
                if culprit:
                    self.loop_blocked_by = culprit
                    log.warning(
                        "event loop blocked",
                        task=culprit,
                        blocked_seconds=round(blocked_for, 3),
                        hint="use `await asyncio.sleep` or a `def` task for blocking work",
                    )
            send = self.send_while_blocked
            if send is None or now - sent_at < WATCHDOG_REPORT_EVERY:
                continue
            # The loop's lag right now is at least how long it has been blocked.
            lag = max(self.loop_lag(), blocked_for)
            if moved:
                # Busy, not wedged: one turn of the loop runs many tasks (a gather of
                # 100k children starts them all in one turn). A report without a
                # culprit counts as the replica's heartbeat.
                sent_at, moved = now, False
                send(replace(self.report(), loop_lag=lag, loop_blocked_by=""))
            elif self.loop_blocked_by:
                # One task holds the loop: shown in status, and not a heartbeat.
                sent_at = now
                send(replace(self.report(), loop_lag=lag))


def _running_task(loop: asyncio.AbstractEventLoop) -> object:
    """The task ``loop`` is running now, read from another thread (None if unknown)."""
    current = getattr(asyncio.tasks, "_current_tasks", None)
    return current.get(loop) if isinstance(current, dict) else None


def _blocking_task(frame: FrameType | None) -> str:
    """The task whose code is on the loop thread's stack, as ``name (task id)``."""
    from reuse_runtime.worker.executor import Executor

    run_code = Executor._run.__code__
    while frame is not None:
        if frame.f_code is run_code:
            spec = frame.f_locals.get("spec")
            name = getattr(spec, "name", "") or "?"
            return f"{name} ({getattr(spec, 'task_id', '?')})"
        frame = frame.f_back
    return ""
