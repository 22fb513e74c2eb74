"""One controller per runs store: an advisory lock held for the store's life.

A controller takes an exclusive ``flock`` on ``<db>.lock`` and writes its pid
there; a second controller on the same state dir fails at once with one line
naming the dir and that pid. Embedded controllers of several user scripts share
one store: each takes a shared lock, which keeps an exclusive controller out
while any of them runs (and them out while it runs). The kernel releases the
lock when the process dies, so a killed controller never leaves it behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from reuse_runtime.store.errors import StoreLockedError


class StoreLock:
    """A held lock on a runs store; :meth:`release` lets it go (idempotent)."""

    def __init__(self, path: Path, fd: int, shared: bool, alone: bool = True) -> None:
        self.path = path
        self.shared = shared
        #: No other process held the store when it was locked: a shared store's runs
        #: left unfinished then belong to processes that are gone.
        self.alone = alone
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: Path, *, shared: bool, store: Path) -> StoreLock:
        """Take the lock without waiting; :class:`StoreLockedError` if another process holds
        it in a mode that excludes ours."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        alone = True
        try:
            if shared:
                try:  # alone? (then taken down to shared: the others may join)
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    alone = False
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            directory = store.parent
            if shared:
                raise StoreLockedError(
                    f"the runs store in {directory} is in use by a controller (pid {holder}); "
                    f"connect to it instead (REUSE_RUNTIME_ENDPOINT), or use another state dir "
                    f"(REUSE_RUNTIME_HOME)"
                ) from None
            who = f"a controller (pid {holder})" if holder else "embedded controllers"
            raise StoreLockedError(
                f"the runs store in {directory} is in use by {who}; stop it, or give this "
                f"controller another state dir (--state-dir)"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # Holding the lock, any pid in the file is stale (a controller killed with -9).
        os.ftruncate(fd, 0)
        if not shared:
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd, shared, alone)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            if not self.shared:
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _holder(fd: int) -> str:
    """The pid written by the exclusive holder, or "" (shared holders write none)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""
