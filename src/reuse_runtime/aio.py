"""Asyncio helpers whose cancellation is correct by construction, on Python 3.10 and later.

* :class:`TaskSet`: asyncio tasks that are tracked, and whose outcome is always
  retrieved. No fire-and-forget: a task that fails unobserved is a lost task, so
  every task started here is kept by name until it ends, and an exception it ends
  with is logged once.
* :func:`wait_within`: ``asyncio.wait_for`` without its trap. On Python 3.10 and
  3.11, ``wait_for`` returns normally when the caller is cancelled in the same
  loop iteration as the awaited thing completes: the cancellation is lost, and a
  loop that should stop runs on (a replica outlived its controller that way).
  Here the caller's cancellation always propagates.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import structlog

log = structlog.get_logger("reuse_runtime")

T = TypeVar("T")

#: How long :meth:`TaskSet.cancel_all` waits for tasks that ignore their cancellation.
CANCEL_PATIENCE = 5.0


async def wait_within(awaitable: Awaitable[T], timeout: float | None) -> T:
    """Await ``awaitable`` for at most ``timeout`` seconds (``None``: no limit).

    On timeout it is cancelled and :class:`TimeoutError` is raised at once; when the
    caller is cancelled, it is cancelled too and the caller's ``CancelledError``
    propagates. Neither waits for a task that ignores its cancellation.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        _abandon(task)
        raise
    if not done:
        _abandon(task)
        raise asyncio.TimeoutError(f"not done within {timeout:g} s")
    return task.result()


async def in_executor(
    executor: concurrent.futures.Executor, fn: Callable[..., T], /, *args: Any, **kwargs: Any
) -> T:
    """Run the blocking ``fn(*args, **kwargs)`` on ``executor`` (a backend's own threads)."""
    call = functools.partial(fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(executor, call)


async def in_thread(fn: Callable[..., T], /, *args: Any) -> T:
    """Run the blocking ``fn(*args)`` on a thread of its own, for rare, large work.

    Unlike ``asyncio.to_thread`` it works while the interpreter shuts down, when
    executors take no new work: an embedded controller still serves a script's
    last runs after the script's main thread has ended.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():  # not cancelled meanwhile
            outcome()

    def run() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:  # handed to the awaiting coroutine
            error = exc
            _call_soon(loop, settle, lambda: future.set_exception(error))
        else:
            _call_soon(loop, settle, lambda: future.set_result(result))

    threading.Thread(
        target=run, name=f"reuse-{getattr(fn, '__name__', 'call')}", daemon=True
    ).start()
    return await future


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
        loop.call_soon_threadsafe(fn, *args)


async def stop_within(
    exited: Awaitable[Any], within: float, kill: Callable[[], Awaitable[None]]
) -> None:
    """Wait up to ``within`` seconds for something asked to stop (a replica sent SIGTERM,
    a container stopped, a pod deleted with a grace) to end; ``kill()`` it past that."""
    try:
        await wait_within(exited, within)
    except asyncio.TimeoutError:
        await kill()


def _abandon(task: asyncio.Future[Any]) -> None:
    task.cancel()
    task.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


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

    async def wait(self, within: float) -> int:
        """Wait up to ``within`` seconds for every task to end by itself; how many are
        still running then (:meth:`cancel_all` ends them)."""
        pending = set(self._tasks)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=within)
        return len(pending)

    async def cancel_all(
        self, msg: str = "shutting down", patience: float = CANCEL_PATIENCE
    ) -> None:
        """Cancel every task and wait for them to end.

        A task that swallows its cancellation is cancelled again every second; one
        still running after ``patience`` seconds is logged and left behind, so a
        shutdown never waits for ever.
        """
        pending = set(self._tasks)
        if not pending:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while pending:
            for task in pending:
                task.cancel(msg=msg)
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.error(
                    "tasks ignored their cancellation; leaving them behind",
                    owner=self._owner,
                    tasks=sorted(t.get_name() for t in pending)[:10],
                )
                return
            _, pending = await asyncio.wait(pending, timeout=min(1.0, remaining))
