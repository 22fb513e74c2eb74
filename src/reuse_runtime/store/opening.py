"""Opening the store's file: a corrupt or foreign one is moved aside, never fatal.

A controller must start even when its runs store cannot be read (a disk error, a
copy cut short, a file from a newer reuse-runtime). The file, with its WAL and
value files, is renamed to ``runs.sqlite.corrupt-<UTC time>``, an empty store takes
its place, and the open returns a one-line notice saying where the old one went.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reuse_runtime.paths import private_dir
from reuse_runtime.store import schema

#: Files up to this size are checked page by page at open (``PRAGMA quick_check``,
#: about a second per 100 MiB here); a larger one only by its header and schema.
QUICK_CHECK_MAX = 128 * 1024 * 1024


class UnusableStoreError(Exception):
    """The file is not a runs store this version can use (internal to opening)."""


@dataclass(frozen=True, slots=True)
class Opened:
    conn: sqlite3.Connection
    #: What happened to an unusable file, in one line, or "".
    notice: str


def connect(path: Path, *, timeout: float) -> sqlite3.Connection:
    """The writing connection: autocommit (the writer says BEGIN), usable from its thread."""
    return sqlite3.connect(
        path, timeout=timeout, isolation_level=None, check_same_thread=False, cached_statements=64
    )


def open_database(
    path: Path, *, timeout: float, wal_bytes: int, clock: Callable[[], float] = time.time
) -> Opened:
    """The store's writing connection, with its tables; an unusable file is moved aside.

    Raises ``OSError``/``sqlite3.Error`` only when a fresh file cannot be made either
    (the directory is not writable): that is for the caller to report.
    """
    private_dir(path.parent)
    try:
        return Opened(_checked(path, timeout, wal_bytes), "")
    except (sqlite3.DatabaseError, UnusableStoreError, OSError) as exc:
        if not _unusable(exc):
            raise  # busy, full, read-only: the file is fine, moving it would lose it
        moved = move_aside(path, clock())
        why = str(exc) or type(exc).__name__
        notice = (
            f"the runs store {path} could not be used ({why}); moved it to {moved} "
            f"and started an empty one"
        )
        return Opened(_checked(path, timeout, wal_bytes), notice)


#: SQLite's primary result codes that say the file itself is bad or cannot be read.
_BAD_FILE = frozenset({10, 11, 14, 26})  # IOERR, CORRUPT, CANTOPEN, NOTADB
_BAD_FILE_TEXT = ("file is not a database", "disk image is malformed", "disk I/O error")


def _unusable(exc: BaseException) -> bool:
    if isinstance(exc, (UnusableStoreError, IsADirectoryError)):
        return True
    if isinstance(exc, sqlite3.DatabaseError):
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF in _BAD_FILE
        return any(text in str(exc) for text in _BAD_FILE_TEXT)
    return False


def _checked(path: Path, timeout: float, wal_bytes: int) -> sqlite3.Connection:
    if path.exists() and not path.is_file():
        raise UnusableStoreError("it is not a file")
    conn = connect(path, timeout=timeout)
    try:
        schema.configure(conn, busy_timeout=timeout, wal_bytes=wal_bytes)
        schema.create(conn)
        schema.migrate(conn)
        problem = schema.mismatch(conn)
        if problem is not None:
            raise UnusableStoreError(problem)
        if path.stat().st_size <= QUICK_CHECK_MAX:
            found = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if found != "ok":
                raise UnusableStoreError(f"damaged: {found}")
        conn.execute("SELECT key FROM runs ORDER BY key DESC LIMIT 1").fetchall()
    except BaseException:
        conn.close()
        raise
    return conn


def move_aside(path: Path, now: float) -> Path:
    """Rename the store at ``path`` (with its WAL, shared memory and value files) to
    ``<path>.corrupt-<UTC time>``; returns the new name of the database file."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm", ".blobs"):
        source = path.with_name(path.name + suffix)
        if os.path.lexists(source):
            with contextlib.suppress(FileNotFoundError):
                os.replace(source, target.with_name(target.name + suffix))
    return target
