"""Retention: which finished runs go, and removing them a bounded slice at a time.

The store keeps the runs of the last ``max_age_days`` days, at most ``max_runs``
runs, and its bytes (database, WAL, value files) under ``max_bytes``. Past any of
these, the oldest *finished* runs go first; an unfinished run is never removed.

Removing a run is two steps, so that no transaction holds the writer for long:

1. :func:`doom` (one transaction): the run rows go, with their labels, counts,
   reports and replay keys, the value files nothing refers to any more are deleted, and the
   runs' keys are written to ``doomed``. Readers no longer see these runs.
2. :func:`sweep_doomed` (one transaction per call): at most ``limit`` actions, log
   lines and traces of doomed runs go; a run whose rows are all gone leaves
   ``doomed``. A writer killed halfway resumes from the table.

:func:`decide` is the policy, a pure function of the numbers.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from reuse_runtime.store.blobs import BlobFiles
from reuse_runtime.store.phases import FIRST_TERMINAL

DAY = 86_400.0
#: Past this share of ``max_bytes``, runs go until the store is under ``LOW_WATER``.
HIGH_WATER = 0.80
LOW_WATER = 0.65


@dataclass(frozen=True, slots=True)
class Usage:
    """What the store holds now."""

    runs: int
    finished: int
    #: Bytes in use: database pages not free, the WAL, value files.
    used_bytes: int


@dataclass(frozen=True, slots=True)
class Decision:
    """How many of the oldest finished runs go, and the age before which all go."""

    by_count: int
    by_bytes: int
    created_before: float

    @property
    def oldest(self) -> int:
        return max(self.by_count, self.by_bytes)


def decide(
    usage: Usage, *, now: float, max_runs: int, max_age_days: float, max_bytes: int
) -> Decision:
    """The runs to remove: the excess over ``max_runs``; enough of the oldest to bring the
    bytes under the low-water mark once past the high one (by the average bytes of a
    run); and every finished run created before ``now - max_age_days``."""
    by_count = max(0, usage.runs - max_runs)
    by_bytes = 0
    if usage.used_bytes > max_bytes * HIGH_WATER and usage.runs:
        per_run = usage.used_bytes / usage.runs
        excess = usage.used_bytes - max_bytes * LOW_WATER
        by_bytes = min(usage.finished, max(1, math.ceil(excess / per_run)))
    return Decision(by_count, by_bytes, now - max_age_days * DAY)


def choose(conn: sqlite3.Connection, decision: Decision, *, batch: int = 500) -> list[int]:
    """The keys of the finished runs ``decision`` removes, oldest first (at most ``batch``)."""
    keys = [
        key
        for (key,) in conn.execute(
            f"SELECT key FROM runs WHERE phase >= {FIRST_TERMINAL} AND created < ? "
            f"ORDER BY created, key LIMIT ?",
            (decision.created_before, batch),
        )
    ]
    if decision.oldest and len(keys) < batch:
        more = conn.execute(
            f"SELECT key FROM runs WHERE phase >= {FIRST_TERMINAL} ORDER BY created, key LIMIT ?",
            (min(decision.oldest, batch),),
        )
        chosen = set(keys)
        keys.extend(key for (key,) in more if key not in chosen)
    return keys[:batch]


def doom(conn: sqlite3.Connection, keys: Sequence[int], blobs: BlobFiles) -> int:
    """Remove the runs ``keys`` from sight and release their value files (inside the
    caller's transaction). Returns the bytes of the files deleted."""
    if not keys:
        return 0
    marks = ",".join("?" * len(keys))
    # Every reference these runs hold to a value file: run values, action values, log lines.
    released: dict[str, int] = {}
    for query in (
        f"SELECT inputs FROM runs WHERE key IN ({marks}) AND typeof(inputs) = 'text'",
        f"SELECT output FROM runs WHERE key IN ({marks}) AND typeof(output) = 'text'",
        f"SELECT submission FROM runs WHERE key IN ({marks}) AND typeof(submission) = 'text'",
        f"SELECT output FROM actions WHERE run_key IN ({marks}) AND typeof(output) = 'text'",
        f"SELECT CAST(text AS TEXT) FROM logs WHERE run_key IN ({marks}) AND typeof(text) = 'blob'",
    ):
        for (digest,) in conn.execute(query, keys):
            released[digest] = released.get(digest, 0) + 1
    conn.executemany(
        "UPDATE blobs SET refs = refs - ? WHERE digest = ?",
        [(n, digest) for digest, n in released.items()],
    )
    freed = unreferenced(conn, blobs)
    for table in ("labels", "counts", "calls", "replaying", "reports", "parents", "conditions"):
        conn.execute(f"DELETE FROM {table} WHERE run_key IN ({marks})", keys)
    conn.execute(f"DELETE FROM runs WHERE key IN ({marks})", keys)
    conn.executemany("INSERT OR IGNORE INTO doomed (run_key) VALUES (?)", [(k,) for k in keys])
    return freed


def unreferenced(conn: sqlite3.Connection, blobs: BlobFiles) -> int:
    """Delete the value files nothing refers to (inside the caller's transaction, so that
    no other writer can take a reference meanwhile). Returns their bytes."""
    gone = conn.execute("SELECT digest, size FROM blobs WHERE refs <= 0").fetchall()
    for digest, _ in gone:
        blobs.remove(digest)
    conn.execute("DELETE FROM blobs WHERE refs <= 0")
    return sum(size for _, size in gone)


def sweep_doomed(conn: sqlite3.Connection, *, limit: int) -> bool:
    """Delete up to ``limit`` rows of each kind of the doomed runs (inside the caller's
    transaction). Returns True when doomed runs remain."""
    doomed = [key for (key,) in conn.execute("SELECT run_key FROM doomed ORDER BY run_key")]
    budget = limit
    for key in doomed:
        if budget <= 0:
            return True
        removed = 0
        for table, rowid in (("actions", "id"), ("logs", "seq")):
            removed += conn.execute(
                f"DELETE FROM {table} WHERE {rowid} IN "
                f"(SELECT {rowid} FROM {table} WHERE run_key = ? LIMIT ?)",
                (key, budget),
            ).rowcount
        removed += conn.execute("DELETE FROM traces WHERE run_key = ?", (key,)).rowcount
        if removed < budget:
            conn.execute("DELETE FROM doomed WHERE run_key = ?", (key,))
        budget -= removed
    return budget <= 0


def usage(conn: sqlite3.Connection, *, wal_bytes: int, blob_bytes: int) -> Usage:
    """The numbers :func:`decide` needs, read from the database."""
    runs, finished = conn.execute(
        f"SELECT count(*), count(*) FILTER (WHERE phase >= {FIRST_TERMINAL}) FROM runs"
    ).fetchone()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    return Usage(int(runs), int(finished), (pages - free) * size + wal_bytes + blob_bytes)
