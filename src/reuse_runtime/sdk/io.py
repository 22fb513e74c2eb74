"""`flyte.io.File` and `flyte.io.Dir` on local paths, backed by a file store.

A task's arguments and results travel pickled; large data should not. A
``File`` or ``Dir`` is a small reference to data in the *store*, a directory
every replica can read at the same absolute path
(``$REUSE_RUNTIME_STORE``, else ``<state dir>/store``; the container backend
mounts it there)::

    @env.task
    async def write() -> File:
        Path("/tmp/out.csv").write_text("a,b\\n1,2\\n")
        return await File.from_local("/tmp/out.csv")       # copied into the store

    @env.task
    async def read(f: File) -> str:
        async with f.open("rb") as fh:
            return (await fh.read()).decode()

``from_local`` copies into the store under the content's digest, so the same
data is stored once and a cached task sees the same ``File`` for the same data.
``new_remote`` gives a fresh store path to write to. ``download`` copies to a
local path (a new temporary one by default). Every async method has a ``_sync``
twin for ``def`` tasks. A path that is not in the store (``from_existing_remote``)
is used where it is: on one machine that works; ``s3://`` and other remote
schemes are not supported locally and fail with a clear error.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from reuse_runtime.paths import private_dir, store_dir

T = TypeVar("T")
_CHUNK = 1024 * 1024


def _local_path(path: str) -> Path:
    if "://" in path and not path.startswith("file://"):
        scheme = path.split("://", 1)[0]
        raise ValueError(
            f"{path!r} is a {scheme}:// path; reuse-runtime reads local paths and its file "
            f"store only (copy the data locally, then File.from_local)"
        )
    return Path(path.removeprefix("file://"))


def _digest_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _digest_tree(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(_digest_file(path).encode())
    return h.hexdigest()


def _store_slot(prefix: str, name: str) -> Path:
    slot = store_dir() / prefix
    private_dir(slot.parent)
    slot.mkdir(mode=0o700, parents=True, exist_ok=True)
    return slot / name


class _AsyncFile:
    """An open file whose reads and writes run in a thread, for async tasks."""

    def __init__(self, handle: IO[Any]) -> None:
        self._handle = handle

    async def read(self, size: int = -1) -> Any:
        return await asyncio.to_thread(self._handle.read, size)

    async def readline(self) -> Any:
        return await asyncio.to_thread(self._handle.readline)

    async def write(self, data: Any) -> int:
        return int(await asyncio.to_thread(self._handle.write, data))

    async def seek(self, offset: int, whence: int = 0) -> int:
        return int(await asyncio.to_thread(self._handle.seek, offset, whence))

    def tell(self) -> int:
        return self._handle.tell()

    async def flush(self) -> None:
        await asyncio.to_thread(self._handle.flush)

    async def close(self) -> None:
        await asyncio.to_thread(self._handle.close)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[Any]:
        while line := await self.readline():
            yield line


def _place(target: Path, copy: Callable[[Path], object]) -> None:
    """Write ``target`` whole or not at all: copy next to it, then rename over it."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    copy(tmp)
    if target.is_dir():
        shutil.rmtree(target)
    os.replace(tmp, target)


@dataclass(frozen=True)
class _Stored:
    """A file or directory by path; what :class:`File` and :class:`Dir` share."""

    path: str
    name: str | None = None
    format: str = ""
    hash: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise ValueError(f"{type(self).__name__} needs a path, got {self.path!r}")
        if self.name is None:
            object.__setattr__(self, "name", os.path.basename(self.path.rstrip("/")))

    @property
    def local(self) -> Path:
        return _local_path(self.path)

    def _download_target(self, local_path: str | Path | None) -> Path:
        if local_path is None:
            return Path(tempfile.mkdtemp(prefix="reuse-runtime-")) / (self.name or "data")
        return Path(local_path)

    def exists_sync(self) -> bool:
        raise NotImplementedError

    async def exists(self) -> bool:
        return await asyncio.to_thread(self.exists_sync)

    def download_sync(self, local_path: str | Path | None = None) -> str:
        raise NotImplementedError

    async def download(self, local_path: str | Path | None = None) -> str:
        """Copy it to ``local_path`` (default: a new temporary one); returns the path."""
        return await asyncio.to_thread(self.download_sync, local_path)


@dataclass(frozen=True)
class File(_Stored, Generic[T]):
    """A file, by path: in the store, or anywhere on this machine.

    Args:
        path: the file's path.
        name: its name (default: the path's last part).
        format: a free-form format label (``"csv"``).
        hash: a content digest, when known (set by :meth:`from_local`).
    """

    # ------------------------------------------------------------ making one

    @classmethod
    def from_local_sync(
        cls,
        local_path: str | Path,
        remote_destination: str | None = None,
        hash_method: Any = None,
    ) -> File[T]:
        """Copy a local file into the store (or to ``remote_destination``)."""
        source = Path(local_path)
        if not source.is_file():
            raise FileNotFoundError(f"File.from_local: no such file: {source}")
        digest = hash_method if isinstance(hash_method, str) else _digest_file(source)
        if remote_destination is not None:
            target = _local_path(remote_destination)
            target.parent.mkdir(parents=True, exist_ok=True)
        else:
            target = _store_slot(f"files/{digest}", source.name)
            if target.exists():
                return cls(path=str(target), name=source.name, hash=digest)
        _place(target, lambda tmp: shutil.copyfile(source, tmp))
        return cls(path=str(target), name=source.name, hash=digest)

    @classmethod
    async def from_local(
        cls,
        local_path: str | Path,
        remote_destination: str | None = None,
        hash_method: Any = None,
    ) -> File[T]:
        """Copy a local file into the store (or to ``remote_destination``)."""
        return await asyncio.to_thread(
            cls.from_local_sync, local_path, remote_destination, hash_method
        )

    @classmethod
    def new_remote(cls, file_name: str | None = None, hash_method: Any = None) -> File[T]:
        """A new, empty place in the store to write a file to (with :meth:`open`)."""
        name = file_name or uuid.uuid4().hex
        return cls(path=str(_store_slot(f"new/{uuid.uuid4().hex}", name)))

    @classmethod
    def named_remote(cls, name: str) -> File[T]:
        """A store path named ``name``: the same name gives the same path."""
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"named_remote takes a plain file name, got {name!r}")
        return cls(path=str(_store_slot("named", name)))

    @classmethod
    def from_existing_remote(cls, remote_path: str, file_cache_key: str | None = None) -> File[T]:
        """A file that already exists, by path."""
        return cls(path=str(_local_path(remote_path)), hash=file_cache_key)

    # ------------------------------------------------------------ using one

    @contextmanager
    def open_sync(self, mode: str = "rb", **_: Any) -> Iterator[IO[Any]]:
        """Open the file (``"rb"``, ``"wb"``, ``"r"``, ...), for ``def`` tasks."""
        path = self.local
        if any(m in mode for m in "wax"):
            path.parent.mkdir(parents=True, exist_ok=True)
        with path.open(mode) as handle:
            yield handle

    @asynccontextmanager
    async def open(self, mode: str = "rb", **_: Any) -> AsyncIterator[_AsyncFile]:
        """Open the file for async reads and writes: ``async with f.open("rb") as fh``."""
        path = self.local
        if any(m in mode for m in "wax"):
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        handle = await asyncio.to_thread(path.open, mode)
        try:
            yield _AsyncFile(handle)
        finally:
            await asyncio.to_thread(handle.close)

    def download_sync(self, local_path: str | Path | None = None) -> str:
        """Copy the file to ``local_path`` (default: a new temporary one); returns the path."""
        source = self.local
        if not source.is_file():
            raise FileNotFoundError(f"File.download: no such file: {source}")
        target = self._download_target(local_path)
        if target.is_dir():
            target = target / (self.name or source.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return str(target)

    def exists_sync(self) -> bool:
        return self.local.is_file()


@dataclass(frozen=True)
class Dir(_Stored, Generic[T]):
    """A directory, by path: in the store, or anywhere on this machine."""

    @classmethod
    def from_local_sync(
        cls,
        local_path: str | Path,
        remote_destination: str | None = None,
        dir_cache_key: str | None = None,
        batch_size: int | None = None,
    ) -> Dir[T]:
        """Copy a local directory into the store (or to ``remote_destination``)."""
        source = Path(local_path)
        if not source.is_dir():
            raise NotADirectoryError(f"Dir.from_local: no such directory: {source}")
        digest = dir_cache_key or _digest_tree(source)
        name = source.resolve().name
        if remote_destination is not None:
            target = _local_path(remote_destination)
        else:
            target = _store_slot(f"dirs/{digest}", name)
            if target.exists():
                return cls(path=str(target), name=name, hash=digest)
        _place(target, lambda tmp: shutil.copytree(source, tmp))
        return cls(path=str(target), name=name, hash=digest)

    @classmethod
    async def from_local(
        cls,
        local_path: str | Path,
        remote_destination: str | None = None,
        dir_cache_key: str | None = None,
        batch_size: int | None = None,
    ) -> Dir[T]:
        """Copy a local directory into the store (or to ``remote_destination``)."""
        return await asyncio.to_thread(
            cls.from_local_sync, local_path, remote_destination, dir_cache_key
        )

    @classmethod
    def new_remote(cls, dir_name: str | None = None, hash: str | None = None) -> Dir[T]:
        """A new, empty directory in the store."""
        target = _store_slot(f"new/{uuid.uuid4().hex}", dir_name or "dir")
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(path=str(target), hash=hash)

    @classmethod
    def from_existing_remote(cls, remote_path: str, dir_cache_key: str | None = None) -> Dir[T]:
        """A directory that already exists, by path."""
        return cls(path=str(_local_path(remote_path)), hash=dir_cache_key)

    def walk_sync(self, recursive: bool = True, max_depth: int | None = None) -> Iterator[File[T]]:
        """The files in the directory (in name order), as :class:`File`."""
        root = self.local
        for dirpath, dirnames, filenames in os.walk(root):
            depth = len(Path(dirpath).relative_to(root).parts)
            dirnames.sort()
            if not recursive or (max_depth is not None and depth + 1 >= max_depth):
                dirnames.clear()
            for name in sorted(filenames):
                yield File(path=str(Path(dirpath) / name))

    async def walk(
        self, recursive: bool = True, max_depth: int | None = None
    ) -> AsyncIterator[File[T]]:
        """The files in the directory (in name order), as :class:`File`."""
        files = await asyncio.to_thread(lambda: list(self.walk_sync(recursive, max_depth)))
        for file in files:
            yield file

    def list_files_sync(self) -> list[File[T]]:
        """The files at the top of the directory."""
        return list(self.walk_sync(recursive=False))

    async def list_files(self) -> list[File[T]]:
        return await asyncio.to_thread(self.list_files_sync)

    def get_file(self, file_name: str) -> File[T] | None:
        path = self.local / file_name
        return File(path=str(path)) if path.is_file() else None

    def download_sync(self, local_path: str | Path | None = None) -> str:
        """Copy the directory to ``local_path`` (default: a new temporary one); returns it."""
        source = self.local
        if not source.is_dir():
            raise NotADirectoryError(f"Dir.download: no such directory: {source}")
        target = self._download_target(local_path)
        shutil.copytree(source, target, dirs_exist_ok=True)
        return str(target)

    def exists_sync(self) -> bool:
        return self.local.is_dir()


__all__ = ["Dir", "File"]
