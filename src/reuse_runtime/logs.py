"""Structured logs: readable lines for people, JSON lines for files (or when asked).

A terminal, or a pipe, gets one readable line per event; a regular file (a
replica's log, say) gets JSON lines. ``REUSE_RUNTIME_LOG_FORMAT=json`` (or
``console``), or ``reuse-runtime --log-format``, chooses explicitly.

Each line carries the replica id (bound once at startup) and, inside a task, the
run, the task (Flyte's "action") and its parent task, read from the running
task's context: one grep of a run or task id follows a call tree across hops.
"""

from __future__ import annotations

import io
import logging
import os
import stat
import sys
from typing import TextIO, cast

import structlog

from reuse_runtime.context import current_task

LEVEL_ENV = "REUSE_RUNTIME_LOG_LEVEL"
FORMAT_ENV = "REUSE_RUNTIME_LOG_FORMAT"


def wants_json(stream: TextIO) -> bool:
    """JSON for a regular file or when asked (``$REUSE_RUNTIME_LOG_FORMAT``); else readable."""
    chosen = os.environ.get(FORMAT_ENV, "").strip().lower()
    if chosen in ("json", "console"):
        return chosen == "json"
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False


def _add_task_id(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Inside a task, name it, its run and its parent: read from the running task,
    at no cost per task."""
    task = current_task.get()
    if task is not None:
        event.setdefault("task_id", task.task_id)
        if task.run_id:
            event.setdefault("run_id", task.run_id)
        if task.parent_task_id:
            event.setdefault("parent_task_id", task.parent_task_id)
    return event


def configure(
    stream: TextIO | None = None, *, level: str | None = None, json: bool | None = None
) -> None:
    """Set up structlog for a process of ours (worker, controller, CLI)."""
    stream = stream or sys.stderr
    name = (level or os.environ.get(LEVEL_ENV) or "info").upper()
    numeric = logging.getLevelName(name)
    if not isinstance(numeric, int):
        numeric = logging.INFO
    if json is None:
        json = wants_json(stream)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_task_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(cast(TextIO, _Unbreakable(stream))),
        cache_logger_on_first_use=True,
    )


class _Unbreakable:
    """A log stream whose reader may vanish: logs are then dropped, never raised.

    A replica's stderr is a pipe to its controller. If the controller dies, the
    next log line would raise ``BrokenPipeError`` in whatever code logged it,
    say the code that notices the controller is gone and shuts the replica down.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream: TextIO | None = stream

    def write(self, text: str) -> int:
        if self._stream is not None:
            try:
                return self._stream.write(text)
            except (OSError, ValueError):  # a broken pipe, or a closed file
                self._stream = None
        return len(text)

    def flush(self) -> None:
        if self._stream is not None:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._stream = None
