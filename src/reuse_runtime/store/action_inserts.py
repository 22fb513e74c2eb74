"""A batch's action rows into the ``actions`` table, in order, in as few bound
parameters as their likeness allows.

Binding a parameter is a large part of a row's cost (a text one is copied by
SQLite), so rows that share their run, parent, task, environment, group and phase,
and have no preview, error or attempts (the common action: a child like its
siblings, succeeded on its first try), are *shaped*: a statement binds the shared
fields once, as ``?1`` to ``?6``, writes the empty ones as literals, and binds 7
fields per row instead of 16. Other rows, and runs of fewer than
``_SHAPED_MIN`` alike rows, take the general statement.

Rows go in the order given, statement after statement: a later row of the same
action replaces an earlier one, and the row ids keep the order actions ended in.
Both kinds of statement write many rows at once (one multi-row ``VALUES``): a
statement's bind, step and reset, and the GIL the sqlite3 module lets go of around
each step, are paid once per that many rows.
"""

from __future__ import annotations

import sqlite3
from functools import cache

#: What shaped rows share: run key, parent number, task, environment, group, phase code.
Shape = tuple[int, int, str, str, str, int]
#: The rows of a batch in order: (a shape and each row's ``SHAPED_FIELDS``) or (None and
#: each row's ``GENERAL_FIELDS``), one after another in a flat list.
Segments = list[tuple[Shape | None, list[object]]]

#: A general row: run key, action id, parent, call key, task, environment, group, phase,
#: created, started, ended, replica, preview, output, error, attempts.
GENERAL_FIELDS = 16
#: A shaped row: action id, call key, created, started, ended, replica, output.
SHAPED_FIELDS = 7
_SHARED = 6
#: Rows per general INSERT: 60 x 16 = 960 parameters, under SQLite's oldest limit of 999.
_GENERAL_ROWS = 60
#: Rows per shaped INSERT: 6 + 100 x 7 = 706 parameters.
_SHAPED_ROWS = 100
#: Fewer alike rows than this in a row are written as general rows.
_SHAPED_MIN = 8

_COLUMNS = (
    "INSERT OR REPLACE INTO actions (run_key, action_id, parent, call_key, task, environment, "
    "grp, phase, created, started, ended, replica, preview, output, error, attempts) VALUES "
)
_GENERAL_ROW = "(" + ", ".join("?" * GENERAL_FIELDS) + ")"


@cache
def _general(rows: int) -> str:
    return _COLUMNS + ", ".join([_GENERAL_ROW] * rows)


@cache
def _shaped(rows: int) -> str:
    values = []
    for n in range(rows):
        a, c, t0, t1, t2, r, o = range(
            _SHARED + 1 + n * SHAPED_FIELDS, _SHARED + 1 + (n + 1) * SHAPED_FIELDS
        )
        values.append(
            f"(?1, ?{a}, ?2, ?{c}, ?3, ?4, ?5, ?6, ?{t0}, ?{t1}, ?{t2}, ?{r}, '', ?{o}, '', '')"
        )
    return _COLUMNS + ", ".join(values)


def insert_actions(conn: sqlite3.Connection, segments: Segments) -> None:
    """Insert the rows of ``segments``, in order (inside the caller's transaction)."""
    general: list[object] = []
    for shape, rows in segments:
        if shape is None:
            general += rows
        elif len(rows) < _SHAPED_MIN * SHAPED_FIELDS:
            general += _as_general(shape, rows)
        else:
            if general:
                _insert_general(conn, general)
                general = []
            _insert_shaped(conn, shape, rows)
    if general:
        _insert_general(conn, general)


def _as_general(shape: Shape, rows: list[object]) -> list[object]:
    key, parent, task, environment, group, code = shape
    flat: list[object] = []
    for i in range(0, len(rows), SHAPED_FIELDS):
        action_id, call_key, created, started, ended, replica, output = rows[i : i + SHAPED_FIELDS]
        flat += (
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
            "",
            output,
            "",
            "",
        )
    return flat


def _insert_general(conn: sqlite3.Connection, flat: list[object]) -> None:
    width = _GENERAL_ROWS * GENERAL_FIELDS
    whole = len(flat) - len(flat) % width
    if whole:
        conn.executemany(
            _general(_GENERAL_ROWS), [flat[i : i + width] for i in range(0, whole, width)]
        )
    rest = (len(flat) - whole) // GENERAL_FIELDS
    if rest:
        conn.execute(_general(rest), flat[whole:])


def _insert_shaped(conn: sqlite3.Connection, shape: Shape, rows: list[object]) -> None:
    width = _SHAPED_ROWS * SHAPED_FIELDS
    whole = len(rows) - len(rows) % width
    if whole:
        conn.executemany(
            _shaped(_SHAPED_ROWS), [(*shape, *rows[i : i + width]) for i in range(0, whole, width)]
        )
    rest = (len(rows) - whole) // SHAPED_FIELDS
    if rest:
        conn.execute(_shaped(rest), (*shape, *rows[whole:]))
