"""`BundleStore`: the code bundles a controller was sent, kept on disk by digest.

A client sends a bundle once (:meth:`BundleStore.receive`, in chunks); replicas
read it as often as they start (:meth:`BundleStore.read`). Each file is named
by its digest and written whole (a temporary file renamed into place) only
after its content matched that digest, so a restarted controller finds every
bundle it had accepted, and nothing else. The folder is private (0700).

The store keeps the bundles in use and the most recently used others, up to
``keep``; older ones go when a new one arrives.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from reuse_runtime.bundles.archive import check_digest, valid_digest
from reuse_runtime.errors import CodeBundleError
from reuse_runtime.paths import private_dir

#: Bytes per chunk on the wire, both ways.
CHUNK_BYTES = 1 << 20
_SUFFIX = ".tar.gz"


class BundleUpload:
    """One bundle arriving in chunks; :meth:`finish` checks it and stores it."""

    def __init__(self, store: BundleStore, digest: str, size: int, source: str) -> None:
        self._store = store
        self.digest = digest
        self.size = size
        self.source = source
        self._data = bytearray()

    def write(self, offset: int, data: bytes) -> None:
        if offset != len(self._data):
            raise CodeBundleError(
                f"code bundle {self.digest[:12]} from {self.source}: a chunk at offset {offset} "
                f"arrived where {len(self._data)} was expected; send the bundle again"
            )
        if len(self._data) + len(data) > self.size:
            raise CodeBundleError(
                f"code bundle {self.digest[:12]} from {self.source} is longer than the "
                f"{self.size} bytes it announced"
            )
        self._data += data

    def finish(self) -> None:
        if len(self._data) != self.size:
            raise CodeBundleError(
                f"code bundle {self.digest[:12]} from {self.source} ended after "
                f"{len(self._data)} of its {self.size} bytes; send it again"
            )
        check_digest(bytes(self._data), self.digest, self.source)
        self._store._put(self.digest, bytes(self._data))


class BundleStore:
    """Bundles by digest, in ``directory``; at most ``max_bytes`` each."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        keep: int = 64,
        in_use: Callable[[], set[str]] = set,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.keep = keep
        #: The digests never pruned (the controller's pools may start replicas of them).
        self.in_use = in_use
        #: Uploads taken whole (``reuse_runtime_code_bundles_received_total``): a client
        #: that finds its bundle here already sends none.
        self.received = 0
        self._lock = threading.Lock()

    def _path(self, digest: str) -> Path:
        return self.directory / f"{digest}{_SUFFIX}"

    def has(self, digest: str) -> bool:
        return valid_digest(digest) and self._path(digest).is_file()

    def size(self, digest: str) -> int | None:
        """The bundle's size in bytes, or None if it is not here."""
        if not valid_digest(digest):
            return None
        try:
            return self._path(digest).stat().st_size
        except OSError:
            return None

    def receive(self, digest: str, size: int, source: str) -> BundleUpload:
        """Start taking bundle ``digest`` of ``size`` bytes; refuse one that is too large."""
        if not valid_digest(digest):
            raise CodeBundleError(
                f"a code bundle from {source} names {digest[:80]!r}, which is not a sha256 digest"
            )
        if not 0 < size <= self.max_bytes:
            raise CodeBundleError(
                f"code bundle {digest[:12]} from {source} is {size} bytes; this controller takes "
                f"bundles of 1 to {self.max_bytes} bytes (its $REUSE_RUNTIME_MAX_BUNDLE_BYTES): "
                f"make the bundle smaller, or raise the limit where the controller runs"
            )
        return BundleUpload(self, digest, size, source)

    def read(self, digest: str) -> bytes:
        """The bundle's bytes; :class:`CodeBundleError` if this controller does not have it."""
        try:
            return self._path(digest).read_bytes() if valid_digest(digest) else b""
        except OSError:
            pass
        raise CodeBundleError(
            f"code bundle {digest[:12]} is not at this controller ({self.directory}); the client "
            f"that registered its environment sends it again when it next registers: run again"
        )

    def chunks(self, digest: str) -> Iterator[bytes]:
        data = self.read(digest)
        for offset in range(0, len(data), CHUNK_BYTES):
            yield data[offset : offset + CHUNK_BYTES]

    def _put(self, digest: str, data: bytes) -> None:
        with self._lock:
            self.received += 1
            private_dir(self.directory)
            final = self._path(digest)
            if not final.is_file():
                tmp = self.directory / f".{digest[:12]}-{secrets.token_hex(4)}.tmp"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    with os.fdopen(fd, "wb") as out:
                        out.write(data)
                    os.replace(tmp, final)
                finally:
                    with contextlib.suppress(OSError):
                        tmp.unlink()
            self._prune(keep_digest=digest)

    def touch(self, digest: str) -> None:
        """Mark a bundle used now (the least recently used go first)."""
        with contextlib.suppress(OSError):
            os.utime(self._path(digest))

    def _prune(self, keep_digest: str) -> None:
        try:
            found = [p for p in self.directory.iterdir() if p.name.endswith(_SUFFIX)]
        except OSError:
            return
        if len(found) <= self.keep:
            return
        in_use = self.in_use() | {keep_digest}
        ages = []
        for path in found:
            with contextlib.suppress(OSError):
                ages.append((path.stat().st_mtime, path))
        ages.sort()
        excess = len(found) - self.keep
        for _, path in ages:
            if excess <= 0:
                break
            if path.name.removesuffix(_SUFFIX) in in_use:
                continue
            with contextlib.suppress(OSError):
                path.unlink()
                excess -= 1


__all__ = ["CHUNK_BYTES", "BundleStore", "BundleUpload"]
