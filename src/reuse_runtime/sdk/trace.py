"""`flyte.trace`: record the helper functions a task calls.

::

    @flyte.trace
    async def fetch(url: str) -> bytes: ...

    @env.task
    async def main() -> int:
        return len(await fetch("https://example.com"))

Inside a task, each call of a traced function is recorded in the run's log
(``[main] trace fetch: 0.120 s ok``, or the exception's type on failure);
outside a task the function runs as it is. A traced function may not call
tasks (``flyte.errors.TraceDoesNotAllowNestedTasksError``), as in Flyte.

Flyte also *replays* a traced call's recorded result when its task is retried.
That needs the controller to keep results across a task's attempts, which it
does not do yet: here a retried task calls its traced functions again.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar, cast

from reuse_runtime.context import TaskContext, current_task
from reuse_runtime.model import LogLine
from reuse_runtime.sdk.task_context import in_trace

T = TypeVar("T")


def _record(ctx: TaskContext, name: str, started: float, error: BaseException | None) -> None:
    took = time.perf_counter() - started
    outcome = "ok" if error is None else f"raised {type(error).__name__}"
    ctx.emit(
        LogLine(
            ctx.task_id, ctx.label, ctx.run_id, "trace", f"trace {name}: {took:.3f} s {outcome}"
        )
    )


def trace(func: Callable[..., T]) -> Callable[..., T]:
    """Record each call of ``func`` made inside a task (see the module docstring).

    Works on functions, coroutine functions, generators and async generators.
    """
    name = getattr(func, "__qualname__", repr(func))

    if inspect.isasyncgenfunction(func):

        @functools.wraps(func)
        async def async_gen_wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            ctx = current_task.get()
            if ctx is None:
                async for item in func(*args, **kwargs):
                    yield item
                return
            token, started, error = in_trace.set(name), time.perf_counter(), None
            try:
                async for item in func(*args, **kwargs):
                    yield item
            except BaseException as exc:
                error = exc
                raise
            finally:
                in_trace.reset(token)
                _record(ctx, name, started, error)

        return cast(Callable[..., T], async_gen_wrapper)

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = current_task.get()
            if ctx is None:
                return await func(*args, **kwargs)
            token, started, error = in_trace.set(name), time.perf_counter(), None
            try:
                return await func(*args, **kwargs)
            except BaseException as exc:
                error = exc
                raise
            finally:
                in_trace.reset(token)
                _record(ctx, name, started, error)

        return cast(Callable[..., T], async_wrapper)

    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            ctx = current_task.get()
            if ctx is None:
                yield from func(*args, **kwargs)
                return
            token, started, error = in_trace.set(name), time.perf_counter(), None
            try:
                yield from func(*args, **kwargs)
            except BaseException as exc:
                error = exc
                raise
            finally:
                in_trace.reset(token)
                _record(ctx, name, started, error)

        return cast(Callable[..., T], gen_wrapper)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        ctx = current_task.get()
        if ctx is None:
            return func(*args, **kwargs)
        token, started, error = in_trace.set(name), time.perf_counter(), None
        try:
            return func(*args, **kwargs)
        except BaseException as exc:
            error = exc
            raise
        finally:
            in_trace.reset(token)
            _record(ctx, name, started, error)

    return wrapper
