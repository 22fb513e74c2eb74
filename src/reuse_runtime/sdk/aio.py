"""Flyte's ``.aio`` forms: ``flyte.run.aio(...)``, ``await r.wait.aio()``, and the like.

Flyte makes its blocking calls awaitable through ``.aio``. Here the blocking call
is the implementation, and ``.aio`` runs it in a thread, so an event loop (an
async driver, a notebook) keeps running while it waits.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class Blocking(Generic[P, R]):
    """A blocking function that also has an awaitable form, ``.aio``."""

    def __init__(self, fn: Callable[P, R]) -> None:
        functools.update_wrapper(self, fn)
        self._fn = fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._fn(*args, **kwargs)

    async def aio(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """The same call, awaited: it runs in a thread while the event loop goes on."""
        return await asyncio.to_thread(self._fn, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<function {self._fn.__qualname__}>"


class BlockingMethod(Generic[R]):
    """A descriptor: ``obj.method(...)`` blocks, ``await obj.method.aio(...)`` does not."""

    def __init__(self, fn: Callable[..., R]) -> None:
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self._fn = fn

    def __get__(self, obj: object | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return Blocking(functools.partial(self._fn, obj))


def blocking(fn: Callable[P, R]) -> Blocking[P, R]:
    """Decorate a blocking function so it also has ``.aio``."""
    return Blocking(fn)


class BlockingClassMethod(Generic[R]):
    """A classmethod that blocks, with ``.aio``: ``Run.get(name)``, ``await Run.get.aio(name)``."""

    def __init__(self, fn: Callable[..., R]) -> None:
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self._fn = fn

    def __get__(self, obj: object | None, owner: type | None = None) -> Any:
        return Blocking(functools.partial(self._fn, owner if owner is not None else type(obj)))


class Iterating(Generic[P, R]):
    """A function returning an iterator that blocks between items; ``.aio`` gives the same
    items as an async iterator, each fetched in a thread (Flyte's ``listall``, ``get_logs``)."""

    def __init__(self, fn: Callable[P, Iterator[R]]) -> None:
        functools.update_wrapper(self, fn)
        self._fn = fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Iterator[R]:
        return self._fn(*args, **kwargs)

    async def aio(self, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[R]:
        """The same items, each fetched in a thread while the event loop goes on."""
        items = await asyncio.to_thread(self._fn, *args, **kwargs)
        done = object()
        while True:
            item = await asyncio.to_thread(next, items, done)
            if item is done:
                return
            yield item  # type: ignore[misc]


class IteratingMethod(Generic[R]):
    """:class:`Iterating` as a method (``classmethod=True``: bound to the class)."""

    def __init__(self, fn: Callable[..., Iterator[R]], *, classmethod: bool = False) -> None:
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self._fn = fn
        self._classmethod = classmethod

    def __get__(self, obj: object | None, owner: type | None = None) -> Any:
        if self._classmethod:
            return Iterating(functools.partial(self._fn, owner if owner is not None else type(obj)))
        if obj is None:
            return self
        return Iterating(functools.partial(self._fn, obj))
