"""``flyte.durable``: ``time``, ``now`` and ``sleep`` as traced calls, in Flyte's spelling.

Each is callable in a sync task and awaitable in an async one::

    @env.task
    async def main() -> None:
        started = await flyte.durable.time.aio()   # a float, like time.time()
        await flyte.durable.sleep.aio(3600)        # an hour after the first start
        print(flyte.durable.now(), started)        # a datetime, like datetime.now()

As in Flyte, they are built on :func:`flyte.trace`: each call is a traced call
(``trace sleep_start: ... ok`` in the run's log), and ``sleep`` waits only for
what is left of ``seconds`` since its traced start. Flyte replays a traced call's
recorded result when the task runs again, which makes them durable there: a
retried task gets the same time back and sleeps only the remainder.

Here a traced call is not replayed yet (see :mod:`reuse_runtime.sdk.trace`):
durable replay keeps the results of a parent's *child tasks* across its retries,
not those of its traced calls. So a retried attempt reads the clock again, and
``sleep`` waits the whole ``seconds`` again. Within one attempt they behave as
Flyte's do.
"""

from __future__ import annotations

import asyncio
import datetime
import time as _time
from collections.abc import Awaitable, Callable
from typing import Generic, ParamSpec, TypeVar

from reuse_runtime.sdk.trace import trace

P = ParamSpec("P")
R = TypeVar("R")


class Durable(Generic[P, R]):
    """A call with a blocking form, ``f(...)``, and an awaitable one, ``await f.aio(...)``.

    Unlike :class:`reuse_runtime.sdk.aio.Blocking`, ``.aio`` does not hold a thread
    while it waits: an hour's ``sleep.aio`` is an ``asyncio.sleep``.
    """

    def __init__(
        self, name: str, blocking: Callable[P, R], awaitable: Callable[P, Awaitable[R]]
    ) -> None:
        self.__doc__ = blocking.__doc__
        self.__name__ = self.__qualname__ = name
        self._blocking = blocking
        self._awaitable = awaitable

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._blocking(*args, **kwargs)

    async def aio(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """The same call, awaited."""
        return await self._awaitable(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<function flyte.durable.{self.__name__}>"


def _named(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Name a function before it is traced: the run's log says ``trace <name>: ...``."""

    def rename(fn: Callable[P, R]) -> Callable[P, R]:
        fn.__name__ = fn.__qualname__ = name
        return fn

    return rename


@trace
@_named("sleep_start")
def _sleep_start() -> float:
    return _time.time()


@trace
@_named("sleep_start")
async def _sleep_start_aio() -> float:
    return _time.time()


def _remainder(started: float, seconds: float) -> float:
    return started + seconds - _time.time()


def _sleep(seconds: float) -> None:
    """Sleep until ``seconds`` after the sleep's first (traced) start; at once if that passed."""
    remainder = _remainder(_sleep_start(), seconds)
    if remainder > 0:
        _time.sleep(remainder)


async def _sleep_aio(seconds: float) -> None:
    remainder = _remainder(await _sleep_start_aio(), seconds)
    if remainder > 0:
        await asyncio.sleep(remainder)


@trace
@_named("durable_time")
def _durable_time() -> float:
    """The time, as ``time.time()`` gives it (a traced call)."""
    return _time.time()


@trace
@_named("durable_time")
async def _durable_time_aio() -> float:
    return _time.time()


@trace
@_named("durable_now")
def _durable_now() -> datetime.datetime:
    """The local date and time, as ``datetime.now()`` gives it (a traced call)."""
    return datetime.datetime.now()


@trace
@_named("durable_now")
async def _durable_now_aio() -> datetime.datetime:
    return datetime.datetime.now()


sleep = Durable("sleep", _sleep, _sleep_aio)
time = Durable("time", _durable_time, _durable_time_aio)
now = Durable("now", _durable_now, _durable_now_aio)

__all__ = ["Durable", "now", "sleep", "time"]
