"""Task functions that misbehave on purpose, imported by reference in the worker process."""

from __future__ import annotations

import asyncio
import sys
import threading


async def double(x: int) -> int:
    """A well-behaved task: proves the worker still serves after a hostile one."""
    return 2 * x


async def sleep_then_return(seconds: float, value: str) -> str:
    await asyncio.sleep(seconds)
    return value


async def announce_then_sleep(seconds: float, value: str) -> str:
    print("started", flush=True)
    await asyncio.sleep(seconds)
    return value


async def returns_lock() -> object:
    return threading.Lock()


class LockedError(Exception):
    """An exception that cannot be pickled: it holds a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


async def raises_unpicklable(message: str) -> None:
    raise LockedError(message)


async def raises_with_a_lock_in_its_args(message: str) -> None:
    raise ValueError(message, threading.Lock())


async def returns_bytes(size: int) -> bytes:
    return b"x" * size


def _recurse(depth: int) -> int:
    return _recurse(depth + 1) + 1


async def recurses_forever() -> int:
    return _recurse(0)


def recurses_forever_sync() -> int:
    return _recurse(0)


async def returns_nested_list(depth: int) -> object:
    nested: list[object] = []
    for _ in range(depth):
        nested = [nested]
    return nested


async def calls_sys_exit(code: int) -> None:
    sys.exit(code)


def calls_sys_exit_sync(code: int) -> None:
    sys.exit(code)


async def raises_system_exit() -> None:
    raise SystemExit("leaving")


async def raises_keyboard_interrupt() -> None:
    raise KeyboardInterrupt


def raises_keyboard_interrupt_sync() -> None:
    raise KeyboardInterrupt


def outer() -> object:
    def inner() -> int:
        return 1

    return inner
