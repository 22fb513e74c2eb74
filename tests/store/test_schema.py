"""The store's layout: a file of an earlier layout, opened by this code, is brought up to
this one in place and keeps its runs and actions, each action's parent among them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from reuse_runtime.store import SqliteRunStore, StoreSettings, schema
from tests.store.support import NOW, action, as_layout, flushed, record_run


def test_a_layout_2_store_keeps_its_runs_actions_and_parents(tmp_path: Path) -> None:
    settings = StoreSettings(path=tmp_path / "runs.sqlite")
    with SqliteRunStore.open(settings) as store:
        record_run(store, "before", actions=3)
        store.action_ended(action("before", 7, parent_id="before-a1"))  # a grandchild
        flushed(store)
        recorded = store.list_actions("before").items
    as_layout(settings.path, 2)
    with SqliteRunStore.open(settings) as store:
        assert store.notice == ""
        assert store.list_actions("before").items == recorded
        children = store.list_actions("before", parent="before-root").items
        assert [a.action_id for a in children] == ["before-a0", "before-a1", "before-a2"]
        assert [a.children for a in children] == [0, 1, 0]
        (root,) = store.list_actions("before", parent="").items
        assert (root.action_id, root.parent_id, root.children) == ("before-root", "", 3)
        grandchild = store.get_action("before", "before-a7")
        assert grandchild is not None and grandchild.parent_id == "before-a1"
        assert [g.group for g in store.groups("before", "before-root")] == [""]
        # New actions of the old run, and a new run, are recorded as before.
        store.action_ended(action("before", 8, parent_id="before-a1"))
        record_run(store, "after", actions=2)
        flushed(store)
        later = store.list_actions("before", parent="before-a1").items
        assert [a.action_id for a in later] == ["before-a7", "before-a8"]
        assert len(store.list_actions("after", parent="after-root").items) == 2
    version = sqlite3.connect(settings.path).execute("PRAGMA user_version").fetchone()
    assert version == (schema.VERSION,)


def test_a_parent_is_a_number_in_the_action_row(tmp_path: Path) -> None:
    settings = StoreSettings(path=tmp_path / "runs.sqlite")
    with SqliteRunStore.open(settings) as store:
        record_run(store, "r", actions=2)
        flushed(store)
    conn = sqlite3.connect(settings.path)
    try:
        parents = conn.execute("SELECT DISTINCT parent FROM actions ORDER BY parent").fetchall()
        named = conn.execute("SELECT action_id FROM parents").fetchall()
    finally:
        conn.close()
    assert len(parents) == 2 and parents[0] == (0,)  # the root's, and the root as parent
    assert named == [("r-root",)]


def test_a_runs_parents_go_with_it(tmp_path: Path) -> None:
    settings = StoreSettings(path=tmp_path / "runs.sqlite", max_runs=1)
    with SqliteRunStore.open(settings) as store:
        record_run(store, "old", actions=2)
        store.action_ended(action("old", 5, parent_id="old-a1"))
        record_run(store, "new", actions=2, created=NOW + 1)
        flushed(store)
        assert store.prune()
        assert store.get_run("old") is None
    conn = sqlite3.connect(settings.path)
    try:
        named = conn.execute("SELECT action_id FROM parents ORDER BY no").fetchall()
    finally:
        conn.close()
    assert named == [("new-root",)]
