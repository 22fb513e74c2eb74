"""`flyte.map`: call a task once per item, concurrently, and get the results in order.

::

    @env.task
    def main(n: int) -> float:                       # a sync task: a sync iterator
        ys = list(flyte.map(fn, range(n)))
        return sum(ys) / len(ys)

    @env.task
    async def main(n: int) -> list[str]:             # an async task: ``.aio``
        return [r async for r in flyte.map.aio(process, range(n), concurrency=3)]

``func`` is a task, or a ``functools.partial`` of one that leaves exactly one
parameter open. Several iterables are zipped. ``concurrency`` bounds the calls
in flight (0: all at once). With ``return_exceptions=True`` (the default, as in
Flyte) a failed call yields its exception instead of raising it. The calls form
a group, ``<task>_<group_name or "map">``, in the output and in ``status``.

Outside any task the calls run here, one after another, as in Flyte's local mode.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Iterable, Iterator
from typing import Any

from reuse_runtime.context import current_task
from reuse_runtime.sdk.task import TaskTemplate
from reuse_runtime.sdk.task_context import _group


def _task_of(func: Any) -> Any:
    if isinstance(func, functools.partial):
        task = func.func
        if not isinstance(task, TaskTemplate):
            raise TypeError(
                f"flyte.map takes a task or a partial of one, got a partial of {task!r}"
            )
        params = list(inspect.signature(task.func).parameters)
        open_ = len(params) - len(func.args) - len(func.keywords or {})
        if open_ != 1:
            raise TypeError(
                f"Partial function must leave exactly one parameter unspecified for mapping. "
                f"Found {open_} unspecified parameters in {task.name}, params: {params}"
            )
        for name in params[: len(func.args) + 1]:
            if name in (func.keywords or {}):
                raise TypeError(
                    f"Parameter '{name}' is provided both as positional argument and keyword "
                    f"argument in partial function {task.name}."
                )
        return task
    if not isinstance(func, TaskTemplate):
        raise TypeError(f"flyte.map takes a task (decorate it with @env.task), got {func!r}")
    return func


def _caller(func: Any, group: str) -> Callable[[tuple[Any, ...]], Coroutine[Any, Any, Any]]:
    """Makes one call's coroutine, inside ``group`` (read when the call is made)."""
    task: Any = func
    fixed: tuple[Any, ...] = ()
    keywords: dict[str, Any] = {}
    if isinstance(func, functools.partial):
        task, fixed, keywords = func.func, func.args, dict(func.keywords or {})

    def call(item: tuple[Any, ...]) -> Coroutine[Any, Any, Any]:
        token = _group.set(group)
        try:
            coroutine: Coroutine[Any, Any, Any] = task.aio(*fixed, *item, **keywords)
            return coroutine
        finally:
            _group.reset(token)

    return call


def _check(concurrency: int) -> None:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 0:
        raise ValueError(f"concurrency must be an int >= 0 (0: no limit), got {concurrency!r}")


async def _ordered(
    call: Callable[[tuple[Any, ...]], Coroutine[Any, Any, Any]],
    items: Iterable[tuple[Any, ...]],
    concurrency: int,
    return_exceptions: bool,
) -> AsyncGenerator[Any, None]:
    """Start the calls (at most ``concurrency`` at once) and yield their outcomes in order."""
    limit = asyncio.Semaphore(concurrency) if concurrency > 0 else None
    started: set[asyncio.Task[Any]] = set()
    # The calls in order of their items; None after the last one.
    order: asyncio.Queue[asyncio.Task[Any] | None] = asyncio.Queue()

    async def one(item: tuple[Any, ...]) -> Any:
        try:
            return await call(item)
        finally:
            if limit is not None:
                limit.release()

    async def produce() -> None:
        try:
            for item in items:
                if limit is not None:
                    await limit.acquire()
                task = asyncio.ensure_future(one(item))
                started.add(task)
                task.add_done_callback(started.discard)
                order.put_nowait(task)
        finally:
            order.put_nowait(None)

    producer = asyncio.ensure_future(produce())
    try:
        while True:
            head = await order.get()
            if head is None:
                producer.result()  # an item that could not be read raises here
                return
            try:
                result = await head
            except Exception as exc:
                if not return_exceptions:
                    raise
                result = exc
            yield result
    finally:
        producer.cancel()
        pending = [producer, *started]
        for task in started:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


class _Mapper:
    """``flyte.map(...)`` for sync code, ``flyte.map.aio(...)`` for async code."""

    @staticmethod
    def _group(task: Any, group_name: str | None) -> str:
        return f"{task.short_name}_{group_name or 'map'}"

    def __call__(
        self,
        func: Any,
        *args: Iterable[Any],
        group_name: str | None = None,
        concurrency: int = 0,
        return_exceptions: bool = True,
    ) -> Iterator[Any]:
        """Call ``func`` once per item of ``args`` (zipped); yield the results in order."""
        task = _task_of(func)
        _check(concurrency)
        return self._sync(func, task, args, group_name, concurrency, return_exceptions)

    def _sync(
        self,
        func: Any,
        task: Any,
        args: tuple[Iterable[Any], ...],
        group_name: str | None,
        concurrency: int,
        return_exceptions: bool,
    ) -> Iterator[Any]:
        if not args:
            return
        ctx = current_task.get()
        if ctx is None:
            yield from _locally(func, args, return_exceptions)
            return
        try:
            on_loop = asyncio.get_running_loop() is ctx.loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            raise TypeError(
                f"flyte.map({task.short_name}, ...) would block the event loop of an async task; "
                f"use `async for r in flyte.map.aio(...)` there"
            )
        # A sync task, in its thread: run the calls on the replica's loop.
        call = _caller(func, self._group(task, group_name))
        results = _ordered(call, zip(*args, strict=False), concurrency, return_exceptions)
        while True:
            try:
                yield asyncio.run_coroutine_threadsafe(_next(results), ctx.loop).result()
            except StopAsyncIteration:
                return
            except BaseException:
                asyncio.run_coroutine_threadsafe(results.aclose(), ctx.loop).result()
                raise

    async def aio(
        self,
        func: Any,
        *args: Iterable[Any],
        group_name: str | None = None,
        concurrency: int = 0,
        return_exceptions: bool = True,
    ) -> AsyncIterator[Any]:
        """The async form: ``async for result in flyte.map.aio(task, items): ...``."""
        task = _task_of(func)
        _check(concurrency)
        if not args:
            return
        if current_task.get() is None:
            for item in zip(*args, strict=False):
                try:
                    result = func(*item)
                    yield await result if inspect.isawaitable(result) else result
                except Exception as exc:
                    if not return_exceptions:
                        raise
                    yield exc
            return
        call = _caller(func, self._group(task, group_name))
        async for result in _ordered(
            call, zip(*args, strict=False), concurrency, return_exceptions
        ):
            yield result


def _locally(func: Any, args: tuple[Iterable[Any], ...], return_exceptions: bool) -> Iterator[Any]:
    """Outside a task: each call here, one after another (Flyte's local mode)."""
    for item in zip(*args, strict=False):
        try:
            result = func(*item)
            if inspect.isawaitable(result):
                result = asyncio.run(_awaited(result))
            yield result
        except Exception as exc:
            if not return_exceptions:
                raise
            yield exc


async def _next(results: AsyncGenerator[Any, None]) -> Any:
    return await results.__anext__()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


map = _Mapper()
