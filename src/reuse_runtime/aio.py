"""`TaskSet`: asyncio tasks that are tracked, and whose outcome is always retrieved.

No fire-and-forget: a task that fails unobserved is a lost task, so every task
started here is kept by name until it ends, and an exception it ends with is
logged once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import structlog

log = structlog.get_logger("reuse_runtime")

T = TypeVar("T")


class TaskSet:
    """A set of named background tasks with idempotent :meth:`cancel_all`."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self._owner}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("background task failed", task=task.get_name(), error=repr(exc), exc_info=exc)

    async def cancel_all(self, msg: str = "shutting down") -> None:
        """Cancel every task and wait for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel(msg=msg)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
