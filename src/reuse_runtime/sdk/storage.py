"""``flyte.storage``: copy, open, stream and test paths, local or remote.

Local paths and ``file://`` URIs work with nothing else installed; the
runtime's "remote" store is a local directory (``$REUSE_RUNTIME_STORE``, else
``<state dir>/store``), so ``put`` without a destination copies there. Other
schemes (``s3://``, ``gs://``, ``abfs://``, ``memory://``, ...) go through
fsspec and its backend (s3fs, gcsfs, adlfs) when they are installed; when
they are not, the call fails with one line naming what to install::

    import reuse_runtime.storage as storage

    async def roundtrip() -> bytes:
        path = await storage.put_stream(b"hello", name="hello.txt")   # into the store
        return b"".join([chunk async for chunk in storage.get_stream(path)])
"""

from __future__ import annotations

import asyncio
import importlib
import os
import pathlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncGenerator, AsyncIterable
from typing import Any

from reuse_runtime.paths import private_dir, store_dir
from reuse_runtime.sdk.io_handle import AsyncFileHandle
from reuse_runtime.sdk.storage_config import ABFS, GCS, S3, Storage

#: The fsspec backend package each remote scheme needs.
_BACKENDS = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "abfs": "adlfs", "abfss": "adlfs"}


def protocol_of(path: str | pathlib.Path) -> str:
    """The path's scheme (``"s3"``), ``"file"`` for a local path."""
    text = str(path)
    return text.split("://", 1)[0] if "://" in text else "file"


def is_remote(path: str | pathlib.Path) -> bool:
    """Whether ``path`` has a scheme other than ``file://``."""
    return protocol_of(path) != "file"


def local_path(path: str | pathlib.Path) -> pathlib.Path:
    """A local path or ``file://`` URI as a :class:`~pathlib.Path`."""
    return pathlib.Path(str(path).removeprefix("file://"))


def store_slot(prefix: str, name: str) -> pathlib.Path:
    """``<store>/<prefix>/<name>``, its directories made private."""
    slot = store_dir() / prefix
    private_dir(slot.parent)
    slot.mkdir(mode=0o700, parents=True, exist_ok=True)
    return slot / name


def _fsspec(path: str) -> Any:
    protocol = protocol_of(path)
    backend = _BACKENDS.get(protocol)
    try:
        return importlib.import_module("fsspec")
    except ImportError:
        need = f"fsspec {backend}" if backend else "fsspec"
        raise ImportError(
            f"{path!r} is a {protocol}:// path: reading it needs fsspec (pip install {need})"
        ) from None


def _no_kwargs(call: str, path: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise TypeError(
            f"storage.{call}: {', '.join(sorted(kwargs))} only apply to remote (fsspec) paths, "
            f"and {path!r} is local"
        )


def get_random_local_path(file_path_or_file_name: pathlib.Path | str | None = None) -> pathlib.Path:
    """A new local path; with a file name (or path), a new directory holding that name."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="reuse-runtime-")) / uuid.uuid4().hex
    tail = os.path.split(file_path_or_file_name)[1] if file_path_or_file_name else ""
    if tail:
        folder.mkdir(parents=True, exist_ok=True)
        return folder / tail
    return folder


def get_random_local_directory() -> pathlib.Path:
    """A new, empty local directory."""
    folder = get_random_local_path(None)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def get_configured_fsspec_kwargs(
    protocol: str | None = None, anonymous: bool = False
) -> dict[str, Any]:
    """The fsspec arguments for ``protocol`` from its settings in the environment."""
    config: Storage
    match protocol:
        case "s3":
            config = S3.auto()
        case "gs" | "gcs":
            config = GCS.auto()
        case "abfs" | "abfss":
            config = ABFS.auto()
        case _:
            return {}
    return config.get_fsspec_kwargs(anonymous=anonymous)


def get_underlying_filesystem(
    protocol: str | None = None,
    anonymous: bool = False,
    path: str | None = None,
    **kwargs: Any,
) -> Any:
    """The fsspec filesystem for ``protocol`` (or ``path``'s); needs fsspec installed."""
    if protocol is None:
        protocol = protocol_of(path or "")
    fsspec = _fsspec(path or f"{protocol}://")
    settings = get_configured_fsspec_kwargs(protocol, anonymous=anonymous) | kwargs
    try:
        return fsspec.filesystem(protocol, **settings)
    except ImportError as e:
        package = _BACKENDS.get(protocol, "its fsspec backend")
        raise ImportError(
            f"{protocol}:// paths need {package} (pip install {package}): {e}"
        ) from None


def _copy_local(source: pathlib.Path, target: pathlib.Path, recursive: bool) -> None:
    if source.is_dir():
        if not recursive:
            raise IsADirectoryError(f"{source} is a directory: pass recursive=True to copy it")
        shutil.copytree(source, target, dirs_exist_ok=True)
        return
    if not source.exists():
        raise FileNotFoundError(f"no such file: {source}")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _file_target(from_path: str, to_path: str | pathlib.Path) -> str:
    """Flyte's rule: a target that ends in a separator or is a directory gets the source's name."""
    text = str(to_path)
    if text.endswith(os.sep) or local_path(text).is_dir():
        return str(local_path(text) / pathlib.Path(from_path).name)
    return text


async def get(
    from_path: str,
    to_path: str | pathlib.Path | None = None,
    recursive: bool = False,
    **kwargs: Any,
) -> str:
    """Copy ``from_path`` to a local path (default: a new one); returns where it went."""
    if not to_path:
        to_path = get_random_local_path(pathlib.Path(from_path).name)
    elif not recursive:
        to_path = _file_target(from_path, to_path)
    if not is_remote(from_path):
        _no_kwargs("get", from_path, kwargs)
        await asyncio.to_thread(_copy_local, local_path(from_path), local_path(to_path), recursive)
        return str(to_path)
    fs = get_underlying_filesystem(path=from_path)
    await asyncio.to_thread(fs.get, from_path, str(to_path), recursive=recursive, **kwargs)
    return str(to_path)


async def put(
    from_path: str,
    to_path: str | None = None,
    recursive: bool = False,
    batch_size: int | None = None,
    **kwargs: Any,
) -> str:
    """Copy a local file (or directory, with ``recursive``) to ``to_path`` (default: the store)."""
    source = local_path(from_path)
    if not to_path:
        to_path = str(store_slot(f"new/{uuid.uuid4().hex}", source.name))
    if not is_remote(to_path):
        _no_kwargs("put", to_path, kwargs)
        # batch_size bounds concurrent uploads; a local copy is one sequential walk.
        await asyncio.to_thread(_copy_local, source, local_path(to_path), recursive)
        return to_path
    fs = get_underlying_filesystem(path=to_path)
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    await asyncio.to_thread(fs.put, str(source), to_path, recursive=recursive, **kwargs)
    return to_path


def open_sync(path: str, mode: str = "rb", **kwargs: Any) -> Any:
    """Open ``path`` for blocking I/O: the builtin ``open`` locally, fsspec's remotely."""
    if not is_remote(path):
        target = local_path(path)
        if any(m in mode for m in "wax"):
            target.parent.mkdir(parents=True, exist_ok=True)
        return target.open(mode, **kwargs)
    return get_underlying_filesystem(path=path).open(path, mode, **kwargs)


async def open(path: str, mode: str = "rb", **kwargs: Any) -> AsyncFileHandle:
    """Open ``path`` for async reads or writes; close it (or use ``async with``) when done."""
    return AsyncFileHandle(await asyncio.to_thread(open_sync, path, mode, **kwargs))


async def put_stream(
    data_iterable: AsyncIterable[bytes] | bytes,
    *,
    name: str | None = None,
    to_path: str | None = None,
    **kwargs: Any,
) -> str:
    """Write bytes, or an async stream of them, to ``to_path`` (default: the store)."""
    if not to_path:
        to_path = str(store_slot(f"new/{uuid.uuid4().hex}", name or uuid.uuid4().hex))
    async with await open(to_path, "wb", **kwargs) as handle:
        if isinstance(data_iterable, bytes | bytearray | memoryview):
            await handle.write(data_iterable)
        else:
            async for data in data_iterable:
                await handle.write(data)
    return to_path


async def get_stream(
    path: str, chunk_size: int = 10 * 2**20, **kwargs: Any
) -> AsyncGenerator[bytes, None]:
    """The bytes of ``path``, ``chunk_size`` at a time."""
    async with await open(path, "rb", **kwargs) as handle:
        while chunk := await handle.read(chunk_size):
            yield bytes(chunk)


def join(*paths: str) -> str:
    """``os.path.join`` of the parts (as Flyte's ``storage.join``)."""
    return str(os.path.join(*paths))


def exists_sync(path: str, **kwargs: Any) -> bool:
    """Whether ``path`` exists (a file or a directory)."""
    if not is_remote(path):
        _no_kwargs("exists", path, kwargs)
        return local_path(path).exists()
    return bool(get_underlying_filesystem(path=path, **kwargs).exists(path))


async def exists(path: str, **kwargs: Any) -> bool:
    """Whether ``path`` exists (a file or a directory)."""
    if not is_remote(path) and not kwargs:
        return local_path(path).exists()
    return await asyncio.to_thread(exists_sync, path, **kwargs)
