"""Reading the runs store: its own read-only connections, never the writer's.

In WAL mode a reader sees the last commit and never blocks the writer, so a slow
page of the UI never holds up what the controller records. Each call takes a
connection from a small pool, reads one consistent snapshot, and gives it back.
Every read is bounded: a query still running after ``timeout`` seconds is
interrupted, and raises :class:`~reuse_runtime.store.errors.StoreError`.

These calls block: from an event loop, run them in a thread
(``await asyncio.to_thread(store.get_run, name)``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from reuse_runtime.conditions import ConditionInfo
from reuse_runtime.store import schema
from reuse_runtime.store.blobs import BlobFiles
from reuse_runtime.store.conditions import read_conditions
from reuse_runtime.store.errors import StoreClosedError, StoreError
from reuse_runtime.store.phases import PHASE_CODES, PHASES_BY_CODE, ActionPhase, parse_phase
from reuse_runtime.store.records import ClientInfo, Trace
from reuse_runtime.store.views import (
    ActionInfo,
    ActionReport,
    ChildCounts,
    GroupSummary,
    LogEntry,
    Page,
    ReplayOutcome,
    RunFilter,
    RunInfo,
    UnfinishedRun,
)

_ALL = RunFilter()
#: Idle read connections kept open.
_POOL = 4

_RUN_COLUMNS = (
    "key, name, phase, task, environment, root_action, client_id, user, host, created, "
    "started, ended, inputs_preview, error, labels, "
    "CASE typeof(inputs) WHEN 'blob' THEN length(inputs) WHEN 'integer' THEN NULL "
    "WHEN 'text' THEN (SELECT size FROM blobs WHERE digest = inputs) END, "
    "CASE typeof(output) WHEN 'blob' THEN length(output) WHEN 'integer' THEN NULL "
    "WHEN 'text' THEN (SELECT size FROM blobs WHERE digest = output) END"
)
_ACTION_COLUMNS = (
    "a.id, a.action_id, "
    "CASE a.parent WHEN 0 THEN '' ELSE (SELECT p.action_id FROM parents p WHERE p.no = a.parent) "
    "END, a.call_key, a.task, a.environment, a.grp, a.phase, "
    "a.created, a.started, a.ended, a.replica, a.preview, a.error, a.attempts, "
    "CASE WHEN a.error <> '' THEN NULL WHEN typeof(a.output) = 'blob' THEN length(a.output) "
    "WHEN typeof(a.output) = 'text' THEN (SELECT size FROM blobs WHERE digest = a.output) END, "
    "(SELECT count(*) FROM actions c WHERE c.run_key = a.run_key AND c.parent = "
    "(SELECT p.no FROM parents p WHERE p.run_key = a.run_key AND p.action_id = a.action_id))"
)


class SqliteRunReader:
    """Read-only access to a runs store file (the CLI can read past runs with no
    controller running: ``SqliteRunReader(path)``)."""

    def __init__(self, path: Path, *, timeout: float = 10.0, blobs: BlobFiles | None = None):
        self.path = path
        self.timeout = timeout
        self.blobs = blobs or BlobFiles(path.with_name(path.name + ".blobs"))
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def close_reads(self) -> None:
        """Close the idle read connections; later reads fail (idempotent)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # --------------------------------------------------------------------- runs

    def get_run(self, name: str) -> RunInfo | None:
        """The run called ``name``, or None."""
        with self._snapshot() as conn:
            sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE name = ?"
            row = conn.execute(sql, (name,)).fetchone()
            if row is None:
                return None
            return self._runs(conn, [row])[0]

    def list_runs(
        self, where: RunFilter = _ALL, *, limit: int = 50, cursor: str | None = None
    ) -> Page[RunInfo]:
        """Runs newest first, ``limit`` at a time; pass the page's ``cursor`` for the next."""
        clauses: list[str] = []
        params: list[Any] = []
        if where.phases:
            codes = [PHASE_CODES[parse_phase(p)] for p in where.phases]
            clauses.append(f"phase IN ({','.join('?' * len(codes))})")
            params.extend(codes)
        for column, value in (
            ("environment", where.environment),
            ("task", where.task),
            ("user", where.user),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if where.name_contains:
            clauses.append("instr(name, ?) > 0")
            params.append(where.name_contains)
        for label, value in where.labels:
            clauses.append(
                "EXISTS (SELECT 1 FROM labels l WHERE l.name = ? AND l.value = ? "
                "AND l.run_key = runs.key)"
            )
            params.extend((label, value))
        for label in where.label_keys:
            clauses.append(
                "EXISTS (SELECT 1 FROM labels l WHERE l.name = ? AND l.run_key = runs.key)"
            )
            params.append(label)
        if where.created_after is not None:
            clauses.append("created >= ?")
            params.append(where.created_after)
        if where.created_before is not None:
            clauses.append("created <= ?")
            params.append(where.created_before)
        if cursor is not None:
            created, key = _parse_cursor(cursor, "r", 2)
            clauses.append("(created, key) < (?, ?)")
            params.extend((created, int(key)))
        sql = f"SELECT {_RUN_COLUMNS} FROM runs"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY created DESC, key DESC LIMIT ?"
        limit = _limit(limit)
        params.append(limit + 1)
        with self._snapshot() as conn:
            rows = conn.execute(sql, params).fetchall()
            more = len(rows) > limit
            rows = rows[:limit]
            runs = self._runs(conn, rows)
        next_cursor = f"r:{rows[-1][9]!r}:{rows[-1][0]}" if more and rows else None
        return Page(tuple(runs), next_cursor)

    def phase_counts(self, run: str) -> dict[ActionPhase, int]:
        """The run's finished actions per phase."""
        with self._snapshot() as conn:
            return {
                PHASES_BY_CODE[code]: n
                for code, n in conn.execute(
                    "SELECT c.phase, c.n FROM counts c JOIN runs r ON r.key = c.run_key "
                    "WHERE r.name = ? ORDER BY c.phase",
                    (run,),
                )
            }

    def unfinished_runs(self) -> tuple[UnfinishedRun, ...]:
        """Every run without a terminal phase, oldest first, with its root's submission
        (what a restarted controller submits again)."""
        with self._snapshot() as conn:
            rows = conn.execute(
                "SELECT name, root_action, task, environment, phase, created, submission "
                "FROM runs WHERE phase < 5 ORDER BY created, key"
            ).fetchall()
            return tuple(
                UnfinishedRun(
                    name, root, task, env, PHASES_BY_CODE[phase], created, self._value(sub) or b""
                )
                for name, root, task, env, phase, created, sub in rows
            )

    def run_inputs(self, run: str) -> bytes | None:
        """The run's pickled inputs, or None (not kept, or no such run)."""
        return self._run_value(run, "inputs")

    def run_output(self, run: str) -> bytes | None:
        """The run's pickled output (or pickled exception, when it failed), or None."""
        return self._run_value(run, "output")

    # ------------------------------------------------------------------ actions

    def list_actions(
        self,
        run: str,
        *,
        parent: str | None = None,
        group: str | None = None,
        phases: Sequence[ActionPhase | str] = (),
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[ActionInfo]:
        """The run's finished actions in the order they ended; with ``parent``, only its
        children ("" for the root); with ``group``, only that ``flyte.group()``'s."""
        clauses = ["a.run_key = (SELECT key FROM runs WHERE name = ?)"]
        params: list[Any] = [run]
        if parent is not None:
            clauses.append("a.parent = ?")
        if group is not None:
            clauses.append("a.grp = ?")
            params.append(group)
        if phases:
            codes = [PHASE_CODES[parse_phase(p)] for p in phases]
            clauses.append(f"a.phase IN ({','.join('?' * len(codes))})")
            params.extend(codes)
        if cursor is not None:
            (after,) = _parse_cursor(cursor, "a", 1)
            clauses.append("a.id > ?")
            params.append(int(after))
        limit = _limit(limit)
        params.append(limit + 1)
        with self._snapshot() as conn:
            if parent is not None:  # its number, in the snapshot the listing reads
                params.insert(1, _parent_number(conn, run, parent))
            rows = conn.execute(
                f"SELECT {_ACTION_COLUMNS} FROM actions a WHERE {' AND '.join(clauses)} "
                f"ORDER BY a.id LIMIT ?",
                params,
            ).fetchall()
            more = len(rows) > limit
            rows = rows[:limit]
            actions = self._actions(conn, run, rows)
        return Page(tuple(actions), f"a:{rows[-1][0]}" if more and rows else None)

    def get_action(self, run: str, action_id: str) -> ActionInfo | None:
        """The finished action ``action_id`` of ``run``, or None."""
        with self._snapshot() as conn:
            rows = conn.execute(
                f"SELECT {_ACTION_COLUMNS} FROM actions a WHERE a.run_key = "
                f"(SELECT key FROM runs WHERE name = ?) AND a.action_id = ?",
                (run, action_id),
            ).fetchall()
            found = self._actions(conn, run, rows)
        return found[0] if found else None

    def action_output(self, run: str, action_id: str) -> bytes | None:
        """The action's pickled output (or pickled exception, when it failed), or None."""
        with self._snapshot() as conn:
            row = conn.execute(
                "SELECT output FROM actions WHERE run_key = (SELECT key FROM runs WHERE name = ?) "
                "AND action_id = ?",
                (run, action_id),
            ).fetchone()
        return None if row is None else self._value(row[0])

    def groups(self, run: str, parent: str) -> tuple[GroupSummary, ...]:
        """The finished children of ``parent`` by ``flyte.group()``, with counts per phase
        (what the UI folds)."""
        found: dict[str, dict[ActionPhase, int]] = {}
        with self._snapshot() as conn:
            for group, code, n in conn.execute(
                "SELECT grp, phase, count(*) FROM actions WHERE run_key = "
                "(SELECT key FROM runs WHERE name = ?) AND parent = ? GROUP BY grp, phase",
                (run, _parent_number(conn, run, parent)),
            ):
                found.setdefault(group, {})[PHASES_BY_CODE[code]] = n
        return tuple(GroupSummary(group, counts) for group, counts in sorted(found.items()))

    def child_counts(self, run: str, parent: str, *, since: int = 0) -> ChildCounts:
        """The finished children of ``parent`` that ended after the mark ``since``, counted
        by ``(group, phase)``, with the mark to pass next time: a page that follows a run
        reads only what finished in between (:meth:`groups` reads every child)."""
        found: dict[tuple[str, ActionPhase], int] = {}
        mark = since
        with self._snapshot() as conn:
            for group, code, n, last in conn.execute(
                "SELECT grp, phase, count(*), max(id) FROM actions WHERE run_key = "
                "(SELECT key FROM runs WHERE name = ?) AND parent = ? AND id > ? "
                "GROUP BY grp, phase",
                (run, _parent_number(conn, run, parent), since),
            ):
                found[(group, PHASES_BY_CODE[code])] = n
                mark = max(mark, int(last))
        return ChildCounts(found, mark)

    def replayed(self, run: str, call_key: str) -> ReplayOutcome | None:
        """What the child with ``call_key`` of ``run`` ended with, if it was recorded.

        Fast (an index) for the runs that were unfinished when the store opened: those a
        restarted controller replays. Children of runs started since are in the
        controller's own replay log; for them this is a scan of the run's actions.
        """
        with self._snapshot() as conn:
            row = conn.execute(
                "SELECT a.action_id, a.phase, a.output, a.error FROM calls c JOIN actions a "
                "ON a.run_key = c.run_key AND a.action_id = c.action_id "
                "WHERE c.run_key = (SELECT key FROM runs WHERE name = ?) AND c.call_key = ?",
                (run, call_key),
            ).fetchone()
            if row is None:
                row = conn.execute(
                    "SELECT action_id, phase, output, error FROM actions WHERE run_key = "
                    "(SELECT key FROM runs WHERE name = ?) AND call_key = ? "
                    "AND NOT EXISTS (SELECT 1 FROM replaying r WHERE r.run_key = actions.run_key) "
                    "ORDER BY id DESC LIMIT 1",
                    (run, call_key),
                ).fetchone()
            if row is None:
                return None
            action_id, code, output, error_text = row
            return self._outcome(action_id, code, output, error_text)

    def replay_outcomes(self, run: str) -> dict[str, ReplayOutcome]:
        """Every child of ``run`` recorded with a call key, by key, with what it ended with:
        what a restarted controller answers the run's calls from (durable replay). Only
        for the runs that were unfinished when the store opened (the others are empty)."""
        with self._snapshot() as conn:
            rows = conn.execute(
                "SELECT c.call_key, a.action_id, a.phase, a.output, a.error FROM calls c "
                "JOIN actions a ON a.run_key = c.run_key AND a.action_id = c.action_id "
                "WHERE c.run_key = (SELECT key FROM runs WHERE name = ?)",
                (run,),
            ).fetchall()
            found: dict[str, ReplayOutcome] = {}
            for call_key, action_id, code, output, error_text in rows:
                found[call_key] = self._outcome(action_id, code, output, error_text)
        return found

    def _outcome(self, action_id: str, code: int, output: object, error_text: str) -> ReplayOutcome:
        value = self._value(output)
        if error_text:
            return ReplayOutcome(
                action_id, PHASES_BY_CODE[code], None, schema.decode_error(error_text, value or b"")
            )
        return ReplayOutcome(action_id, PHASES_BY_CODE[code], value, None)

    # --------------------------------------------------------------------- logs

    def action_logs(
        self, run: str, action_id: str, *, after: int = 0, limit: int = 1000
    ) -> tuple[LogEntry, ...]:
        """The action's kept lines with ``seq`` past ``after``, in order."""
        return self._logs(
            "run_key = (SELECT key FROM runs WHERE name = ?) AND action_id = ? AND seq > ? "
            "ORDER BY line",
            (run, action_id, after),
            limit,
        )

    def run_logs(self, run: str, *, after: int = 0, limit: int = 1000) -> tuple[LogEntry, ...]:
        """Every kept line of the run's actions with ``seq`` past ``after``, in arrival order."""
        return self._logs(
            "run_key = (SELECT key FROM runs WHERE name = ?) AND seq > ? ORDER BY seq",
            (run, after),
            limit,
        )

    def search_logs(self, run: str, text: str, *, limit: int = 100) -> tuple[LogEntry, ...]:
        """The run's kept lines containing ``text`` (case-sensitive), in arrival order. Lines
        kept as files (longer than the blob threshold) are not searched."""
        return self._logs(
            "run_key = (SELECT key FROM runs WHERE name = ?) AND typeof(text) = 'text' "
            "AND instr(text, ?) > 0 ORDER BY seq",
            (run, text),
            limit,
        )

    # ------------------------------------------------------------------ reports

    def action_report(self, run: str, action_id: str) -> ActionReport | None:
        """The action's ``flyte.report`` as last flushed, or None when it has none."""
        with self._snapshot() as conn:
            row = conn.execute(
                "SELECT at, html FROM reports WHERE run_key = "
                "(SELECT key FROM runs WHERE name = ?) AND action_id = ?",
                (run, action_id),
            ).fetchone()
        return None if row is None else ActionReport(action_id, row[0], row[1])

    # ------------------------------------------------------------------ conditions

    def list_conditions(self, run: str, parent: str | None = None) -> list[ConditionInfo]:
        """The run's conditions as last recorded, oldest first (``parent``: its own)."""
        with self._snapshot() as conn:
            return read_conditions(conn, run, parent)

    # ------------------------------------------------------------------ helpers

    def _logs(self, where: str, params: tuple[Any, ...], limit: int) -> tuple[LogEntry, ...]:
        with self._snapshot() as conn:
            rows = conn.execute(
                f"SELECT l.seq, l.action_id, l.line, l.at, l.stream, l.text, "
                f"coalesce(a.task, '') FROM (SELECT * FROM logs WHERE {where} LIMIT ?) l "
                f"LEFT JOIN actions a ON a.run_key = l.run_key AND a.action_id = l.action_id "
                f"ORDER BY l.seq",
                (*params, _limit(limit)),
            ).fetchall()
        found = []
        last: dict[str, int] = {}
        for seq, action_id, line, at, stream, text, task in rows:
            if not isinstance(text, str):
                text = self.blobs.read(bytes(text).decode()).decode(errors="replace")
            previous = last.get(action_id)
            dropped = line - previous - 1 if previous is not None and line > previous + 1 else 0
            last[action_id] = line
            name = schema.STREAMS_BY_CODE.get(stream, "")
            found.append(LogEntry(seq, action_id, line, at, name, text, dropped, task))
        return tuple(found)

    def _runs(self, conn: sqlite3.Connection, rows: list[Any]) -> list[RunInfo]:
        keys = [row[0] for row in rows]
        counts: dict[int, dict[ActionPhase, int]] = {key: {} for key in keys}
        if keys:
            for key, code, n in conn.execute(
                f"SELECT run_key, phase, n FROM counts WHERE run_key IN "
                f"({','.join('?' * len(keys))})",
                keys,
            ):
                counts[key][PHASES_BY_CODE[code]] = n
        return [
            RunInfo(
                name=name,
                phase=PHASES_BY_CODE[phase],
                task=task,
                environment=env,
                root_action_id=root,
                client=ClientInfo(client_id, user, host),
                created=created,
                started=started or None,
                ended=ended or None,
                inputs_preview=preview,
                inputs_size=inputs_size,
                output_size=None if error else output_size,
                error=schema.decode_error(error),
                labels=schema.decode_labels(labels),
                counts=counts[key],
            )
            for (
                key,
                name,
                phase,
                task,
                env,
                root,
                client_id,
                user,
                host,
                created,
                started,
                ended,
                preview,
                error,
                labels,
                inputs_size,
                output_size,
            ) in rows
        ]

    def _actions(self, conn: sqlite3.Connection, run: str, rows: list[Any]) -> list[ActionInfo]:
        traces: dict[str, list[Any]] = {}
        if rows:
            ids = [row[1] for row in rows]
            for action_id, name, start, duration, error_type in conn.execute(
                f"SELECT action_id, name, start, duration, error_type FROM traces "
                f"WHERE run_key = (SELECT key FROM runs WHERE name = ?) "
                f"AND action_id IN ({','.join('?' * len(ids))}) ORDER BY action_id, n",
                (run, *ids),
            ):
                traces.setdefault(action_id, []).append(Trace(name, start, duration, error_type))
        found = []
        for row in rows:
            (_, action_id, parent, call_key, task, env, group, code, created, started, ended,
             replica, preview, error, attempts, output_size, children) = row  # fmt: skip
            found.append(
                ActionInfo(
                    run=run,
                    action_id=action_id,
                    parent_id=parent,
                    call_key=call_key,
                    task=task,
                    environment=env,
                    group=group,
                    phase=PHASES_BY_CODE[code],
                    created=created,
                    started=started or None,
                    ended=ended or None,
                    replica=replica,
                    inputs_preview=preview,
                    output_size=output_size,
                    error=schema.decode_error(error),
                    attempts=schema.decode_attempts(attempts),
                    traces=tuple(traces.get(action_id, ())),
                    children=children,
                )
            )
        return found

    def _run_value(self, run: str, column: str) -> bytes | None:
        with self._snapshot() as conn:
            row = conn.execute(f"SELECT {column} FROM runs WHERE name = ?", (run,)).fetchone()
        return None if row is None else self._value(row[0])

    def _value(self, stored: object) -> bytes | None:
        """A value column's content: bytes, a file's digest, or the size of a value not kept."""
        if isinstance(stored, bytes):
            return stored
        if isinstance(stored, str):
            return self.blobs.read(stored)
        return None

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection in a read transaction (one consistent snapshot), its
        queries interrupted past the timeout."""
        conn = self._checkout()
        deadline = time.monotonic() + self.timeout
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise StoreError(
                    f"a read of the runs store {self.path} took over {self.timeout:g} s"
                ) from None
            raise StoreError(f"the runs store {self.path} cannot be read: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"the runs store {self.path} cannot be read: {exc}") from None
        finally:
            conn.set_progress_handler(None, 0)
            self._checkin(conn)

    def _checkout(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise StoreClosedError(f"the runs store {self.path} is closed")
            if self._idle:
                return self._idle.pop()
        if not self.path.exists():
            raise StoreError(f"there is no runs store at {self.path}")
        conn = sqlite3.connect(
            f"file:{quote(str(self.path))}?mode=ro",
            uri=True,
            timeout=self.timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        return conn

    def _checkin(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < _POOL:
                self._idle.append(conn)
                return
        conn.close()


def _limit(limit: int) -> int:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return min(limit, 10_000)


def _parse_cursor(cursor: str, kind: str, parts: int) -> list[float]:
    """The numbers in a cursor this reader made (``kind:n:n``); StoreError otherwise."""
    pieces = cursor.split(":")
    try:
        if pieces[0] != kind or len(pieces) != parts + 1:
            raise ValueError
        numbers = [float(piece) for piece in pieces[1:]]
        if not all(n == n and abs(n) != float("inf") for n in numbers):
            raise ValueError
    except ValueError:
        raise StoreError(f"{cursor!r} is not a cursor of this listing") from None
    return numbers


def _parent_number(conn: sqlite3.Connection, run: str, parent: str) -> int:
    """``actions.parent`` of the children of action ``parent`` of ``run``: 0 for the root's
    ("" names no action), -1 (nothing) for an action with no recorded children."""
    if not parent:
        return 0
    row = conn.execute(
        "SELECT no FROM parents WHERE run_key = (SELECT key FROM runs WHERE name = ?) "
        "AND action_id = ?",
        (run, parent),
    ).fetchone()
    return -1 if row is None else int(row[0])
