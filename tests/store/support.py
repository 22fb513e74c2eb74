"""Records for the runs store's tests, a flush that must succeed, and files of earlier layouts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from reuse_runtime.store import (
    ActionPhase,
    ActionRecord,
    RunEnded,
    RunSubmitted,
    SqliteRunStore,
)

NOW = 1_800_000_000.0


def action(run: str, n: int, **fields: object) -> ActionRecord:
    """The ``n``-th child of ``run``'s root ``<run>-root``, succeeded with output ``b"v<n>"``."""
    base = ActionRecord(
        run=run,
        action_id=f"{run}-a{n}",
        parent_id=f"{run}-root",
        call_key=f"{run}-k{n}",
        task="child",
        environment="env",
        group="",
        phase=ActionPhase.SUCCEEDED,
        created=NOW + n,
        started=NOW + n + 0.5,
        ended=NOW + n + 1,
        replica="env-1",
        inputs_preview=f"({n},)",
        output=f"v{n}".encode(),
    )
    return base._replace(**fields)


def submitted(name: str, created: float = NOW, **fields: object) -> RunSubmitted:
    return RunSubmitted(
        name=name,
        task=str(fields.pop("task", "main")),
        environment=str(fields.pop("environment", "env")),
        root_action_id=f"{name}-root",
        created=created,
        **fields,  # type: ignore[arg-type]
    )


def ended(name: str, phase: ActionPhase = ActionPhase.SUCCEEDED) -> RunEnded:
    return RunEnded(name, phase, NOW + 1000, b"out")


def record_run(store: SqliteRunStore, name: str, actions: int = 2, created: float = NOW) -> None:
    """A whole finished run: submitted, ``actions`` children and its root, ended."""
    store.run_submitted(submitted(name, created))
    for n in range(actions):
        store.action_ended(action(name, n))
    store.action_ended(action(name, -1, action_id=f"{name}-root", parent_id="", call_key=""))
    store.run_ended(ended(name))


def flushed(store: SqliteRunStore) -> SqliteRunStore:
    assert store.flush(timeout=30), store.statistics()
    return store


#: Layout 3 back to layout 2, as layout 2 kept an action's parent: its id, in the row
#: and in the parent index.
_TO_LAYOUT_2 = """
BEGIN;
DROP INDEX actions_id;
DROP INDEX actions_parent;
ALTER TABLE actions RENAME TO actions_3;
CREATE TABLE actions (
    id INTEGER PRIMARY KEY,
    run_key INTEGER NOT NULL,
    action_id TEXT NOT NULL,
    parent_id TEXT NOT NULL,
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
INSERT INTO actions SELECT a.id, a.run_key, a.action_id,
    coalesce((SELECT p.action_id FROM parents p WHERE p.no = a.parent), ''),
    a.call_key, a.task, a.environment, a.grp, a.phase, a.created, a.started, a.ended,
    a.replica, a.preview, a.output, a.output_size, a.error, a.attempts FROM actions_3 a;
DROP TABLE actions_3;
DROP TABLE parents;
CREATE UNIQUE INDEX actions_id ON actions (run_key, action_id);
CREATE INDEX actions_parent ON actions (run_key, parent_id);
PRAGMA user_version = 2;
COMMIT;
"""


def as_layout(path: Path, version: int) -> None:
    """Make the store at ``path`` (closed) a file of layout ``version`` (1 or 2), as that
    layout wrote it."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executescript(_TO_LAYOUT_2)
        if version == 1:  # no reports yet
            conn.executescript("DROP TABLE reports; PRAGMA user_version = 1;")
        assert conn.execute("PRAGMA user_version").fetchone() == (version,)
    finally:
        conn.close()
