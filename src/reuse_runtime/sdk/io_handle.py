"""The async file handle ``File.open`` gives, and the hash methods ``flyte.io`` accepts.

:class:`AsyncFileHandle` has the methods of Flyte's async handles (aiofiles
locally, obstore remotely): ``read``, ``readline``, ``readlines``, ``write``,
``writelines``, ``seek``, ``tell``, ``flush``, ``truncate``, ``close``,
``async for line in fh`` and ``async with``. Each call runs the blocking
operation in a thread, so a task's event loop keeps running.

A *hash method* (:class:`HashMethod`) sees a file's bytes as they are copied or
written, and its ``result()`` becomes the ``File``'s ``hash``: the value a
cached task keys that input by.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import IO, Any, Protocol, runtime_checkable


@runtime_checkable
class HashMethod(Protocol):
    """Something that hashes data fed to it in pieces: ``update`` each piece, then ``result``."""

    def update(self, data: Any, /) -> None: ...

    def result(self) -> str: ...


class HashFunction:
    """A hash method from a function of the data (Flyte's ``flyte.io.HashFunction``).

    ``update`` replaces the value with ``fn(data)``; a file fed in several pieces
    keeps the last piece's value, as in Flyte. ``from_local`` feeds 8 MiB pieces.
    """

    def __init__(self, fn: Callable[[Any], str]) -> None:
        self._fn = fn
        self._value = ""

    def update(self, data: Any, /) -> None:
        self._value = self._fn(data)

    def result(self) -> str:
        return self._value

    @classmethod
    def from_fn(cls, fn: Callable[[Any], str]) -> HashFunction:
        return cls(fn)


class PrecomputedValue:
    """A hash method whose result is known in advance."""

    def __init__(self, value: str) -> None:
        self._value = value

    def update(self, data: Any, /) -> None:
        pass

    def result(self) -> str:
        return self._value


class HashlibAccumulator:
    """A hashlib object as a hash method: ``HashlibAccumulator.from_hash_name("sha256")``."""

    def __init__(self, h: Any) -> None:
        self._h = h

    def update(self, data: Any, /) -> None:
        self._h.update(data)

    def result(self) -> str:
        return str(self._h.hexdigest())

    @classmethod
    def from_hash_name(cls, name: str) -> HashlibAccumulator:
        return cls(hashlib.new(name))


def _as_bytes(data: Any) -> Any:
    return data.encode() if isinstance(data, str) else data


class AsyncFileHandle:
    """An open file whose operations run in a thread, for async tasks.

    ``on_close`` runs once, after the file is closed (``File.open`` uses it to
    set the hash of what was written); ``hasher`` sees every write.
    """

    def __init__(
        self,
        handle: IO[Any],
        hasher: HashMethod | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._handle = handle
        self._hasher = hasher
        self._on_close = on_close

    # ------------------------------------------------------------ reading

    async def read(self, size: int = -1) -> Any:
        return await asyncio.to_thread(self._handle.read, size)

    async def readall(self) -> Any:
        return await asyncio.to_thread(self._handle.read)

    async def readline(self, size: int = -1) -> Any:
        return await asyncio.to_thread(self._handle.readline, size)

    async def readlines(self, hint: int = -1) -> list[Any]:
        return await asyncio.to_thread(self._handle.readlines, hint)

    def __aiter__(self) -> AsyncFileHandle:
        return self

    async def __anext__(self) -> Any:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    # ------------------------------------------------------------ writing

    async def write(self, data: Any) -> int:
        if self._hasher is not None:
            self._hasher.update(_as_bytes(data))
        return int(await asyncio.to_thread(self._handle.write, data) or 0)

    async def writelines(self, lines: Iterable[Any]) -> None:
        for line in lines:
            await self.write(line)

    async def flush(self) -> None:
        await asyncio.to_thread(self._handle.flush)

    async def truncate(self, size: int | None = None) -> int:
        return int(await asyncio.to_thread(self._handle.truncate, size))

    # ------------------------------------------------------------ position and state

    async def seek(self, offset: int, whence: int = 0) -> int:
        return int(await asyncio.to_thread(self._handle.seek, offset, whence))

    async def tell(self) -> int:
        return int(self._handle.tell())

    async def readable(self) -> bool:
        return bool(self._handle.readable())

    async def writable(self) -> bool:
        return bool(self._handle.writable())

    async def seekable(self) -> bool:
        return bool(self._handle.seekable())

    @property
    def name(self) -> Any:
        return getattr(self._handle, "name", None)

    @property
    def mode(self) -> Any:
        return getattr(self._handle, "mode", None)

    @property
    def closed(self) -> bool:
        return bool(self._handle.closed)

    async def close(self) -> None:
        if self._handle.closed:
            return
        await asyncio.to_thread(self._handle.close)
        if self._on_close is not None:
            self._on_close()

    async def __aenter__(self) -> AsyncFileHandle:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


__all__ = [
    "AsyncFileHandle",
    "HashFunction",
    "HashMethod",
    "HashlibAccumulator",
    "PrecomputedValue",
]
