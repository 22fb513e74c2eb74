"""Reports (``flyte.report``): recorded as a line on the report stream, kept whole, the
last flush replacing the one before, gone with their run; a layout-1 file gains them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from reuse_runtime.store import REPORT_STREAM, LogRecord, SqliteRunStore, StoreSettings, schema
from tests.store.support import NOW, action, as_layout, ended, flushed, submitted


def report(run: str, action_id: str, html: str, at: float = NOW) -> LogRecord:
    return LogRecord(run, action_id, REPORT_STREAM, html, at)


def test_the_last_flush_of_a_report_is_kept_whole_and_apart_from_the_log(
    store: SqliteRunStore,
) -> None:
    store.run_submitted(submitted("r"))
    html = "<h1>loss</h1>\n<script>draw()</script>\n" + "x" * 200_000  # past blob_threshold
    store.log_lines(
        [
            LogRecord("r", "r-a1", "stdout", "a line", NOW),
            report("r", "r-a1", "<p>first</p>", NOW + 1),
            report("r", "r-a1", html, NOW + 2),
        ]
    )
    flushed(store)
    kept = store.action_report("r", "r-a1")
    assert kept is not None and kept.html == html and kept.at == NOW + 2
    assert [entry.text for entry in store.action_logs("r", "r-a1")] == ["a line"]
    assert store.action_report("r", "r-a2") is None
    assert store.action_report("no-such-run", "r-a1") is None


def test_a_report_over_its_bound_is_kept_as_a_notice(tmp_path: Path) -> None:
    settings = StoreSettings(path=tmp_path / "runs.sqlite", report_max=1000)
    with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("r"))
        store.log_line(report("r", "r-a1", "y" * 5000))
        flushed(store)
        kept = store.action_report("r", "r-a1")
    assert kept is not None and "5000 characters" in kept.html and "y" not in kept.html


def test_a_runs_reports_go_with_it(tmp_path: Path) -> None:
    settings = StoreSettings(path=tmp_path / "runs.sqlite", max_runs=1)
    with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("old", NOW))
        store.action_ended(action("old", 1))
        store.log_line(report("old", "old-a1", "<p>old</p>"))
        store.run_ended(ended("old"))
        store.run_submitted(submitted("new", NOW + 1))
        store.log_line(report("new", "new-a1", "<p>new</p>"))
        assert store.prune()
        assert store.action_report("old", "old-a1") is None
        kept = store.action_report("new", "new-a1")
        assert kept is not None and kept.html == "<p>new</p>"
        rows = sqlite3.connect(settings.path).execute("SELECT count(*) FROM reports").fetchone()
    assert rows == (1,)


def test_a_store_of_layout_1_gains_reports_and_keeps_its_runs(tmp_path: Path) -> None:
    settings = StoreSettings(path=tmp_path / "runs.sqlite")
    with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("before"))
        store.run_ended(ended("before"))
        flushed(store)
    as_layout(settings.path, 1)  # no reports table
    with SqliteRunStore.open(settings) as store:
        assert store.notice == ""
        assert store.get_run("before") is not None
        store.log_line(report("before", "before-a1", "<p>late</p>"))
        flushed(store)
        kept = store.action_report("before", "before-a1")
    assert kept is not None and kept.html == "<p>late</p>"
    version = sqlite3.connect(settings.path).execute("PRAGMA user_version").fetchone()
    assert version == (schema.VERSION,)
