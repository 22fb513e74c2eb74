"""The progress bar of ``Run.wait()``: a run's children done, failed and running.

It appears on stderr, only when stderr is a terminal, once the run has children,
and streamed output lines print above it, whole. ``wait(progress=False)`` or
``REUSE_RUNTIME_PROGRESS=0`` turns it off.

The counts come from the controller (``GetRunProgress``), polled a few times a
second. The total is the children the controller knows plus those the callers
still hold back (at most 10,000 unfinished children per caller are at the
controller at once), so it is right for big fan-outs too.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from reuse_runtime.model import RunProgress

PROGRESS_ENV = "REUSE_RUNTIME_PROGRESS"
#: Seconds between two looks at the controller's counts.
POLL_SECONDS = 0.25
_OFF = ("0", "false", "no", "off")


def progress_wanted(progress: bool | None, stream: TextIO | None = None) -> bool:
    """Whether ``Run.wait(progress=...)`` shows a bar: asked for, not turned off, on a TTY."""
    if progress is False:
        return False
    if os.environ.get(PROGRESS_ENV, "").strip().lower() in _OFF:
        return False
    return _isatty(stream if stream is not None else sys.stderr)


class _RateColumn(ProgressColumn):
    """Children finished per second (rich's estimate over the last 30 s)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")


class RunProgressDisplay:
    """Shows one run's progress while ``Run.wait()`` streams its output.

    Call-order contract: :meth:`poll` as often as convenient (it looks at the
    controller at most every :data:`POLL_SECONDS`), :meth:`line` for each output
    line, :meth:`close` once at the end.
    """

    def __init__(
        self,
        task_name: str,
        fetch: Callable[[], RunProgress | None],
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._next_poll = 0.0
        self._console = Console(file=stream or sys.stderr)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            _RateColumn(),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=self._console,
            refresh_per_second=4,
        )
        self._description = f"{task_name}: children"
        self._task: TaskID | None = None
        self._gone = False

    @property
    def shown(self) -> bool:
        return self._task is not None

    def poll(self, *, force: bool = False) -> None:
        """Update from the controller, if it is time (or ``force``)."""
        now = self._clock()
        if self._gone or (now < self._next_poll and not force):
            return
        self._next_poll = now + POLL_SECONDS
        progress = self._fetch()
        if progress is None:
            self._gone = True  # the controller cannot say (an older one, or it is gone)
            return
        if progress.found:
            self._show(progress)

    def line(self, text: str, stream: TextIO) -> None:
        """Print an output line above the bar (or plainly, where the bar is not)."""
        if self._task is not None and _isatty(stream):
            # The bar's console knows where the bar is: the line goes above it, whole.
            self._console.print(Text(text), soft_wrap=True, highlight=False)
        else:
            print(text, file=stream, flush=True)

    def close(self) -> None:
        """Show the run's final counts and leave the finished bar on the terminal."""
        if self._task is not None:
            self.poll(force=True)
            self._progress.stop()

    def _show(self, progress: RunProgress) -> None:
        total = progress.total
        if self._task is None:
            if total <= 0:
                return
            self._progress.start()
            self._task = self._progress.add_task(self._description, total=total, detail="")
        parts = []
        if progress.failed:
            parts.append(f"[red]{progress.failed:,} failed[/red]")
        parts.append(f"{progress.running:,} running")
        if progress.retried:
            parts.append(f"{progress.retried:,} retried")
        self._progress.update(
            self._task,
            total=max(total, progress.finished),
            completed=progress.finished,
            detail=" · ".join(parts),
        )


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
