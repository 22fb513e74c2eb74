"""The runs store of a state dir: SQLite, one writer thread, read-only readers.

    import pickle, time
    from reuse_runtime.store import (
        ActionPhase, ActionRecord, RunEnded, RunSubmitted, SqliteRunStore, StoreSettings,
    )

    with SqliteRunStore.open(StoreSettings.from_env()) as store:
        if store.notice:
            print(store.notice)  # e.g. a corrupt file moved aside
        now = time.time()
        store.run_submitted(RunSubmitted("r1", "main", "env", "a0", created=now))
        store.action_ended(
            ActionRecord("r1", "a0", "", "", "main", "env", "", ActionPhase.SUCCEEDED,
                         now, now, time.time(), "env-1", "()", output=pickle.dumps(1))
        )
        store.run_ended(RunEnded("r1", ActionPhase.SUCCEEDED, time.time()))
        store.flush()
        print(store.get_run("r1").phase)  # succeeded

``async with`` works too (the close then runs in a thread). See
:mod:`reuse_runtime.store.interface` for what each side promises.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType

from reuse_runtime.conditions import ConditionInfo
from reuse_runtime.store.blobs import BlobFiles
from reuse_runtime.store.errors import StoreClosedError, StoreError
from reuse_runtime.store.lockfile import StoreLock
from reuse_runtime.store.opening import open_database
from reuse_runtime.store.reads import SqliteRunReader
from reuse_runtime.store.records import (
    ActionRecord,
    LogRecord,
    RunEnded,
    RunProgress,
    RunSubmitted,
)
from reuse_runtime.store.settings import StoreSettings
from reuse_runtime.store.views import StoreStatistics
from reuse_runtime.store.writer import Barrier, StoreWriter


class SqliteRunStore(SqliteRunReader):
    """A :class:`~reuse_runtime.store.interface.RunStore` in one SQLite file.

    Make one with :meth:`open`. Recording calls append to a queue the writer
    thread drains; reads go through read-only connections of their own.
    """

    def __init__(
        self,
        settings: StoreSettings,
        lock: StoreLock | None,
        conn: sqlite3.Connection,
        notice: str,
        clock: Callable[[], float],
    ) -> None:
        blobs = BlobFiles(settings.blob_dir)
        super().__init__(settings.path, timeout=settings.read_timeout, blobs=blobs)
        self.settings = settings
        self._notice = notice
        self._lock_file = lock
        self._queue: deque[object] = deque()
        # The recording calls append here directly; after close, a function that raises.
        self._append: Callable[[object], None] = self._queue.append
        self._extend: Callable[[Iterable[object]], None] = self._queue.extend
        self._writer = StoreWriter(conn, self._queue, settings, blobs, clock, self._writer_died)
        self._closed_store = False
        self._writer.start()

    @classmethod
    def open(
        cls, settings: StoreSettings, *, clock: Callable[[], float] = time.time
    ) -> SqliteRunStore:
        """Lock the store (exclusively, unless ``settings.shared``), open it (moving an
        unusable file aside: see :attr:`notice`), and start its writer.

        Raises :class:`~reuse_runtime.store.errors.StoreLockedError` when another
        controller holds it, and :class:`~reuse_runtime.store.errors.StoreError` when
        no store can be made there at all (the directory is not writable).
        """
        settings.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = StoreLock.acquire(settings.lock_path, shared=settings.shared, store=settings.path)
        try:
            opened = open_database(
                settings.path,
                timeout=settings.read_timeout,
                # A small part of the bound: the WAL is part of the store's bytes.
                wal_bytes=settings.max_bytes // 32,
                clock=clock,
            )
            try:
                _mark_replaying(opened.conn)
                return cls(settings, lock, opened.conn, opened.notice, clock)
            except BaseException:
                opened.conn.close()
                raise
        except (sqlite3.Error, OSError) as exc:
            lock.release()
            raise StoreError(f"the runs store {settings.path} cannot be opened: {exc}") from None
        except BaseException:
            lock.release()
            raise

    def _writer_died(self) -> None:
        """The writer ended by a bug: records are counted and dropped from now on, so
        memory stays bounded (``accepting()`` is False, ``statistics()`` says why)."""
        writer = self._writer

        def discard(_record: object) -> None:
            writer.dropped += 1

        def discard_all(records: Iterable[object]) -> None:
            writer.dropped += sum(1 for _ in records)

        self._append, self._extend = discard, discard_all
        writer.dropped += len(self._queue)
        self._queue.clear()

    # ---------------------------------------------------------------- recording

    def run_submitted(self, record: RunSubmitted) -> None:
        self._append(record)

    def run_progress(self, record: RunProgress) -> None:
        self._append(record)

    def run_ended(self, record: RunEnded) -> None:
        self._append(record)

    def action_ended(self, record: ActionRecord) -> None:
        self._append(record)

    def log_line(self, record: LogRecord) -> None:
        self._append(record)

    def log_lines(self, records: Iterable[LogRecord]) -> None:
        self._extend(records)

    def condition_changed(self, record: ConditionInfo) -> None:
        self._append(record)

    # ------------------------------------------------------------------- health

    @property
    def notice(self) -> str:
        return self._notice

    @property
    def writer_thread_id(self) -> int | None:
        """The writer thread's native id (``/proc/PID/task/TID``: what it costs), once
        started."""
        return self._writer.thread_id

    @property
    def alone(self) -> bool:
        """Whether no other process had the store open when this one opened it (always
        true of an exclusive store; of a shared one, its unfinished runs are orphans)."""
        return self._lock_file is None or self._lock_file.alone

    def accepting(self) -> bool:
        return not self._closed_store and self._writer.state == "ok"

    def statistics(self) -> StoreStatistics:
        writer = self._writer
        return StoreStatistics(
            state="closed" if self._closed_store else writer.state,
            reason=writer.reason,
            path=str(self.settings.path),
            queued=writer.waiting,
            batches=writer.batches,
            records=writer.records,
            dropped=writer.dropped,
            runs=writer.runs,
            db_bytes=writer.db_bytes,
            blob_bytes=writer.blob_bytes,
            pruned_runs=writer.pruned_runs,
            last_error=writer.last_error,
            notice=self._notice,
        )

    # ------------------------------------------------------------------ control

    def flush(self, timeout: float = 10.0) -> bool:
        return self._barrier(Barrier(), timeout)

    def prune(self, timeout: float = 60.0) -> bool:
        return self._barrier(Barrier(prune=True), timeout)

    def _barrier(self, barrier: Barrier, timeout: float) -> bool:
        self._append(barrier)
        self._writer.wake()
        return barrier.done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        if self._closed_store:
            return
        self._closed_store = True
        self._append = self._extend = _refuse
        self._writer.stop(self.settings.close_timeout if timeout is None else timeout)
        self.close_reads()
        if self._lock_file is not None:
            self._lock_file.release()

    def __enter__(self) -> SqliteRunStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> SqliteRunStore:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.close)


def _refuse(_record: object) -> None:
    raise StoreClosedError("the runs store is closed: nothing more can be recorded")


def _mark_replaying(conn: sqlite3.Connection) -> None:
    """The runs unfinished at open are the ones a restarted controller replays: index
    their children's call keys (in order, so the last record of a key wins)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("DELETE FROM replaying WHERE run_key NOT IN (SELECT key FROM runs)")
        new = [
            (key,)
            for (key,) in conn.execute(
                "SELECT key FROM runs WHERE phase < 5 "
                "AND key NOT IN (SELECT run_key FROM replaying)"
            )
        ]
        for key in new:
            conn.execute("INSERT INTO replaying (run_key) VALUES (?)", key)
            conn.execute(
                "INSERT OR REPLACE INTO calls (run_key, call_key, action_id) "
                "SELECT run_key, call_key, action_id FROM actions "
                "WHERE run_key = ? AND call_key <> '' ORDER BY id",
                key,
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
