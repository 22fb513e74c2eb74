"""One batch of records into SQL, in the writer's transaction.

This is the per-task cost of the store, so it is written for speed:

* An :class:`ActionRecord` becomes one row by tuple unpacking, and the actions of
  a batch go in many rows per statement (one multi-row ``VALUES``), the fields
  alike rows share bound once (see :mod:`action_inserts`). The replay keys are then
  derived in SQL from the rows just inserted.
* Parameters are only ``int``, ``float``, ``str`` and ``bytearray``: the sqlite3
  module binds those directly, and looks every other type (``None`` and ``bytes``
  included) up in its adapter registry, which costs more than the insert.
  Empty strings and ``0.0`` stand for "none".
* A value column holds the bytes (a BLOB) when small, the digest of its file
  (TEXT) when large, and its size (INTEGER) when too large to keep.

Nothing here commits. What this batch changes in memory (run keys, log line
numbers, counters) takes effect only through :meth:`BatchWriter.committed`, so a
batch that is rolled back (disk full) can be written again as if for the first time.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field

from reuse_runtime.conditions import ConditionInfo
from reuse_runtime.store import schema
from reuse_runtime.store.action_inserts import Segments, Shape, insert_actions
from reuse_runtime.store.blobs import BlobFiles, digest_of
from reuse_runtime.store.conditions import write_conditions
from reuse_runtime.store.phases import FIRST_TERMINAL, PHASE_CODES, ActionPhase
from reuse_runtime.store.records import (
    REPORT_STREAM,
    ActionRecord,
    LogRecord,
    RunEnded,
    RunProgress,
    RunSubmitted,
    Value,
)
from reuse_runtime.store.settings import StoreSettings

_EMPTY = bytearray()
#: Log line counters kept in memory at most; past it they are read back as needed.
_LINE_COUNTERS_MAX = 100_000
#: Run keys kept in memory at most (the runs not ended, and late records of ended ones).
_RUN_KEYS_MAX = 100_000
#: Parent numbers kept in memory at most; past it they are read back as needed.
_PARENTS_MAX = 100_000
_RUNNING = PHASE_CODES[ActionPhase.RUNNING]

_COUNT_ACTIONS = (
    "INSERT INTO counts (run_key, phase, n) VALUES (?, ?, ?) "
    "ON CONFLICT (run_key, phase) DO UPDATE SET n = n + excluded.n"
)
_INDEX_CALLS = (
    "INSERT OR REPLACE INTO calls (run_key, call_key, action_id) "
    "SELECT run_key, call_key, action_id FROM actions "
    "WHERE id > ? AND call_key <> '' AND run_key IN (SELECT run_key FROM replaying) ORDER BY id"
)


@dataclass(slots=True)
class Pending:
    """What a batch changed in memory, applied when it commits."""

    run_keys: dict[str, int] = field(default_factory=dict)
    ended_runs: list[str] = field(default_factory=list)
    new_runs: int = 0
    lines: dict[tuple[int, str], int] = field(default_factory=dict)
    blob_bytes: int = 0
    #: Runs submitted in this batch: none of their actions printed before.
    fresh: set[int] = field(default_factory=set)
    parents: dict[tuple[int, str], int] = field(default_factory=dict)


class BatchWriter:
    """Turns records into rows, for one connection; owned by the writer thread."""

    def __init__(self, conn: sqlite3.Connection, settings: StoreSettings, blobs: BlobFiles):
        self.conn = conn
        self.settings = settings
        self.blobs = blobs
        #: Keys of the runs seen since open (until they end), by name.
        self.run_keys: dict[str, int] = {}
        #: The last line number of each action that printed, by (run key, action id).
        self.lines: dict[tuple[int, str], int] = {}
        #: Runs submitted since open whose every printing action is in ``lines``: an
        #: action of theirs missing there has printed nothing yet (no need to look).
        self.fresh: set[int] = set()
        #: The numbers of parents (``parents.no``) by (run key, action id). A run's key
        #: is never used again, so an entry of a run retention removed is never looked up.
        self.parents: dict[tuple[int, str], int] = {}
        self.replaying = bool(conn.execute("SELECT 1 FROM replaying LIMIT 1").fetchone())
        self._pending = Pending()

    # ------------------------------------------------------------ the transaction

    def write(self, records: list[object]) -> None:
        """Write ``records`` (inside the caller's transaction), in an order that keeps
        their meaning: runs first, then log lines, actions, and the ends of runs."""
        self._pending = Pending()
        actions: list[ActionRecord] = []
        logs: list[LogRecord] = []
        submitted: list[RunSubmitted] = []
        progress: list[RunProgress] = []
        ended: list[RunEnded] = []
        conditions: list[ConditionInfo] = []
        for record in records:
            kind = type(record)
            if kind is ActionRecord:
                actions.append(record)  # type: ignore[arg-type]
            elif kind is LogRecord:
                logs.append(record)  # type: ignore[arg-type]
            elif kind is RunSubmitted:
                submitted.append(record)  # type: ignore[arg-type]
            elif kind is RunProgress:
                progress.append(record)  # type: ignore[arg-type]
            elif kind is RunEnded:
                ended.append(record)  # type: ignore[arg-type]
            elif kind is ConditionInfo:
                conditions.append(record)  # type: ignore[arg-type]
        for run in submitted:
            self._submit(run)
        if conditions:
            write_conditions(self.conn, conditions)
        for change in progress:
            self._progress(change)
        if logs:
            self._logs(logs)
        if actions:
            self._actions(actions)
        for end in ended:
            self._end(end)

    def committed(self) -> Pending:
        """The batch committed: its changes to memory take effect. Returns them."""
        done = self._pending
        if len(self.run_keys) > _RUN_KEYS_MAX:
            self.run_keys.clear()  # late records of ended runs: read back as needed
        self.run_keys.update(done.run_keys)
        self.fresh.update(done.fresh)
        for name in done.ended_runs:
            key = self.run_keys.pop(name, None)
            self.fresh.discard(key or 0)
        if len(self.lines) + len(done.lines) > _LINE_COUNTERS_MAX:
            # Read back from the table for the actions still printing.
            self.lines.clear()
            self.fresh.clear()
        self.lines.update(done.lines)
        if len(self.parents) + len(done.parents) > _PARENTS_MAX:
            self.parents.clear()
        self.parents.update(done.parents)
        self._pending = Pending()
        return done

    # ------------------------------------------------------------------- actions

    def _actions(self, actions: list[ActionRecord]) -> None:
        conn = self.conn
        keys = self.run_keys
        new_keys = self._pending.run_keys
        codes = PHASE_CODES
        limit = self.settings.blob_threshold
        preview_max = self.settings.preview_max
        value = self._value
        # The rows in order, alike ones together: (shape, their fields one after another).
        segments: Segments = []
        shape: Shape | None = None
        rows: list[object] = []
        started_segment = False
        traces: list[tuple[int, str, int, str, float, float, str]] = []
        # Finished actions per (run key, phase code); a batch is mostly one or two of them.
        counts: dict[tuple[int, int], int] = {}
        last_run, key = "", 0
        # A batch's actions are mostly children of one parent, or of a few, in runs, and
        # mostly of one phase: what is looked up for a row is kept for the next (a phase's
        # hash is a Python call).
        last_parent, parent_key, parent = "", 0, 0
        last_phase: ActionPhase | None = None
        code, counted = 0, (0, 0)
        for (
            run,
            action_id,
            parent_id,
            call_key,
            task,
            environment,
            group,
            phase,
            created,
            started,
            ended,
            replica,
            preview,
            output,
            error,
            attempts,
            trace,
        ) in actions:
            if run != last_run:
                last_run = run
                key = keys.get(run) or new_keys.get(run) or self._key(run)
                last_phase = None
            if parent_id != last_parent or key != parent_key:
                last_parent, parent_key = parent_id, key
                parent = self._parent(key, parent_id) if parent_id else 0
            if phase is not last_phase:
                last_phase = phase
                code = codes[phase]
                counted = (key, code)
            counts[counted] = counts.get(counted, 0) + 1
            if error is None:
                error_text = ""
                if not output:
                    stored: object = _EMPTY
                elif len(output) <= limit:
                    stored = bytearray(output)
                else:
                    stored = value(output)
            else:
                error_text = schema.encode_error(error)
                stored = value(error.pickled) if error.pickled else _EMPTY
            if not (error_text or preview or attempts):
                alike = (key, parent, task, environment, group, code)
                if alike != shape or not started_segment:
                    shape, rows, started_segment = alike, [], True
                    segments.append((shape, rows))
                rows += (action_id, call_key, created, started, ended, replica, stored)
            else:
                if shape is not None or not started_segment:
                    shape, rows, started_segment = None, [], True
                    segments.append((None, rows))
                rows += (
                    key,
                    action_id,
                    parent,
                    call_key,
                    task,
                    environment,
                    group,
                    code,
                    created,
                    started,
                    ended,
                    replica,
                    preview[:preview_max],
                    stored,
                    error_text,
                    schema.encode_attempts(attempts) if attempts else "",
                )
            if trace:
                traces.extend(
                    (key, action_id, n, t.name, t.start, t.duration, t.error_type)
                    for n, t in enumerate(trace)
                )
        if self.replaying:
            last = conn.execute("SELECT coalesce(max(id), 0) FROM actions").fetchone()[0]
        insert_actions(conn, segments)
        conn.executemany(_COUNT_ACTIONS, [(*counted, n) for counted, n in counts.items()])
        if self.replaying:
            conn.execute(_INDEX_CALLS, (last,))
        if traces:
            conn.executemany(
                "INSERT OR REPLACE INTO traces (run_key, action_id, n, name, start, duration, "
                "error_type) VALUES (?, ?, ?, ?, ?, ?, ?)",
                traces,
            )

    def _parent(self, key: int, action_id: str) -> int:
        """The number of action ``action_id`` of run ``key`` as a parent (made the first
        time one of its children is recorded)."""
        ident = (key, action_id)
        found = self.parents.get(ident) or self._pending.parents.get(ident)
        if found:
            return found
        row = self.conn.execute(
            "SELECT no FROM parents WHERE run_key = ? AND action_id = ?", ident
        ).fetchone()
        if row is None:
            number = self.conn.execute(
                "INSERT INTO parents (run_key, action_id) VALUES (?, ?)", ident
            ).lastrowid
            assert number is not None
        else:
            number = int(row[0])
        self._pending.parents[ident] = number
        return number

    # ---------------------------------------------------------------------- logs

    def _logs(self, logs: list[LogRecord]) -> None:
        """Number each action's lines, and keep its first ``log_head`` and last
        ``log_tail``: a line that would be cut before this batch ends is not written."""
        head, tail = self.settings.log_head, self.settings.log_tail
        limit = self.settings.blob_threshold
        keys, new_keys = self.run_keys, self._pending.run_keys
        known = self.lines
        fresh, new_fresh = self.fresh, self._pending.fresh
        counters = self._pending.lines
        # First pass: every line's number, and the last number of each action.
        numbered = []
        reports = []
        for run, action_id, stream, text, at in logs:
            key = keys.get(run) or new_keys.get(run) or self._key(run)
            if stream == REPORT_STREAM:
                reports.append((key, action_id, at, self._report(text)))
                continue
            ident = (key, action_id)
            n = counters.get(ident) or known.get(ident) or 0
            if not n and key not in fresh and key not in new_fresh:
                n = self._last_line(key, action_id)
            n += 1
            counters[ident] = n
            numbered.append((key, action_id, n, at, stream, text))
        rows = []
        for key, action_id, n, at, stream, text in numbered:
            last = counters[(key, action_id)]
            if head < n <= last - tail:
                continue  # in the middle that is dropped
            if len(text) > limit:
                stored: object = self._value(text.encode(), limit_keep=False)
                if isinstance(stored, str):
                    stored = bytearray(stored.encode())  # a digest, marked as a BLOB
            else:
                stored = text
            rows.append((key, action_id, n, at, schema.STREAM_CODES.get(stream, 1), stored))
        self.conn.executemany(
            "INSERT INTO logs (run_key, action_id, line, at, stream, text) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        if reports:
            self.conn.executemany(
                "INSERT OR REPLACE INTO reports (run_key, action_id, at, html) VALUES (?, ?, ?, ?)",
                reports,
            )
        # Lines written by earlier batches that are now in the middle.
        for (key, action_id), last in counters.items():
            if last > head + tail:
                self._drop_lines(key, action_id, head, last - tail)

    def _report(self, html: str) -> str:
        limit = self.settings.report_max
        if len(html) <= limit:
            return html
        return (
            f"<p>This report was {len(html)} characters long, over the {limit} the runs "
            f"store keeps (its report_max); it was not kept.</p>"
        )

    def _drop_lines(self, key: int, action_id: str, head: int, upto: int) -> None:
        dropped = self.conn.execute(
            "SELECT text FROM logs WHERE run_key = ? AND action_id = ? AND line > ? "
            "AND line <= ? AND typeof(text) = 'blob'",
            (key, action_id, head, upto),
        ).fetchall()
        for (digest,) in dropped:
            self.conn.execute(
                "UPDATE blobs SET refs = refs - 1 WHERE digest = ?", (bytes(digest).decode(),)
            )
        self.conn.execute(
            "DELETE FROM logs WHERE run_key = ? AND action_id = ? AND line > ? AND line <= ?",
            (key, action_id, head, upto),
        )

    def _last_line(self, key: int, action_id: str) -> int:
        found = self.conn.execute(
            "SELECT max(line) FROM logs WHERE run_key = ? AND action_id = ?", (key, action_id)
        ).fetchone()[0]
        return int(found or 0)

    # ---------------------------------------------------------------------- runs

    def _key(self, name: str) -> int:
        """The key of run ``name``, from the table; a run the store was not told of gets
        a row of its own (phase running), so its actions are not lost."""
        found = self.conn.execute("SELECT key FROM runs WHERE name = ?", (name,)).fetchone()
        if found is None:
            self.conn.execute(
                "INSERT INTO runs (name, phase, task, environment, root_action, client_id, "
                "user, host, created, started, ended, inputs_preview, error, labels) "
                "VALUES (?, ?, '', '', '', '', '', '', ?, 0, 0, '', '', '')",
                (name, _RUNNING, time.time()),
            )
            found = self.conn.execute("SELECT key FROM runs WHERE name = ?", (name,)).fetchone()
            self._pending.new_runs += 1
        key = int(found[0])
        self._pending.run_keys[name] = key
        return key

    def _submit(self, run: RunSubmitted) -> None:
        conn, settings = self.conn, self.settings
        found = conn.execute(
            "SELECT key, root_action FROM runs WHERE name = ?", (run.name,)
        ).fetchone()
        if found is not None and found[1]:
            return  # submitted before: the first submission stands
        inputs: object = _EMPTY
        if run.inputs:
            size = len(run.inputs)
            inputs = size if size > settings.inputs_max else self._value(run.inputs)
        submission = self._value(run.submission, limit_keep=False) if run.submission else _EMPTY
        code = PHASE_CODES[run.phase]
        client = run.client
        values = (
            code,
            run.task,
            run.environment,
            run.root_action_id,
            client.client_id,
            client.user,
            client.host,
            run.created,
            run.created if code == _RUNNING else 0.0,
            inputs,
            run.inputs_preview[: settings.preview_max],
            schema.encode_labels(run.labels),
            submission,
        )
        if found is None:
            key = conn.execute(
                "INSERT INTO runs (phase, task, environment, root_action, client_id, user, "
                "host, created, started, inputs, inputs_preview, labels, submission, name, "
                "ended, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '')",
                (*values, run.name),
            ).lastrowid
            self._pending.new_runs += 1
        else:  # a run its actions made known before it was submitted
            key = found[0]
            conn.execute(
                "UPDATE runs SET phase = ?, task = ?, environment = ?, root_action = ?, "
                "client_id = ?, user = ?, host = ?, created = ?, started = ?, inputs = ?, "
                "inputs_preview = ?, labels = ?, submission = ? WHERE key = ?",
                (*values, key),
            )
        assert key is not None
        self._pending.run_keys[run.name] = key
        self._pending.fresh.add(key)
        if run.labels:
            conn.executemany(
                "INSERT OR IGNORE INTO labels (name, value, run_key) VALUES (?, ?, ?)",
                [(str(k), str(v), key) for k, v in run.labels],
            )

    def _progress(self, change: RunProgress) -> None:
        key = self._known(change.name)
        code = PHASE_CODES[change.phase]
        self.conn.execute(
            f"UPDATE runs SET phase = ?, started = CASE WHEN ? = {_RUNNING} AND started = 0 "
            f"THEN ? ELSE started END WHERE key = ? AND phase < {FIRST_TERMINAL}",
            (code, code, change.at, key),
        )

    def _known(self, name: str) -> int:
        return self.run_keys.get(name) or self._pending.run_keys.get(name) or self._key(name)

    def _end(self, end: RunEnded) -> None:
        key = self._known(end.name)
        conn = self.conn
        error = end.error
        if error is None:
            output = self._value(end.output) if end.output else _EMPTY
            error_text = ""
        else:
            output = self._value(error.pickled) if error.pickled else _EMPTY
            error_text = schema.encode_error(error)
        # The submission is for resubmitting an unfinished run: it goes now.
        held = conn.execute(
            "SELECT submission FROM runs WHERE key = ? AND typeof(submission) = 'text'", (key,)
        ).fetchone()
        if held is not None:
            conn.execute("UPDATE blobs SET refs = refs - 1 WHERE digest = ?", held)
        conn.execute(
            "UPDATE runs SET phase = ?, ended = ?, output = ?, error = ?, submission = NULL "
            "WHERE key = ?",
            (PHASE_CODES[end.phase], end.ended, output, error_text, key),
        )
        conn.execute("DELETE FROM calls WHERE run_key = ?", (key,))
        conn.execute("DELETE FROM replaying WHERE run_key = ?", (key,))
        self._pending.ended_runs.append(end.name)

    # -------------------------------------------------------------------- values

    def _value(self, data: Value, *, limit_keep: bool = True) -> object:
        """How a value is kept: its bytes, its file's digest, or (too large) its size."""
        size = len(data)
        if size <= self.settings.blob_threshold:
            return bytearray(data)
        if limit_keep and size > self.settings.value_max:
            return size
        digest = digest_of(data)
        row = self.conn.execute("SELECT size FROM blobs WHERE digest = ?", (digest,)).fetchone()
        if row is None or not self.blobs.exists(digest, size):
            self.blobs.write(digest, data)
            if row is None:
                self._pending.blob_bytes += size
        self.conn.execute(
            "INSERT INTO blobs (digest, size, refs) VALUES (?, ?, 1) "
            "ON CONFLICT (digest) DO UPDATE SET refs = refs + 1",
            (digest, size),
        )
        return digest
