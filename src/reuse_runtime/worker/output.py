"""Route ``print()`` and logging inside a task to the task's caller.

:func:`install` replaces ``sys.stdout`` and ``sys.stderr`` with streams that
look up the running task: inside a task, whole lines go to the task's sink,
prefixed later with the task's name; outside a task, text passes through.
"""

from __future__ import annotations

import io
import sys
from typing import TextIO

from reuse_runtime.context import TaskContext, current_task
from reuse_runtime.model import LogLine


class TaskRoutedStream(io.TextIOBase):
    """A text stream that sends a task's lines to its sink and passes other text through."""

    def __init__(self, name: str, fallback: TextIO) -> None:
        super().__init__()
        self._name = name
        self._fallback = fallback

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._fallback, "encoding", "utf-8")

    @property
    def fallback(self) -> TextIO:
        return self._fallback

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fallback.fileno()

    def write(self, text: str) -> int:
        ctx = current_task.get()
        if ctx is None:
            return self._fallback.write(text)
        pending = ctx.partial.get(self._name, "") + text
        if "\n" in pending:
            *lines, pending = pending.split("\n")
            for line in lines:
                ctx.emit(_line(ctx, self._name, line))
        ctx.partial[self._name] = pending
        return len(text)

    def flush(self) -> None:
        if current_task.get() is None:
            self._fallback.flush()


def flush_task(ctx: TaskContext) -> None:
    """Send the task's unfinished lines; call when the task ends."""
    for name, pending in ctx.partial.items():
        if pending:
            ctx.emit(_line(ctx, name, pending))
    ctx.partial.clear()


def _line(ctx: TaskContext, stream: str, text: str) -> LogLine:
    return LogLine(
        ctx.task_id, ctx.label, ctx.run_id, stream, text, ctx.parent_task_id, ctx.replica_id
    )


def install() -> tuple[TextIO, TextIO]:
    """Route ``sys.stdout`` and ``sys.stderr``; returns the original streams."""
    if not isinstance(sys.stdout, TaskRoutedStream):
        sys.stdout = TaskRoutedStream("stdout", sys.stdout)
    if not isinstance(sys.stderr, TaskRoutedStream):
        sys.stderr = TaskRoutedStream("stderr", sys.stderr)
    return sys.stdout.fallback, sys.stderr.fallback
