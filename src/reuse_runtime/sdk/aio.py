"""Flyte's ``.aio`` forms: ``flyte.run.aio(...)``, ``await r.wait.aio()``, and the like.

Flyte makes its blocking calls awaitable through ``.aio``. Here the blocking call
is the implementation, and ``.aio`` runs it in a thread, so an event loop (an
async driver, a notebook) keeps running while it waits.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
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
