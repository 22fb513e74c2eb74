"""`flyte.logger`, and the run and action names on every log record.

``flyte.logger`` is the ``logging`` logger ``flyte.user`` (INFO by default), as
in Flyte. Inside a task its lines reach the caller like ``print()`` does,
prefixed with the task's name. Every ``logging`` record made inside a task
carries ``run_name`` and ``action_name`` (the task call's id), so a format such
as ``"%(run_name)s %(action_name)s %(message)s"`` works; outside a task they are
``None``. ``with_runcontext(log_level=...)`` sets the level for one run's tasks.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from reuse_runtime.context import current_task

_original_factory = logging.getLogRecordFactory()


def _record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _original_factory(*args, **kwargs)
    task = current_task.get()
    record.run_name = task.run_id if task is not None else None
    record.action_name = task.task_id if task is not None else None
    return record


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Writes to whatever ``sys.stderr`` is now, so a task's lines reach its caller."""

    @property  # type: ignore[override,unused-ignore]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _RunLevel(logging.Filter):
    """INFO and above; inside a run with ``with_runcontext(log_level=...)``, that level."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = current_task.get()
        options = task.run_options if task is not None else None
        level = options.log_level if options is not None and options.log_level else logging.INFO
        return record.levelno >= level


def _user_logger() -> logging.Logger:
    logger = logging.getLogger("flyte.user")
    if not any(isinstance(h, _CurrentStderr) for h in logger.handlers):
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        handler.addFilter(_RunLevel())
        logger.addHandler(handler)
        logger.propagate = False
        # The handler's filter decides, per run; the logger lets everything through.
        logger.setLevel(logging.DEBUG)
    return logger


def install() -> logging.Logger:
    """Stamp run and action names on log records; return ``flyte.logger``."""
    if logging.getLogRecordFactory() is not _record_factory:
        logging.setLogRecordFactory(_record_factory)
    return _user_logger()


logger = install()
