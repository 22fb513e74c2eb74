"""The runs store's ``conditions`` table: written by the writer's batch, read by readers.

A condition is one row, replaced as it changes (created, then ended). Its row is
kept with its run's (retention deletes both); a condition of a run the store does
not record is not kept.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from reuse_runtime.conditions import ConditionInfo
from reuse_runtime.store.phases import PHASE_CODES, PHASES_BY_CODE

_INSERT = (
    "INSERT OR REPLACE INTO conditions (run_key, action_id, parent_id, name, phase, created, "
    "ended, spec, value, reason) SELECT key, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM runs WHERE name = ?"
)


def write_conditions(conn: sqlite3.Connection, infos: list[ConditionInfo]) -> None:
    """Record each condition as it is now (inside the writer's transaction)."""
    conn.executemany(
        _INSERT,
        [
            (
                c.action_id,
                c.parent_action_id,
                c.name,
                PHASE_CODES[c.phase],
                c.created,
                c.ended or 0.0,
                json.dumps(
                    {
                        "prompt": c.prompt,
                        "prompt_type": c.prompt_type,
                        "data_type": c.data_type,
                        "description": c.description,
                        "timeout": c.timeout,
                        "webhook_url": c.webhook_url,
                        "webhook_payload": c.webhook_payload,
                    }
                ),
                "" if c.value is None else json.dumps(c.value),
                c.reason,
                c.run,
            )
            for c in infos
        ],
    )


def read_conditions(
    conn: sqlite3.Connection, run: str, parent: str | None = None
) -> list[ConditionInfo]:
    """The run's recorded conditions, oldest first (``parent``: those it created)."""
    sql = (
        "SELECT parent_id, name, phase, created, ended, spec, value, reason FROM conditions "
        "WHERE run_key = (SELECT key FROM runs WHERE name = ?)"
    )
    params: tuple[Any, ...] = (run,)
    if parent is not None:
        sql += " AND parent_id = ?"
        params = (run, parent)
    rows = conn.execute(sql + " ORDER BY created, action_id", params).fetchall()
    return [_condition(run, *row) for row in rows]


def _condition(
    run: str,
    parent: str,
    name: str,
    phase: int,
    created: float,
    ended: float,
    spec_text: str,
    value: str,
    reason: str,
) -> ConditionInfo:
    spec = json.loads(spec_text)
    timeout = spec.get("timeout")
    return ConditionInfo(
        run=run,
        parent_action_id=parent,
        name=name,
        prompt=str(spec.get("prompt", "")),
        prompt_type=str(spec.get("prompt_type", "text")),
        data_type=str(spec.get("data_type", "bool")),
        description=str(spec.get("description", "")),
        timeout=None if timeout is None else float(timeout),
        phase=PHASES_BY_CODE[phase],
        created=created,
        ended=ended or None,
        value=json.loads(value) if value else None,
        reason=reason,
        webhook_url=str(spec.get("webhook_url", "")),
        webhook_payload=str(spec.get("webhook_payload", "")),
    )
