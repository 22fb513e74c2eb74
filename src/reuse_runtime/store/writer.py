"""The store's one writer: a thread that commits what the controller recorded, in batches.

The controller appends records to a ``collections.deque`` (thread-safe, no lock
of ours, no wake-up per record). Every ``flush_interval`` the writer takes what
has arrived and commits it, at most ``batch_max`` records (and about 4% of the
byte bound) per transaction; a backlog is written batch after batch without
waiting, retention running between batches. So a process killed with ``-9``
loses at most what arrived since the last commit.

When a write fails, its batch is rolled back and held in memory, in order, and
tried again every ``retry_interval``; new records join it, up to ``max_queued``
(past that the newest are dropped, and counted). The state says why:

* ``full``: SQLite said SQLITE_FULL, or a value file met ENOSPC. The reason
  names the path. When space returns, the next try succeeds and the state is
  ``ok`` again, by itself.
* ``broken``: any other failure of the database or the file system.

A record the database refuses by itself (a wrong type in a field: a bug in the
caller) cannot be retried into success: its batch is written again record by
record, and only the refused ones are dropped, each noted in ``last_error``.

Retention runs here too, between batches (see :mod:`retention`).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import structlog

from reuse_runtime.store import retention
from reuse_runtime.store.batch import BatchWriter
from reuse_runtime.store.blobs import BlobFiles
from reuse_runtime.store.settings import StoreSettings
from reuse_runtime.store.views import StoreState

log = structlog.get_logger("reuse_runtime.store")

_SQLITE_FULL = 13
_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: The most of the byte bound one batch may add (what the store can pass its high-water
#: mark by before retention runs again).
_BATCH_SHARE = 0.04
#: Rows of doomed runs deleted per transaction between batches.
_SWEEP_ROWS = 20_000
#: Orphan value files younger than this are left to the writer that may be making them.
_ORPHAN_AGE = 3600.0


@dataclass(frozen=True, slots=True)
class Barrier:
    """Set ``done`` once every record queued before this one is committed; with
    ``prune``, also once retention has run to its end."""

    done: threading.Event = field(default_factory=threading.Event)
    prune: bool = False


class _Refused(Exception):
    """A record the database refuses (a bug of the caller's), with the record named."""


class StoreWriter:
    """The writer thread of one store. Call :meth:`start` once, :meth:`stop` once."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        queue: deque[object],
        settings: StoreSettings,
        blobs: BlobFiles,
        clock: Callable[[], float] = time.time,
        on_death: Callable[[], None] = lambda: None,
    ) -> None:
        self.conn = conn
        #: Called if the thread ends by a bug: the store then stops queueing records.
        self.on_death = on_death
        self.queue = queue
        self.settings = settings
        self.blobs = blobs
        self.clock = clock
        self.batch = BatchWriter(conn, settings, blobs)
        self.state: StoreState = "ok"
        self.reason = ""
        self.last_error = ""
        self.batches = 0
        self.records = 0
        self.dropped = 0
        self.pruned_runs = 0
        self.runs = int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])
        self.blob_bytes = int(
            conn.execute("SELECT coalesce(sum(size), 0) FROM blobs").fetchone()[0]
        )
        self.db_bytes = 0
        #: Records taken from the queue whose write failed, in order (retried first).
        self.held: deque[object] = deque()
        #: Records in the transaction under way (out of the queue, not yet committed).
        self._writing = 0
        #: Barriers whose records are committed, set at the end of the cycle.
        self._reached: list[Barrier] = []
        #: Bytes a record adds to the store, estimated from the batches written.
        self._per_record = 1024.0
        self._retry_at = 0.0
        self._retention_at = 0.0
        self._pressure_retry_at = 0.0
        #: Past this many bytes a deferred retention pass runs before its time.
        self._pressure_bytes = 0
        self._doomed = bool(conn.execute("SELECT 1 FROM doomed LIMIT 1").fetchone())
        self._stopping = False
        self._deadline = 0.0
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="runs-store-writer", daemon=True)
        self._measure()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    @property
    def thread_id(self) -> int | None:
        return self._thread.native_id

    def stop(self, timeout: float) -> bool:
        """Write what is queued (for at most ``timeout`` seconds), then end the thread and
        close the connection. Returns False if records were left unwritten."""
        self._deadline = time.monotonic() + timeout
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout + 5.0)
        return not self._thread.is_alive() and not self.held and not self.queue

    @property
    def waiting(self) -> int:
        return len(self.queue) + len(self.held) + self._writing

    # ----------------------------------------------------------------- the thread

    def _run(self) -> None:
        try:
            self._sweep_orphans()
            while True:
                stopping = self._stopping
                if not stopping:
                    self._wake.wait(self.settings.flush_interval)
                    self._wake.clear()
                self._cycle()
                if stopping and (
                    not (self.queue or self.held) or time.monotonic() >= self._deadline
                ):
                    break
                if stopping and self.held:
                    # Writes fail while we stop: try again until the deadline.
                    threading.Event().wait(min(0.05, self.settings.retry_interval))
        except BaseException as exc:  # a bug: say so, never die silently
            self._fail("broken", f"the runs store's writer stopped: {type(exc).__name__}: {exc}")
            log.exception("runs store writer failed")
            self.on_death()
        finally:
            left = sum(1 for r in (*self.held, *self.queue) if type(r) is not Barrier)
            if left:
                self.dropped += left
                self.last_error = f"{left} records were not written before the store closed"
                log.warning(f"{self.last_error} ({self.reason or 'out of time'})")
            self._close_connection()

    def _cycle(self) -> None:
        now = self.clock()
        try:
            if self.held:
                if now < self._retry_at and not self._stopping:
                    self._hold(self.queue)
                    return
                if not self._write_all(self.held):
                    self._hold(self.queue)
                    return
            if not self._write_all(self.queue):
                self._hold(self.queue)
                return
            self._maintain(self.clock())
        finally:
            self._release()

    def _write_all(self, source: deque[object]) -> bool:
        """Write ``source`` a batch at a time, retention between batches (so the store
        stays under its byte bound while a backlog goes in; each with the time after its
        batch, as a backlog can take longer than ``retention_interval``). False: a batch
        failed."""
        popleft = source.popleft
        while source:
            if len(self.queue) > self.settings.max_queued:
                self._shed(len(self.queue) - self.settings.max_queued)
            records = [popleft() for _ in range(min(len(source), self._batch_limit()))]
            if not self._write(records):
                return False
            self._maintain(self.clock())
            self._release()  # a flush waits for its batch, not for the queue to run dry
        return True

    def _shed(self, excess: int) -> None:
        """The writer fell behind by more than ``max_queued`` records: drop the newest
        ``excess`` (counted), so memory stays bounded; barriers stay."""
        kept = []
        for _ in range(excess):
            try:
                record = self.queue.pop()
            except IndexError:
                break
            if type(record) is Barrier:
                kept.append(record)
            else:
                self.dropped += 1
        self.queue.extend(reversed(kept))
        self.last_error = f"the runs store fell behind; {self.dropped} records dropped so far"
        log.warning(self.last_error)

    def _batch_limit(self) -> int:
        """At most ``batch_max`` records, and at most a small share of the byte bound:
        one batch is what the store can be over its high-water mark."""
        share = int(self.settings.max_bytes * _BATCH_SHARE / self._per_record)
        return max(100, min(self.settings.batch_max, share))

    def _release(self) -> None:
        """Set the barriers whose records are committed (after retention, so that a
        flush returns with the store within its bounds)."""
        reached, self._reached = self._reached, []
        if any(barrier.prune for barrier in reached):
            self._retention_at = self._pressure_retry_at = 0.0
            self._maintain(self.clock(), until_done=True)
        for barrier in reached:
            barrier.done.set()

    def _hold(self, queue: deque[object]) -> None:
        """Move what arrived while writes fail to ``held``, up to ``max_queued`` records."""
        room = self.settings.max_queued - len(self.held)
        while queue:
            record = queue.popleft()
            if room > 0 or type(record) is Barrier:
                self.held.append(record)
                room -= 1
            else:
                self.dropped += 1

    # ------------------------------------------------------------------ one batch

    def _write(self, records: list[object]) -> bool:
        """Commit ``records`` in one transaction. False: what was not written is back at
        the front of ``held``, to be tried again."""
        self._writing = len(records)
        before = self.db_bytes + self.blob_bytes
        try:
            self._transaction(records)
        except _Refused:
            return self._write_one_by_one(records)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)
            self.held.extendleft(reversed(records))
            return False
        finally:
            self._writing = 0
        self._measure()
        grown = self.db_bytes + self.blob_bytes - before
        if grown > 0:
            self._per_record = max(64.0, 0.7 * self._per_record + 0.3 * grown / len(records))
        self._done(records)
        return True

    def _transaction(self, records: list[object]) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            self.batch.write(records)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if _refused(exc):
                raise _Refused(str(exc)) from exc
            raise
        self._committed()

    def _committed(self) -> None:
        done = self.batch.committed()
        self.runs += done.new_runs
        self.blob_bytes += done.blob_bytes

    def _write_one_by_one(self, records: list[object]) -> bool:
        for n, record in enumerate(records):
            try:
                self._transaction([record])
            except _Refused as exc:
                self.dropped += 1
                self.records -= 1  # counted by _done below, with the batch
                self.last_error = f"a {type(record).__name__} was not recorded: {exc}"
                log.warning(self.last_error)
            except (sqlite3.Error, OSError) as exc:
                self._failed(exc)
                self._done(records[:n])
                self.held.extendleft(reversed(records[n:]))
                return False
        self._done(records)
        return True

    def _done(self, records: list[object]) -> None:
        self.batches += 1
        self.records += len(records)
        if self.state != "ok":
            log.info(f"the runs store at {self.settings.path} writes again")
            self.state, self.reason = "ok", ""
        for record in records:
            if type(record) is Barrier:
                self.records -= 1
                self._reached.append(record)

    def _failed(self, exc: BaseException) -> None:
        self._retry_at = self.clock() + self.settings.retry_interval
        if isinstance(exc, OSError) and exc.errno in _SPACE_ERRNOS:
            where = exc.filename or self.blobs.root
            self._fail("full", f"no space left for the runs store at {where} ({exc.strerror})")
        elif _sqlite_code(exc) == _SQLITE_FULL:
            self._fail("full", f"no space left for the runs store at {self.settings.path} ({exc})")
        else:
            self._fail("broken", f"the runs store at {self.settings.path} cannot be written: {exc}")

    def _fail(self, state: StoreState, reason: str) -> None:
        if self.state != state or self.reason != reason:
            log.warning(f"{reason}; records wait in memory and are tried again")
        self.state, self.reason, self.last_error = state, reason, reason

    # ------------------------------------------------------------------ retention

    def _maintain(self, now: float, *, until_done: bool = False) -> None:
        """Retention between batches: the run count after every batch, age and bytes every
        ``retention_interval``; doomed rows a slice at a time."""
        settings = self.settings
        try:
            self._measure()  # two stat calls: the byte bound is checked after every batch
            pressed = self.runs > settings.max_runs or self._over_bytes()
            # A pass that left the store over its bound is not run again after every
            # batch, but again once the store grew by a batch's share since (a fast
            # writer adds a lot in ``retention_interval``).
            grown = self.db_bytes + self.blob_bytes > self._pressure_bytes
            if (pressed and (now >= self._pressure_retry_at or grown)) or now >= self._retention_at:
                self._retention_at = now + settings.retention_interval
                if settings.shared:  # other processes add runs too
                    self.runs = int(self.conn.execute("SELECT count(*) FROM runs").fetchone()[0])
                self._doom(now)
                # Files whose last reference went without a run going (a submission at
                # its run's end, a log line cut from the middle).
                unreferenced = partial(retention.unreferenced, self.conn, self.blobs)
                self.blob_bytes -= self._in_transaction(unreferenced)
                if self._over_bytes():  # the pages are free, the file has not shrunk yet
                    self._vacuum()
                if self.runs > settings.max_runs or self._over_bytes():
                    # Unfinished runs hold them: look again later, not after every batch.
                    self._pressure_retry_at = now + settings.retention_interval
                    self._pressure_bytes = (
                        self.db_bytes + self.blob_bytes + int(settings.max_bytes * _BATCH_SHARE)
                    )
            while self._doomed:
                self._in_transaction(self._sweep)
                if not until_done:
                    break
            if until_done:
                self._vacuum()
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)

    def _doom(self, now: float) -> None:
        settings = self.settings
        while True:
            wal = _size(f"{settings.path}-wal")
            used = retention.usage(self.conn, wal_bytes=wal, blob_bytes=self.blob_bytes)
            decision = retention.decide(
                used,
                now=now,
                max_runs=settings.max_runs,
                max_age_days=settings.max_age_days,
                max_bytes=settings.max_bytes,
            )
            keys = retention.choose(self.conn, decision)
            if not keys:
                self.runs = used.runs
                return
            freed = self._in_transaction(partial(retention.doom, self.conn, keys, self.blobs))
            self.blob_bytes -= freed
            self.runs = used.runs - len(keys)
            self.pruned_runs += len(keys)
            self._doomed = True
            if decision.by_bytes:
                # Bytes come back only once the rows are gone: sweep, then look again.
                while self._doomed:
                    self._in_transaction(self._sweep)
                self._vacuum()
                if self._over_bytes():
                    continue
            if len(keys) < 500:
                return

    def _sweep(self) -> int:
        self._doomed = retention.sweep_doomed(self.conn, limit=_SWEEP_ROWS)
        return 0

    def _in_transaction(self, work: Callable[[], int]) -> int:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    def _vacuum(self) -> None:
        """Give the free pages back to the file system, so the file itself shrinks."""
        # A pragma that frees one page per step: step it to its end.
        self.conn.execute("PRAGMA incremental_vacuum").fetchall()
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        self._measure()

    def _over_bytes(self) -> bool:
        return self.db_bytes + self.blob_bytes > self.settings.max_bytes * retention.HIGH_WATER

    def _measure(self) -> None:
        path = str(self.settings.path)
        self.db_bytes = _size(path) + _size(f"{path}-wal")

    def _sweep_orphans(self) -> None:
        """Value files no row refers to: left by a writer killed between writing a file and
        committing its row. Old ones go (a young one may be another process's, in flight)."""
        try:
            known = {digest for (digest,) in self.conn.execute("SELECT digest FROM blobs")}
            cutoff = self.clock() - _ORPHAN_AGE
            for name, _, mtime in list(self.blobs.files()):
                if name not in known and (mtime < cutoff or not self.settings.shared):
                    self.blobs.discard(name)
        except (sqlite3.Error, OSError) as exc:
            self.last_error = f"looking for orphan value files: {exc}"

    def _close_connection(self) -> None:
        conn = self.conn
        try:
            conn.execute("PRAGMA optimize")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass
        conn.close()


def _sqlite_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    if isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc):
        return _SQLITE_FULL
    return None


def _refused(exc: BaseException) -> bool:
    """The database refuses this content (retrying cannot help), as opposed to failing
    to write it (space, I/O, a lock)."""
    if isinstance(exc, (sqlite3.InterfaceError, sqlite3.IntegrityError, sqlite3.ProgrammingError)):
        return True
    if isinstance(exc, (sqlite3.Error, OSError)):
        return False
    return isinstance(exc, (TypeError, ValueError, KeyError, AttributeError, OverflowError))


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
