"""Opening, closing and the settings: bounded, idempotent, and one clear line when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from reuse_runtime.errors import ConfigError
from reuse_runtime.store import (
    ActionPhase,
    RunReader,
    RunRecorder,
    RunStore,
    SqliteRunStore,
    StoreClosedError,
    StoreSettings,
)
from reuse_runtime.store.settings import FILE_NAME, GiB
from tests.store.support import action, ended, flushed, record_run, submitted


def test_close_writes_what_was_queued_and_is_idempotent(settings: StoreSettings) -> None:
    store = SqliteRunStore.open(settings)
    record_run(store, "queued-at-close", actions=100)
    store.close()
    store.close()
    assert store.statistics().state == "closed" and not store.accepting()
    with pytest.raises(StoreClosedError, match="closed"):
        store.action_ended(action("queued-at-close", 1000))
    with pytest.raises(StoreClosedError):
        store.get_run("queued-at-close")
    with SqliteRunStore.open(settings) as again:
        assert len(again.list_actions("queued-at-close", limit=1000).items) == 101


async def test_async_with_closes_the_store(settings: StoreSettings) -> None:
    async with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("r"))
    assert store.statistics().state == "closed"
    with SqliteRunStore.open(settings) as store:
        assert store.get_run("r") is not None


def test_statistics_is_a_frozen_snapshot(store: SqliteRunStore) -> None:
    record_run(store, "r", actions=10)
    stats = flushed(store).statistics()
    assert (stats.state, stats.reason, stats.queued, stats.dropped) == ("ok", "", 0, 0)
    assert stats.records == 13 and stats.batches >= 1 and stats.runs == 1
    assert stats.db_bytes > 0 and stats.bytes == stats.db_bytes + stats.blob_bytes
    assert stats.path == str(store.settings.path)
    with pytest.raises(AttributeError):
        stats.queued = 5  # type: ignore[misc]


def test_the_store_is_each_of_the_protocols(store: SqliteRunStore) -> None:
    recorder: RunRecorder = store
    reader: RunReader = store
    full: RunStore = store
    assert recorder.accepting() and reader.get_run("none") is None and full.notice == ""


def test_a_restarted_controller_finds_its_unfinished_runs_and_their_finished_children(
    settings: StoreSettings,
) -> None:
    with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("crashed", submission=b"resubmit me"))
        store.action_ended(action("crashed", 1))
        store.action_ended(action("crashed", 2, phase=ActionPhase.ABORTED, output=b""))
        store.action_ended(action("crashed", 3, call_key="crashed-k2"))  # ran again: it wins
        record_run(store, "finished")
    with SqliteRunStore.open(settings) as store:
        (unfinished,) = store.unfinished_runs()
        assert (unfinished.name, unfinished.root_action_id, unfinished.submission) == (
            "crashed",
            "crashed-root",
            b"resubmit me",
        )
        one = store.replayed("crashed", "crashed-k1")
        assert one is not None and (one.phase, one.output, one.error) == (
            ActionPhase.SUCCEEDED,
            b"v1",
            None,
        )
        again = store.replayed("crashed", "crashed-k2")
        assert again is not None and (again.action_id, again.output) == ("crashed-a3", b"v3")
        assert store.replayed("crashed", "never-called") is None
        # Children recorded after the restart are found too, until the run ends.
        store.action_ended(action("crashed", 7))
        outcome = flushed(store).replayed("crashed", "crashed-k7")
        assert outcome is not None and outcome.output == b"v7"
        store.run_ended(ended("crashed"))
        assert flushed(store).unfinished_runs() == ()
        assert store.replayed("crashed", "crashed-k1") is not None  # still recorded


def test_settings_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    defaults = StoreSettings.from_env(tmp_path)
    assert defaults.path == tmp_path / FILE_NAME
    assert (defaults.max_runs, defaults.max_age_days, defaults.max_bytes) == (10_000, 30.0, 2 * GiB)
    monkeypatch.setenv("REUSE_RUNTIME_RUNS_MAX", "50")
    monkeypatch.setenv("REUSE_RUNTIME_RUNS_MAX_AGE_DAYS", "1.5")
    monkeypatch.setenv("REUSE_RUNTIME_RUNS_MAX_BYTES", "64Mi")
    monkeypatch.setenv("REUSE_RUNTIME_RUNS_BLOB_BYTES", "4096")
    monkeypatch.setenv("REUSE_RUNTIME_RUNS_FLUSH_MS", "40")
    monkeypatch.setenv("REUSE_RUNTIME_RUNS_DB", str(tmp_path / "elsewhere.sqlite"))
    found = StoreSettings.from_env(tmp_path, shared=True)
    assert (found.max_runs, found.max_age_days, found.max_bytes) == (50, 1.5, 64 * 1024 * 1024)
    assert (found.blob_threshold, found.flush_interval, found.shared) == (4096, 0.04, True)
    assert found.path == tmp_path / "elsewhere.sqlite"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("REUSE_RUNTIME_RUNS_MAX", "0", "REUSE_RUNTIME_RUNS_MAX must be a whole number"),
        ("REUSE_RUNTIME_RUNS_MAX_AGE_DAYS", "soon", "REUSE_RUNTIME_RUNS_MAX_AGE_DAYS must be"),
        ("REUSE_RUNTIME_RUNS_MAX_BYTES", "12", "REUSE_RUNTIME_RUNS_MAX_BYTES must be a size"),
        ("REUSE_RUNTIME_RUNS_FLUSH_MS", "-1", "REUSE_RUNTIME_RUNS_FLUSH_MS must be"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=says) as raised:
        StoreSettings.from_env(tmp_path)
    assert "\n" not in str(raised.value)


def test_settings_that_cannot_work_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_runs must be at least 1, got 0"):
        StoreSettings(path=tmp_path / "x", max_runs=0)
    with pytest.raises(ConfigError, match="read_timeout must be above 0 seconds"):
        StoreSettings(path=tmp_path / "x", read_timeout=0)


def test_the_modules_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import textwrap

    from reuse_runtime.store import sqlite

    monkeypatch.setenv("REUSE_RUNTIME_HOME", str(tmp_path))
    doc = sqlite.__doc__ or ""
    exec(textwrap.dedent(doc[doc.index("    import pickle") : doc.index("``async with")]), {})
    assert capsys.readouterr().out == "succeeded\n"
    assert (tmp_path / "runs.sqlite").exists()


def test_a_writer_that_falls_behind_drops_the_newest_records_and_counts_them(
    tmp_path: Path,
) -> None:
    settings = StoreSettings(path=tmp_path / "runs.sqlite", max_queued=100, flush_interval=10)
    with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("r"))
        for n in range(1000):  # faster than the writer wakes: it finds them all at once
            store.action_ended(action("r", n))
        flushed(store)
        kept = store.list_actions("r", limit=1000).items
        stats = store.statistics()
    assert [a.action_id for a in kept] == [f"r-a{n}" for n in range(len(kept))]
    assert stats.dropped == 1000 - len(kept) > 0  # the run itself was kept
    assert "fell behind" in stats.last_error
