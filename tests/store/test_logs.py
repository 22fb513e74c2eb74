"""An action's log: bounded (first and last lines kept), read on from a seq, searched."""

from __future__ import annotations

from pathlib import Path

from reuse_runtime.store import LogRecord, SqliteRunStore, StoreSettings
from tests.store.support import NOW, action, flushed, submitted


def line(run: str, action_id: str, n: int, stream: str = "stdout") -> LogRecord:
    return LogRecord(run, action_id, stream, f"line {n}", NOW + n)


def test_lines_are_kept_in_order_with_their_stream_and_time(store: SqliteRunStore) -> None:
    store.run_submitted(submitted("r"))
    store.log_line(line("r", "a", 1))
    store.log_lines([line("r", "a", 2, "stderr"), line("r", "b", 1)])
    entries = flushed(store).action_logs("r", "a")
    assert [(e.line, e.stream, e.text, e.at) for e in entries] == [
        (1, "stdout", "line 1", NOW + 1),
        (2, "stderr", "line 2", NOW + 2),
    ]
    assert [(e.action_id, e.text) for e in store.run_logs("r")] == [
        ("a", "line 1"),
        ("a", "line 2"),
        ("b", "line 1"),
    ]


def test_follow_reads_on_from_the_last_seq_seen(store: SqliteRunStore) -> None:
    store.run_submitted(submitted("r"))
    store.log_lines([line("r", "a", n) for n in range(1, 4)])
    first = flushed(store).action_logs("r", "a")
    assert [e.text for e in first] == ["line 1", "line 2", "line 3"]
    store.log_lines([line("r", "a", n) for n in range(4, 6)])
    more = flushed(store).action_logs("r", "a", after=first[-1].seq)
    assert [e.text for e in more] == ["line 4", "line 5"]
    assert store.action_logs("r", "a", after=more[-1].seq) == ()
    assert [e.text for e in store.run_logs("r", after=first[-1].seq, limit=1)] == ["line 4"]


def test_a_chatty_action_keeps_its_first_and_last_lines_and_says_how_many_went(
    tmp_path: Path,
) -> None:
    settings = StoreSettings(path=tmp_path / "runs.sqlite", log_head=3, log_tail=2)
    with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("r"))
        # Across several batches: the middle goes as later lines arrive.
        for start in range(1, 41, 8):
            store.log_lines([line("r", "a", n) for n in range(start, start + 8)])
            flushed(store)
        store.action_ended(action("r", 0, action_id="a"))
        entries = flushed(store).action_logs("r", "a")
    assert [e.line for e in entries] == [1, 2, 3, 39, 40]
    assert [e.text for e in entries][-2:] == ["line 39", "line 40"]
    assert [e.dropped_before for e in entries] == [0, 0, 0, 35, 0]


def test_lines_are_searched_by_substring(store: SqliteRunStore) -> None:
    store.run_submitted(submitted("r"))
    store.log_lines(
        [
            LogRecord("r", "a", "stdout", "loading model", NOW),
            LogRecord("r", "b", "stderr", "ERROR: model not found", NOW + 1),
            LogRecord("r", "b", "stdout", "retrying", NOW + 2),
        ]
    )
    found = flushed(store).search_logs("r", "model")
    assert [(e.action_id, e.text) for e in found] == [
        ("a", "loading model"),
        ("b", "ERROR: model not found"),
    ]
    assert store.search_logs("r", "nothing like it") == ()


def test_a_very_long_line_is_kept_in_a_file(tmp_path: Path) -> None:
    settings = StoreSettings(path=tmp_path / "runs.sqlite", blob_threshold=1000)
    long = "x" * 5000 + " the end"
    with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("r"))
        store.log_lines([LogRecord("r", "a", "stdout", long, NOW), line("r", "a", 2)])
        entries = flushed(store).action_logs("r", "a")
    assert [e.text for e in entries] == [long, "line 2"]
    assert [p.stat().st_size for p in settings.blob_dir.rglob("*") if p.is_file()] == [5008]


def test_line_numbers_go_on_after_a_reopen(settings: StoreSettings) -> None:
    with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("r"))
        store.log_lines([line("r", "a", 1), line("r", "a", 2)])
    with SqliteRunStore.open(settings) as store:
        store.log_line(line("r", "a", 3))
        assert [e.line for e in flushed(store).action_logs("r", "a")] == [1, 2, 3]
