"""Counting a parent's finished children by group and phase, on from a mark (what a page
following a live run reads: only what ended since it last looked)."""

from __future__ import annotations

from reuse_runtime.store import ActionPhase, SqliteRunStore
from tests.store.support import action, flushed, submitted

OK, FAILED = ActionPhase.SUCCEEDED, ActionPhase.FAILED


def test_counts_go_on_from_the_mark(store: SqliteRunStore) -> None:
    store.run_submitted(submitted("r"))
    for n in range(5):
        store.action_ended(action("r", n, group="map" if n % 2 else ""))
    store.action_ended(action("r", 9, parent_id="other"))
    flushed(store)
    first = store.child_counts("r", "r-root")
    assert dict(first.counts) == {("", OK): 3, ("map", OK): 2}
    store.action_ended(action("r", 5, group="map", phase=FAILED))
    store.action_ended(action("r", 6))
    flushed(store)
    since = store.child_counts("r", "r-root", since=first.mark)
    assert dict(since.counts) == {("map", FAILED): 1, ("", OK): 1}
    assert since.mark > first.mark
    nothing = store.child_counts("r", "r-root", since=since.mark)
    assert dict(nothing.counts) == {} and nothing.mark == since.mark
    assert dict(store.child_counts("no-such-run", "r-root").counts) == {}
