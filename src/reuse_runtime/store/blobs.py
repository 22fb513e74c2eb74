"""Values too large for the database: files beside it, named by their content.

A value of more than the blob threshold (a large output, a long log line) is kept
as ``<db>.blobs/<2 hex>/<32 hex>``, the XXH3-128 digest of its bytes. The same
value stored twice is one file; the database counts its references and retention
removes a file when nothing refers to it. A file is written under a temporary
name and renamed, so a reader never sees half of one.

XXH3 is not a cryptographic hash, and need not be: every value in one store comes
from the same user's runs, and it digests a 100 MiB output in 10 ms (SHA-256:
half a second on the writer thread). A read checks the digest again, so a file
damaged on disk is reported, never returned.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import xxhash

from reuse_runtime.store.errors import ValueMissingError
from reuse_runtime.store.records import Value

_DIGEST = re.compile(r"[0-9a-f]{32}")


def digest_of(data: Value) -> str:
    return xxhash.xxh3_128_hexdigest(data)


class BlobFiles:
    """The files of one store's large values, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        if not _DIGEST.fullmatch(digest):
            # A digest comes from the database: never let one name a path outside root.
            raise ValueMissingError(f"{digest!r} is not a value's digest ({self.root})")
        return self.root / digest[:2] / digest

    def exists(self, digest: str, size: int) -> bool:
        try:
            return self.path(digest).stat().st_size == size
        except OSError:
            return False

    def write(self, digest: str, data: Value) -> None:
        """Keep ``data`` as the file of ``digest``, atomically (raises ``OSError``, such
        as ``ENOSPC``; a partial file is removed)."""
        target = self.path(digest)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = target.with_name(f".{digest}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def read(self, digest: str) -> bytes:
        """The bytes of ``digest``; :class:`ValueMissingError` if the file is gone or
        does not hold them any more."""
        path = self.path(digest)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ValueMissingError(
                f"a value of the runs store cannot be read: {path}: {exc.strerror or exc}"
            ) from None
        if digest_of(data) != digest:
            raise ValueMissingError(f"a value of the runs store is damaged: {path}")
        return data

    def remove(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()

    def files(self) -> Iterator[tuple[str, int, float]]:
        """Every value file here, with its size and modification time (temporary files
        left by a writer that died are listed under their own name)."""
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                with contextlib.suppress(OSError):
                    info = entry.stat()
                    yield entry.name, info.st_size, info.st_mtime

    def discard(self, name: str) -> None:
        """Remove the file ``name`` (a digest, or a temporary file) found by :meth:`files`."""
        if _DIGEST.fullmatch(name):
            self.remove(name)
            return
        if name.startswith(".") and name.endswith(".tmp") and "/" not in name:
            folder = name[1:3]
            with contextlib.suppress(OSError):
                (self.root / folder / name).unlink()
