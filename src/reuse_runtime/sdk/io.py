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
is used where it is: on one machine that works. ``s3://``, ``gs://`` and other
remote paths go through :mod:`reuse_runtime.storage` (fsspec, when installed).

A ``File`` or ``Dir`` with a ``hash`` (``from_local(..., hash_method="v1")``,
``dir_cache_key=``, ``from_existing_remote(..., file_cache_key=)``) is keyed by
that hash when a cached task takes it as an input, as in Flyte: the same hash
hits the cache whatever the path or content.
"""

from __future__ import annotations

import asyncio
import bz2
import fnmatch
import gzip
import hashlib
import lzma
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from reuse_runtime.context import current_task
from reuse_runtime.sdk import storage
from reuse_runtime.sdk.io_handle import AsyncFileHandle, HashFunction, HashMethod

T = TypeVar("T")
_CHUNK = 8 * 1024 * 1024
#: The path of :class:`EmptyDir`: no real local or remote path looks like it.
_EMPTY_DIR_SENTINEL = "::flyte-empty-dir::"
_COMPRESSIONS: dict[str, Callable[..., IO[Any]]] = {
    "gzip": gzip.open,
    "bz2": bz2.open,
    "lzma": lzma.open,
    "xz": lzma.open,
}
_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".lzma": "lzma"}


def _feed(hasher: HashMethod, path: Path) -> str:
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            hasher.update(chunk)
    return hasher.result()


def _digest_file(path: Path) -> str:
    return _feed(_Sha256(), path)


def _digest_tree(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(_digest_file(path).encode())
    return h.hexdigest()


class _Sha256:
    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def update(self, data: Any, /) -> None:
        self._h.update(data)

    def result(self) -> str:
        return self._h.hexdigest()


def _place(target: Path, copy: Callable[[Path], object]) -> None:
    """Write ``target`` whole or not at all: copy next to it, then rename over it."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    copy(tmp)
    if target.is_dir():
        shutil.rmtree(target)
    os.replace(tmp, target)


def _download_target(source_name: str, local_path: str | Path | None) -> Path:
    """Flyte's rule: none gives a new temporary path; a directory (or ``.../``) gets the name."""
    if local_path is None:
        return storage.get_random_local_path(source_name)
    text = str(local_path)
    target = Path(text).absolute()
    if text.endswith(os.sep) or target.is_dir():
        return target / source_name
    return target


def _open_local(
    path: Path, mode: str, block_size: int | None, compression: str | None, kwargs: dict[str, Any]
) -> IO[Any]:
    if any(m in mode for m in "wax"):
        path.parent.mkdir(parents=True, exist_ok=True)
    if block_size is not None:
        kwargs.setdefault("buffering", block_size)
    if compression == "infer":
        compression = _SUFFIXES.get(path.suffix)
    if compression is None:
        return path.open(mode, **kwargs)
    opener = _COMPRESSIONS.get(compression)
    if opener is None:
        raise ValueError(
            f"compression={compression!r} is not one of {sorted(_COMPRESSIONS)} or 'infer'"
        )
    kwargs.pop("buffering", None)
    return opener(path, mode, **kwargs)


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

    def __reduce__(self) -> tuple[Any, ...]:
        # A hash method (a user's function) stays behind: only the reference travels.
        return (type(self), (self.path, self.name, self.format, self.hash))

    @property
    def local(self) -> Path:
        """The path on this machine (``file://`` removed)."""
        if storage.is_remote(self.path):
            raise ValueError(f"{self.path!r} is not a local path")
        return storage.local_path(self.path)

    @property
    def lazy_uploader(self) -> None:
        """Always ``None``: ``from_local`` copies into the shared store at once."""
        return None

    @lazy_uploader.setter
    def lazy_uploader(self, uploader: object) -> None:
        raise AttributeError(
            "lazy_uploader is not used by reuse-runtime: from_local copies into the shared "
            "store at once"
        )

    @classmethod
    def schema_match(cls, incoming: object) -> bool:
        """Whether a JSON schema (a ``dict``) describes this type, as Flyte's check does."""
        if not isinstance(incoming, dict):
            return False
        return (
            incoming.get("type") == "object"
            and incoming.get("title") == cls.__name__
            and set(incoming.get("required") or ()) == {"path"}
        )

    def exists_sync(self) -> bool:
        """Whether the file (or directory) is there."""
        return storage.exists_sync(self.path)

    async def exists(self) -> bool:
        """Whether the file (or directory) is there."""
        return await storage.exists(self.path)


@dataclass(frozen=True)
class File(_Stored, Generic[T]):
    """A file, by path: in the store, anywhere on this machine, or remote (with fsspec).

    Args:
        path: the file's path.
        name: its name (default: the path's last part).
        format: a free-form format label (``"csv"``).
        hash: the value a cached task keys this input by (set by :meth:`from_local`).
        hash_method: computes ``hash`` from what is written through :meth:`open`.
    """

    hash_method: HashMethod | None = field(default=None, compare=False, repr=False)

    # ------------------------------------------------------------ making one

    @classmethod
    def from_local_sync(
        cls,
        local_path: str | Path,
        remote_destination: str | None = None,
        hash_method: HashMethod | str | None = None,
    ) -> File[T]:
        """Copy a local file into the store (or to ``remote_destination``).

        ``hash_method`` is the ``hash`` itself (a string) or a :class:`HashMethod`
        fed the file's bytes; by default the hash is the content's SHA-256.
        """
        source = Path(local_path)
        if not source.is_file():
            raise FileNotFoundError(f"File.from_local: no such file: {source}")
        method = hash_method if isinstance(hash_method, HashMethod) else None
        digest = None if remote_destination is not None else _digest_file(source)
        if isinstance(hash_method, str):
            hash_value: str | None = hash_method
        elif method is not None:
            hash_value = _feed(method, source)
        else:
            hash_value = digest or _digest_file(source)
        if remote_destination is None:
            target = storage.store_slot(f"files/{digest}", source.name)
            if not target.exists():
                _place(target, lambda tmp: shutil.copyfile(source, tmp))
            path = str(target)
        elif storage.is_remote(remote_destination):
            fs = storage.get_underlying_filesystem(path=remote_destination)
            fs.put(str(source), remote_destination)
            path = remote_destination
        else:
            target = storage.local_path(remote_destination)
            target.parent.mkdir(parents=True, exist_ok=True)
            _place(target, lambda tmp: shutil.copyfile(source, tmp))
            path = str(target)
        return cls(path=path, name=source.name, hash=hash_value, hash_method=method)

    @classmethod
    async def from_local(
        cls,
        local_path: str | Path,
        remote_destination: str | None = None,
        hash_method: HashMethod | str | None = None,
    ) -> File[T]:
        """Copy a local file into the store (or to ``remote_destination``)."""
        return await asyncio.to_thread(
            cls.from_local_sync, local_path, remote_destination, hash_method
        )

    @classmethod
    def new_remote(
        cls, file_name: str | None = None, hash_method: HashMethod | str | None = None
    ) -> File[T]:
        """A new, empty place in the store to write a file to (with :meth:`open`).

        ``hash_method``: the ``hash`` itself (a string), or a :class:`HashMethod`
        that computes it from what is written.
        """
        name = file_name or uuid.uuid4().hex
        return cls(
            path=str(storage.store_slot(f"new/{uuid.uuid4().hex}", name)),
            hash=hash_method if isinstance(hash_method, str) else None,
            hash_method=hash_method if isinstance(hash_method, HashMethod) else None,
        )

    @classmethod
    def named_remote(cls, name: str) -> File[T]:
        """A store path named ``name``: the same name gives the same path.

        In a task the path belongs to the task's call (its retries see the same
        file, other calls and runs do not), as in Flyte; outside one it is shared.
        """
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"named_remote takes a plain file name, got {name!r}")
        task = current_task.get()
        prefix = "named" if task is None else f"runs/{task.run_id}/{task.task_id}"
        return cls(path=str(storage.store_slot(prefix, name)))

    @classmethod
    def from_existing_remote(cls, remote_path: str, file_cache_key: str | None = None) -> File[T]:
        """A file that already exists, by path; ``file_cache_key`` becomes its ``hash``."""
        path = (
            remote_path if storage.is_remote(remote_path) else str(storage.local_path(remote_path))
        )
        return cls(path=path, hash=file_cache_key)

    # ------------------------------------------------------------ using one

    def _handle(
        self,
        mode: str,
        block_size: int | None,
        cache_type: str,
        cache_options: dict[str, Any] | None,
        compression: str | None,
        kwargs: dict[str, Any],
    ) -> IO[Any]:
        if not storage.is_remote(self.path):
            # cache_type/cache_options tune remote read-ahead; the OS caches local reads.
            return _open_local(self.local, mode, block_size, compression, kwargs)
        options: dict[str, Any] = {"compression": compression, **kwargs}
        if block_size:
            options["block_size"] = block_size
        if cache_type != "none":
            options |= {"cache_type": cache_type, "cache_options": cache_options or {}}
        fs = storage.get_underlying_filesystem(path=self.path)
        return fs.open(self.path, mode, **options)  # type: ignore[no-any-return]

    def _written(self, mode: str) -> None:
        """After a write through :meth:`open`: the hash method's result becomes ``hash``."""
        if self.hash_method is None or not any(m in mode for m in "wax+"):
            return
        with self._handle("rb", None, "none", None, None, {}) as f:
            while chunk := f.read(_CHUNK):
                self.hash_method.update(chunk)
        object.__setattr__(self, "hash", self.hash_method.result())

    @contextmanager
    def open_sync(
        self,
        mode: str = "rb",
        block_size: int | None = None,
        cache_type: str = "readahead",
        cache_options: dict[str, Any] | None = None,
        compression: str | None = None,
        **kwargs: Any,
    ) -> Iterator[IO[Any]]:
        """Open the file (``"rb"``, ``"wb"``, ``"r"``, ...), for ``def`` tasks.

        ``compression`` (``"gzip"``, ``"bz2"``, ``"xz"``, ``"infer"``) reads and
        writes compressed data; ``block_size`` is the buffer size; other keywords
        go to ``open``. ``cache_type``/``cache_options`` tune remote reads.
        """
        with self._handle(mode, block_size, cache_type, cache_options, compression, kwargs) as f:
            yield f
        self._written(mode)

    @asynccontextmanager
    async def open(
        self,
        mode: str = "rb",
        block_size: int | None = None,
        cache_type: str = "readahead",
        cache_options: dict[str, Any] | None = None,
        compression: str | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AsyncFileHandle]:
        """Open the file for async I/O: ``async with f.open("rb") as fh: await fh.read()``.

        The handle has ``read``, ``readline``, ``readlines``, ``write``,
        ``writelines``, ``seek``, ``tell``, ``flush``, ``close`` and ``async for``;
        the arguments are :meth:`open_sync`'s.
        """
        handle = await asyncio.to_thread(
            self._handle, mode, block_size, cache_type, cache_options, compression, kwargs
        )
        fh = AsyncFileHandle(handle)
        try:
            yield fh
        finally:
            await fh.close()
        if self.hash_method is not None:
            await asyncio.to_thread(self._written, mode)

    def download_sync(self, local_path: str | Path | None = None) -> str:
        """Copy the file to ``local_path`` (default: a new temporary one); returns the path.

        A ``local_path`` that is a directory, or ends in a separator, gets the file's name.
        """
        if storage.is_remote(self.path):
            fs = storage.get_underlying_filesystem(path=self.path)
            target = _download_target(self.name or Path(self.path).name, local_path)
            fs.get(self.path, str(target))
            return str(target)
        target = _download_target(self.name or Path(self.path).name, local_path)
        source = self.local
        if not source.is_file():
            raise FileNotFoundError(f"File.download: no such file: {source}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return str(target)

    async def download(self, local_path: str | Path | None = None) -> str:
        """Copy the file to ``local_path`` (default: a new temporary one); returns the path."""
        return await asyncio.to_thread(self.download_sync, local_path)

    def exists_sync(self) -> bool:
        """Whether the file is there."""
        if storage.is_remote(self.path):
            return storage.exists_sync(self.path)
        return self.local.is_file()


@dataclass(frozen=True)
class Dir(_Stored, Generic[T]):
    """A directory, by path: in the store, anywhere on this machine, or remote (with fsspec).

    Its ``hash`` (``dir_cache_key``) is what a cached task keys it by.
    """

    @property
    def is_empty(self) -> bool:
        """Whether this is the "no directory" sentinel (:meth:`empty`, :class:`EmptyDir`)."""
        return self.path == _EMPTY_DIR_SENTINEL

    @classmethod
    def empty(cls) -> Dir[Any]:
        """The "no directory was produced" sentinel: check it with :attr:`is_empty`."""
        return EmptyDir()

    # ------------------------------------------------------------ making one

    @classmethod
    def from_local_sync(
        cls,
        local_path: str | Path,
        remote_destination: str | None = None,
        dir_cache_key: str | None = None,
        batch_size: int | None = None,
    ) -> Dir[T]:
        """Copy a local directory into the store (or to ``remote_destination``).

        ``dir_cache_key`` becomes its ``hash`` (default: a digest of the tree).
        ``batch_size`` bounds concurrent uploads to a remote destination.
        """
        source = Path(local_path)
        if not source.is_dir():
            raise NotADirectoryError(f"Dir.from_local: no such directory: {source}")
        name = source.resolve().name
        if remote_destination is not None and storage.is_remote(remote_destination):
            fs = storage.get_underlying_filesystem(path=remote_destination)
            extra = {} if batch_size is None else {"batch_size": batch_size}
            fs.put(str(source), remote_destination, recursive=True, **extra)
            return cls(path=remote_destination, name=name, hash=dir_cache_key)
        digest = _digest_tree(source)
        if remote_destination is not None:
            target = storage.local_path(remote_destination)
            _place(target, lambda tmp: shutil.copytree(source, tmp))
        else:
            target = storage.store_slot(f"dirs/{digest}", name)
            if not target.exists():
                _place(target, lambda tmp: shutil.copytree(source, tmp))
        return cls(path=str(target), name=name, hash=dir_cache_key or digest)

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
            cls.from_local_sync, local_path, remote_destination, dir_cache_key, batch_size
        )

    @classmethod
    def new_remote(cls, dir_name: str | None = None, hash: str | None = None) -> Dir[T]:
        """A new, empty directory in the store; ``hash`` is its cache key when given."""
        target = storage.store_slot(f"new/{uuid.uuid4().hex}", dir_name or "dir")
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(path=str(target), hash=hash)

    @classmethod
    def from_existing_remote(cls, remote_path: str, dir_cache_key: str | None = None) -> Dir[T]:
        """A directory that already exists, by path; ``dir_cache_key`` becomes its ``hash``."""
        path = (
            remote_path if storage.is_remote(remote_path) else str(storage.local_path(remote_path))
        )
        return cls(path=path, hash=dir_cache_key)

    # ------------------------------------------------------------ using one

    def walk_sync(
        self, recursive: bool = True, file_pattern: str = "*", max_depth: int | None = None
    ) -> Iterator[File[T]]:
        """The files in the directory (in name order) whose name matches ``file_pattern``."""
        if not recursive:
            max_depth = 1
        if storage.is_remote(self.path):
            yield from self._walk_remote(file_pattern, max_depth)
            return
        root = self.local
        for dirpath, dirnames, filenames in os.walk(root):
            depth = len(Path(dirpath).relative_to(root).parts)
            dirnames.sort()
            if max_depth is not None and depth + 1 >= max_depth:
                dirnames.clear()
            for name in sorted(filenames):
                if fnmatch.fnmatch(name, file_pattern):
                    yield File(path=str(Path(dirpath) / name))

    def _walk_remote(self, file_pattern: str, max_depth: int | None) -> Iterator[File[T]]:
        fs = storage.get_underlying_filesystem(path=self.path)
        for parent, _, files in fs.walk(self.path, maxdepth=max_depth):
            for name in sorted(files):
                if fnmatch.fnmatch(name, file_pattern):
                    yield File(path=fs.unstrip_protocol(f"{parent}{fs.sep}{name}"))

    async def walk(
        self, recursive: bool = True, max_depth: int | None = None
    ) -> AsyncIterator[File[T]]:
        """The files in the directory (in name order), as :class:`File`."""
        files = await asyncio.to_thread(
            lambda: list(self.walk_sync(recursive, max_depth=max_depth))
        )
        for file in files:
            yield file

    def list_files_sync(self) -> list[File[T]]:
        """The files at the top of the directory."""
        return list(self.walk_sync(recursive=False))

    async def list_files(self) -> list[File[T]]:
        """The files at the top of the directory."""
        return await asyncio.to_thread(self.list_files_sync)

    def get_file_sync(self, file_name: str) -> File[T] | None:
        """The file ``file_name`` in the directory, or ``None`` when it is not there."""
        file: File[T] = File(path=storage.join(self.path, file_name))
        return file if file.exists_sync() else None

    async def get_file(self, file_name: str) -> File[T] | None:
        """The file ``file_name`` in the directory, or ``None`` when it is not there."""
        return await asyncio.to_thread(self.get_file_sync, file_name)

    def download_sync(self, local_path: str | Path | None = None) -> str:
        """Copy the directory to ``local_path`` (default: a new temporary one); returns it."""
        if local_path is None:
            target = storage.get_random_local_path() / (self.name or "dir")
        else:
            target = Path(local_path)
        if storage.is_remote(self.path):
            fs = storage.get_underlying_filesystem(path=self.path)
            fs.get(self.path, str(target), recursive=True)
            return str(target)
        source = self.local
        if not source.is_dir():
            raise NotADirectoryError(f"Dir.download: no such directory: {source}")
        shutil.copytree(source, target, dirs_exist_ok=True)
        return str(target)

    async def download(self, local_path: str | Path | None = None) -> str:
        """Copy the directory to ``local_path`` (default: a new temporary one); returns it."""
        return await asyncio.to_thread(self.download_sync, local_path)

    def exists_sync(self) -> bool:
        """Whether the directory is there."""
        if storage.is_remote(self.path):
            return storage.exists_sync(self.path)
        return self.local.is_dir()


class EmptyDir(Dir[Any]):
    """The "no directory was produced" :class:`Dir` (``Dir.empty()``); ``is_empty`` is true.

    It travels as a plain ``Dir`` with the sentinel path, as in Flyte.
    """

    def __init__(self, name: str = "", format: str = "", hash: str | None = None) -> None:
        super().__init__(path=_EMPTY_DIR_SENTINEL, name=name, format=format, hash=hash)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Dir, (self.path, self.name, self.format, self.hash))


def cache_identity(value: object) -> object:
    """What a cached task keys a ``File``/``Dir`` input by: its hash when it has one."""
    if isinstance(value, _Stored) and value.hash:
        return ("__flyte.io__", type(value).__name__, value.hash)
    return value


__all__ = ["Dir", "EmptyDir", "File", "HashFunction", "HashMethod", "cache_identity"]
