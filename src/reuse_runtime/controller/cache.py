"""`ResultCache`: task results kept in SQLite, keyed by task, code version and inputs.

The SDK computes a submission's ``cache_key`` (see :mod:`reuse_runtime.sdk.cache`);
the controller answers a submission whose key it has seen succeed with the stored
result, without running the task, and stores every new success. Keeping the cache
in the controller lets child tasks on replicas, and replicas in containers, share
one cache with the driver.

The database opens on first use, so a controller whose tasks never ask for caching
creates no file. Lookups and writes are small and local; they run on the loop.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from reuse_runtime.model import Payload

log = structlog.get_logger("reuse_runtime.controller")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    value BLOB NOT NULL,
    stored_at REAL NOT NULL
)
"""


class ResultCache:
    """A persistent map from cache key to a task's pickled result.

    Call-order contract: :meth:`close` when done; it is idempotent. A database that
    cannot be opened or written is logged once and the cache turns itself off:
    tasks then simply run.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._db: sqlite3.Connection | None = None
        self._broken = False

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is not None or self._broken:
            return self._db
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # never readable by others
            os.close(fd)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            self._fail("open", exc)
            return None
        self._db = db
        return db

    def _fail(self, what: str, exc: Exception) -> None:
        self._broken = True
        log.warning(
            f"result cache disabled: cannot {what} it",
            path=str(self.path),
            error=f"{type(exc).__name__}: {exc}",
        )

    def get(self, key: str, max_age: float = 0.0) -> bytes | None:
        """The stored result for ``key``, or None; None too when older than ``max_age`` seconds.

        ``max_age`` 0 takes a result of any age.
        """
        db = self._connect()
        if db is None:
            return None
        try:
            row = db.execute(
                "SELECT value, stored_at FROM results WHERE key = ?", (key,)
            ).fetchone()
        except sqlite3.Error as exc:
            self._fail("read", exc)
            return None
        if row is None or (max_age > 0 and self._clock() - row[1] > max_age):
            return None
        return bytes(row[0])

    def put(self, key: str, task: str, value: Payload) -> None:
        """Store (or replace) the result for ``key``."""
        db = self._connect()
        if db is None:
            return
        try:
            db.execute(
                "INSERT OR REPLACE INTO results (key, task, value, stored_at) VALUES (?, ?, ?, ?)",
                (key, task, value, self._clock()),
            )
        except sqlite3.Error as exc:
            self._fail("write", exc)

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()
