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

import contextlib
import functools
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar, cast

from reuse_runtime.context import TaskContext, current_task
from reuse_runtime.model import LogLine
from reuse_runtime.sdk.task_context import in_trace

T = TypeVar("T")


@contextlib.contextmanager
def _recording(ctx: TaskContext, name: str) -> Iterator[None]:
    """Mark the call as inside a trace, and record how it ended in the run's log."""
    token, started, outcome = in_trace.set(name), time.perf_counter(), "ok"
    try:
        yield
    except BaseException as exc:
        outcome = f"raised {type(exc).__name__}"
        raise
    finally:
        in_trace.reset(token)
        took = time.perf_counter() - started
        line = f"trace {name}: {took:.3f} s {outcome}"
        ctx.emit(
            LogLine(
                ctx.task_id,
                ctx.label,
                ctx.run_id,
                "trace",
                line,
                ctx.parent_task_id,
                ctx.replica_id,
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
            with _recording(ctx, name):
                async for item in func(*args, **kwargs):
                    yield item

        return cast(Callable[..., T], async_gen_wrapper)

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = current_task.get()
            if ctx is None:
                return await func(*args, **kwargs)
            with _recording(ctx, name):
                return await func(*args, **kwargs)

        return cast(Callable[..., T], async_wrapper)

    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            ctx = current_task.get()
            if ctx is None:
                yield from func(*args, **kwargs)
                return
            with _recording(ctx, name):
                yield from func(*args, **kwargs)

        return cast(Callable[..., T], gen_wrapper)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        ctx = current_task.get()
        if ctx is None:
            return func(*args, **kwargs)
        with _recording(ctx, name):
            return func(*args, **kwargs)

    return wrapper
