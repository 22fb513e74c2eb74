"""The runs store's tables, and how the fields that are not columns are encoded.

One row per run, per finished action, per kept log line, per action's report. The action row is what
every task pays for, so it has only the columns a query needs plus the record's
plain fields, and no index whose inserts land at random places: a run's actions
are found by ``(run_key, action_id)`` and ``(run_key, parent)``, both of which
grow at their end as ids are handed out. ``parent`` is the number of the parent's
row in ``parents`` (0 for the run's root): the index then holds integers, not ids.
Call keys are random digests; they are indexed (``calls``) only for the runs being
replayed (see ``writer``).

A value column holds either the pickled bytes (a BLOB) or, for a value kept in a
file, the file's digest (TEXT); a log line's ``text`` holds the line (TEXT) or
the digest of its file (BLOB). A failed action keeps its pickled exception in
its ``output`` column, and its error's other fields as JSON in ``error``.

Times are REAL seconds since the epoch; 0 means "did not happen".

The writing connection (:func:`configure`) runs in WAL mode with ``synchronous =
NORMAL``: a commit appends to the WAL with no fsync, so it survives a killed process
(``kill -9``: what durable replay is for) and only a power loss can take the last
commits back; a checkpoint fsyncs. ``FULL`` would fsync every batch for that last
case alone. Measured per row (one row per statement, in a file in WAL mode): the two
indexes cost about 1.8 us of a row's 4.8; a WITHOUT ROWID table keyed by
``(run_key, action_id)`` instead of the rowid and ``actions_id`` cost the same as
this layout (its leaves hold the whole rows), so the rowid table stays: it keeps the
order actions ended in (the listing's order and cursors) at no cost.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from reuse_runtime.store.phases import PHASE_CODES, PHASES_BY_CODE
from reuse_runtime.store.records import Attempt, ErrorInfo

#: ``PRAGMA application_id``: marks the file as a reuse-runtime runs store.
APPLICATION_ID = 0x52524E53  # "RRNS"
#: ``PRAGMA user_version``: the layout below. A file of layout 1, 2 or 3 is brought up to it
#: at open (:func:`migrate`); a file of another version is moved aside.
VERSION = 4

#: Layout 2: each action's ``flyte.report``, the last flush of it (HTML, kept whole in
#: the row: a report is read as one piece, and replaced as one).
REPORTS = """
CREATE TABLE reports (
    run_key INTEGER NOT NULL,
    action_id TEXT NOT NULL,
    at REAL NOT NULL,
    html TEXT NOT NULL,
    PRIMARY KEY (run_key, action_id)
) WITHOUT ROWID;
"""

#: Layout 3: an action's parent is a number (:data:`PARENTS`), 0 for the run's root.
#: The parent index then holds two integers per action instead of a 32-character id:
#: its pages, and the WAL frames and checkpoint copies of them, are a fraction of what
#: they were (with the id in the row too, about a quarter of an action's bytes).
ACTIONS = """
CREATE TABLE actions (
    id INTEGER PRIMARY KEY,
    run_key INTEGER NOT NULL,
    action_id TEXT NOT NULL,
    parent INTEGER NOT NULL,
    call_key TEXT NOT NULL,
    task TEXT NOT NULL,
    environment TEXT NOT NULL,
    grp TEXT NOT NULL,
    phase INTEGER NOT NULL,
    created REAL NOT NULL,
    started REAL NOT NULL,
    ended REAL NOT NULL,
    replica TEXT NOT NULL,
    preview TEXT NOT NULL,
    output,
    output_size INTEGER,
    error TEXT NOT NULL,
    attempts TEXT NOT NULL
);
CREATE UNIQUE INDEX actions_id ON actions (run_key, action_id);
CREATE INDEX actions_parent ON actions (run_key, parent);
"""

#: Layout 3: the actions that have children, numbered (``actions.parent``). A row is
#: made when an action's first child is recorded, and goes with its run.
PARENTS = """
CREATE TABLE parents (
    no INTEGER PRIMARY KEY,
    run_key INTEGER NOT NULL,
    action_id TEXT NOT NULL
);
CREATE UNIQUE INDEX parents_id ON parents (run_key, action_id);
"""

#: Layout 2 to 3: number the parents, and copy the actions into a table that refers to
#: them by number (the parent index is made once, after the copy).
_NUMBER_PARENTS = (
    "INSERT INTO parents (run_key, action_id) "
    "SELECT DISTINCT run_key, parent_id FROM actions WHERE parent_id <> ''",
    "DROP INDEX actions_id",
    "DROP INDEX actions_parent",
    "ALTER TABLE actions RENAME TO actions_2",
    ACTIONS.replace("CREATE INDEX actions_parent ON actions (run_key, parent);", ""),
    "INSERT INTO actions (id, run_key, action_id, parent, call_key, task, environment, grp, "
    "phase, created, started, ended, replica, preview, output, output_size, error, attempts) "
    "SELECT o.id, o.run_key, o.action_id, coalesce((SELECT p.no FROM parents p WHERE "
    "p.run_key = o.run_key AND p.action_id = o.parent_id), 0), o.call_key, o.task, "
    "o.environment, o.grp, o.phase, o.created, o.started, o.ended, o.replica, o.preview, "
    "o.output, o.output_size, o.error, o.attempts FROM actions_2 o ORDER BY o.id",
    "DROP TABLE actions_2",
    "CREATE INDEX actions_parent ON actions (run_key, parent)",
)

#: Layout 4: the conditions (``flyte.new_condition``) of runs, as last changed: one row
#: each, written when it is created and when it ends. ``spec`` is its prompt, types,
#: timeout and webhook as JSON; ``value`` the JSON of the value it was signaled with.
CONDITIONS = """
CREATE TABLE IF NOT EXISTS conditions (
    run_key INTEGER NOT NULL,
    action_id TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    name TEXT NOT NULL,
    phase INTEGER NOT NULL,
    created REAL NOT NULL,
    ended REAL NOT NULL,
    spec TEXT NOT NULL,
    value TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (run_key, action_id)
) WITHOUT ROWID;
"""

TABLES = (
    """
CREATE TABLE runs (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    phase INTEGER NOT NULL,
    task TEXT NOT NULL,
    environment TEXT NOT NULL,
    root_action TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user TEXT NOT NULL,
    host TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL NOT NULL,
    ended REAL NOT NULL,
    inputs,
    inputs_size INTEGER,
    inputs_preview TEXT NOT NULL,
    output,
    output_size INTEGER,
    error TEXT NOT NULL,
    labels TEXT NOT NULL,
    submission
);
CREATE INDEX runs_created ON runs (created, key);
CREATE INDEX runs_unfinished ON runs (key) WHERE phase < 5;

CREATE TABLE labels (
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    run_key INTEGER NOT NULL,
    PRIMARY KEY (name, value, run_key)
) WITHOUT ROWID;
CREATE INDEX labels_run ON labels (run_key);


-- Finished actions per run and phase, kept by the writer batch by batch.
CREATE TABLE counts (
    run_key INTEGER NOT NULL,
    phase INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (run_key, phase)
) WITHOUT ROWID;

-- Call keys of the runs being replayed: the runs unfinished when the store opened.
CREATE TABLE calls (
    run_key INTEGER NOT NULL,
    call_key TEXT NOT NULL,
    action_id TEXT NOT NULL,
    PRIMARY KEY (run_key, call_key)
) WITHOUT ROWID;
CREATE TABLE replaying (run_key INTEGER PRIMARY KEY);

CREATE TABLE traces (
    run_key INTEGER NOT NULL,
    action_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    name TEXT NOT NULL,
    start REAL NOT NULL,
    duration REAL NOT NULL,
    error_type TEXT NOT NULL,
    PRIMARY KEY (run_key, action_id, n)
) WITHOUT ROWID;

CREATE TABLE logs (
    seq INTEGER PRIMARY KEY,
    run_key INTEGER NOT NULL,
    action_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    at REAL NOT NULL,
    stream INTEGER NOT NULL,
    text NOT NULL
);
CREATE INDEX logs_action ON logs (run_key, action_id, line);
CREATE INDEX logs_run ON logs (run_key, seq);

-- Value files and how many values refer to each.
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    refs INTEGER NOT NULL
) WITHOUT ROWID;

-- Runs removed by retention whose actions, logs and traces are still being deleted.
CREATE TABLE doomed (run_key INTEGER PRIMARY KEY);
"""
    + REPORTS
    + ACTIONS
    + PARENTS
    + CONDITIONS
)


#: Log streams as kept.
STREAM_CODES = {"stdout": 1, "stderr": 2}
STREAMS_BY_CODE = {1: "stdout", 2: "stderr"}

#: A traceback longer than this is cut in its middle (the end says where it raised).
TRACEBACK_MAX = 64 * 1024


def configure(conn: sqlite3.Connection, *, busy_timeout: float, wal_bytes: int) -> None:
    """The settings of a writing connection (every open). The WAL is checkpointed, and
    cut back, once it holds ``wal_bytes``: a part of the store's byte bound."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")
    # In WAL mode a commit is durable against a killed process without an fsync; only
    # a power loss can take the last commits back. A checkpoint still fsyncs.
    conn.execute("PRAGMA synchronous = NORMAL")
    # A WAL file is cut back to this after a checkpoint, so it cannot keep the size of
    # the largest transaction it ever held. Up to 16 MiB between checkpoints: the pages
    # every batch rewrites (the ends of the action table and its indexes) are copied
    # into the file once per checkpoint, not once per 4 MiB (~4% of a row's cost).
    pages = max(16, min(4000, wal_bytes // 4096))
    conn.execute(f"PRAGMA wal_autocheckpoint = {pages}")
    conn.execute(f"PRAGMA journal_size_limit = {pages * 4096}")
    conn.execute("PRAGMA cache_size = -16384")  # KiB
    conn.execute("PRAGMA temp_store = MEMORY")


def create(conn: sqlite3.Connection) -> None:
    """Make the tables of an empty database (in one transaction)."""
    # auto_vacuum must be chosen before the first table: freed pages can then be given
    # back to the file system, so the file shrinks after retention.
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        if version(conn) == 0 and not conn.execute("SELECT 1 FROM sqlite_master").fetchone():
            _statements(conn, TABLES)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a store of layout 1, 2 or 3 to this layout (one transaction): layout 2
    added the reports, layout 3 numbers the parents, layout 4 adds the conditions."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = version(conn)
        if found in (1, 2, 3) and mismatch_of_application(conn) is None:
            if found == 1:
                conn.execute(REPORTS)
            if found in (1, 2):
                _statements(conn, PARENTS)
                for statement in _NUMBER_PARENTS:
                    _statements(conn, statement)
            conn.execute(CONDITIONS)
            conn.execute(f"PRAGMA user_version = {VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(conn: sqlite3.Connection, script: str) -> None:
    """Run the ``;``-separated statements of ``script`` in the transaction under way."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def mismatch_of_application(conn: sqlite3.Connection) -> str | None:
    app = int(conn.execute("PRAGMA application_id").fetchone()[0])
    if app != APPLICATION_ID:
        return f"it is not a reuse-runtime runs store (application_id {app})"
    return None


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def mismatch(conn: sqlite3.Connection) -> str | None:
    """Why this database is not a runs store of this version, or None."""
    problem = mismatch_of_application(conn)
    if problem is not None:
        return problem
    found = version(conn)
    if found != VERSION:
        return f"it is a runs store of layout {found}, this reuse-runtime reads {VERSION}"
    return None


# ------------------------------------------------------------------ encoded fields


def cut(text: str, limit: int) -> str:
    """``text`` with its middle cut when longer than ``limit`` characters, saying so."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n... [{len(text) - 2 * half} characters cut] ...\n{text[-half:]}"


def encode_error(error: ErrorInfo) -> str:
    return json.dumps([error.kind, error.type, error.message, cut(error.traceback, TRACEBACK_MAX)])


def decode_error(text: str, pickled: bytes = b"") -> ErrorInfo | None:
    if not text:
        return None
    kind, type_name, message, traceback = json.loads(text)
    return ErrorInfo(kind, type_name, message, traceback, pickled)


def encode_attempts(attempts: tuple[Attempt, ...]) -> str:
    return json.dumps(
        [
            [
                a.attempt,
                a.replica,
                a.started,
                a.ended,
                PHASE_CODES[a.phase],
                None
                if a.error is None
                else [a.error.kind, a.error.type, a.error.message, a.error.traceback],
            ]
            for a in attempts
        ]
    )


def decode_attempts(text: str) -> tuple[Attempt, ...]:
    if not text:
        return ()
    found: list[Any] = json.loads(text)
    return tuple(
        Attempt(
            attempt,
            replica,
            started,
            ended,
            PHASES_BY_CODE[phase],
            None if error is None else ErrorInfo(*error),
        )
        for attempt, replica, started, ended, phase, error in found
    )


def encode_labels(labels: tuple[tuple[str, str], ...]) -> str:
    return json.dumps([[str(k), str(v)] for k, v in labels]) if labels else ""


def decode_labels(text: str) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    return tuple((k, v) for k, v in json.loads(text))
