"""Conditions (``flyte.new_condition``) in the runs store: one row each, replaced as it
changes, read back by any reader, gone with their run; a layout-3 file gains them."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from reuse_runtime.conditions import ConditionInfo
from reuse_runtime.runinfo import ActionPhase
from reuse_runtime.store import SqliteRunReader, SqliteRunStore, StoreSettings, schema
from tests.store.support import NOW, ended, flushed, submitted


def condition(run: str, name: str, parent: str = "a1", **changes: object) -> ConditionInfo:
    info = ConditionInfo(
        run=run,
        parent_action_id=parent,
        name=name,
        prompt="## Ship?",
        prompt_type="markdown",
        data_type="int",
        timeout=30.0,
        created=NOW,
        webhook_url="https://example.com/hook",
        webhook_payload='{"callback": "{callback_uri}"}',
    )
    return replace(info, **changes)  # type: ignore[arg-type]


def test_a_condition_is_kept_as_it_last_changed_and_read_by_another_reader(
    tmp_path: Path,
) -> None:
    settings = StoreSettings(path=tmp_path / "runs.sqlite")
    with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("r"))
        waiting = condition("r", "batch")
        store.condition_changed(waiting)
        store.condition_changed(condition("r", "other", parent="a2", created=NOW + 1))
        store.condition_changed(condition("not-recorded", "batch"))
        flushed(store)
        assert store.list_conditions("r") == [
            waiting,
            condition("r", "other", "a2", created=NOW + 1),
        ]
        done = replace(waiting, phase=ActionPhase.SUCCEEDED, ended=NOW + 2, value=42)
        store.condition_changed(done)
        flushed(store)
        reader = SqliteRunReader(settings.path)
        assert reader.list_conditions("r", "a1") == [done]
        assert reader.list_conditions("not-recorded") == []


def test_a_runs_conditions_go_with_it(tmp_path: Path) -> None:
    settings = StoreSettings(path=tmp_path / "runs.sqlite", max_runs=1)
    with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("old", NOW))
        store.condition_changed(condition("old", "c"))
        store.run_ended(ended("old"))
        store.run_submitted(submitted("new", NOW + 1))
        store.condition_changed(condition("new", "c"))
        assert store.prune()
        assert store.list_conditions("old") == []
        assert [c.run for c in store.list_conditions("new")] == ["new"]
    rows = sqlite3.connect(settings.path).execute("SELECT count(*) FROM conditions").fetchone()
    assert rows == (1,)


def test_a_store_of_layout_3_gains_conditions_and_keeps_its_runs(tmp_path: Path) -> None:
    settings = StoreSettings(path=tmp_path / "runs.sqlite")
    with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("before"))
        flushed(store)
    conn = sqlite3.connect(settings.path)
    conn.execute("DROP TABLE conditions")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    with SqliteRunStore.open(settings) as store:
        assert store.notice == ""
        assert store.get_run("before") is not None
        store.condition_changed(condition("before", "late"))
        flushed(store)
        assert [c.name for c in store.list_conditions("before")] == ["late"]
    version = sqlite3.connect(settings.path).execute("PRAGMA user_version").fetchone()
    assert version == (schema.VERSION,)
