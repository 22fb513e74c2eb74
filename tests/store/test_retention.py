"""Retention: the oldest finished runs go, by count, age and bytes; the file stays bounded."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from reuse_runtime.store import ActionPhase, LogRecord, SqliteRunStore, StoreSettings
from reuse_runtime.store.retention import Usage, decide
from tests.store.support import NOW, action, ended, flushed, record_run, submitted

MiB = 1024 * 1024


def store_bytes(settings: StoreSettings) -> int:
    """Everything the store holds on disk: the database, its WAL, the value files."""
    files = [settings.path, Path(f"{settings.path}-wal")]
    files += [p for p in settings.blob_dir.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files if p.exists())


def test_2000_runs_against_a_limit_of_1000_leave_the_newest_1000(tmp_path: Path) -> None:
    settings = StoreSettings(path=tmp_path / "runs.sqlite", max_runs=1000, max_bytes=8 * MiB)
    with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("unfinished", NOW - 10))  # the oldest, never removed
        for n in range(2000):
            record_run(store, f"run-{n:04d}", actions=2, created=NOW + n)
        assert store.prune(timeout=60)
        stats = store.statistics()
        names = set()
        cursor = None
        while True:
            page = store.list_runs(limit=500, cursor=cursor)
            names.update(run.name for run in page.items)
            if page.cursor is None:
                break
            cursor = page.cursor
    assert len(names) == 1000 and stats.runs == 1000
    assert "unfinished" in names
    assert {f"run-{n:04d}" for n in range(1001, 2000)} <= names
    assert stats.pruned_runs == 1001
    assert store_bytes(settings) < settings.max_bytes


def test_a_removed_runs_actions_logs_and_value_files_go_with_it(tmp_path: Path) -> None:
    settings = StoreSettings(path=tmp_path / "runs.sqlite", max_runs=1, blob_threshold=100)
    shared, own = b"s" * 1000, b"o" * 1000
    with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("old", NOW))
        store.action_ended(action("old", 1, output=shared))
        store.action_ended(action("old", 2, output=own))
        store.run_ended(ended("old"))
        flushed(store)
        assert len(list(settings.blob_dir.rglob("*/*"))) == 2
        store.run_submitted(submitted("new", NOW + 1))
        store.action_ended(action("new", 1, output=shared))
        store.run_ended(ended("new"))
        assert store.prune()
        assert store.get_run("old") is None and store.list_actions("old").items == ()
        assert store.action_output("new", "new-a1") == shared  # its file is still referenced
        assert [p.stat().st_size for p in settings.blob_dir.rglob("*/*")] == [1000]
        assert store.statistics().blob_bytes == 1000


def test_runs_older_than_the_age_limit_go(tmp_path: Path) -> None:
    day = 86_400.0
    now = [NOW]
    settings = StoreSettings(path=tmp_path / "runs.sqlite", max_age_days=2)
    with SqliteRunStore.open(settings, clock=lambda: now[0]) as store:
        record_run(store, "three-days-old", created=NOW - 3 * day)
        record_run(store, "yesterday", created=NOW - day)
        store.run_submitted(submitted("old-but-running", NOW - 5 * day))
        assert store.prune()
        assert [r.name for r in store.list_runs().items] == ["yesterday", "old-but-running"]
        now[0] += 2 * day
        assert store.prune()
        assert [r.name for r in store.list_runs().items] == ["old-but-running"]


def test_the_byte_bound_removes_the_oldest_runs_and_the_file_shrinks(tmp_path: Path) -> None:
    settings = StoreSettings(path=tmp_path / "runs.sqlite", max_bytes=2 * MiB)
    with SqliteRunStore.open(settings) as store:
        for n in range(60):  # about 45 KiB of log each: 2.7 MiB in all
            name = f"run-{n:02d}"
            store.run_submitted(submitted(name, NOW + n))
            store.log_lines(
                LogRecord(name, f"{name}-a", "stdout", f"{i:05d} " + "x" * 400, NOW)
                for i in range(100)
            )
            store.run_ended(ended(name))
            flushed(store)
        assert store.prune()
        names = [r.name for r in store.list_runs(limit=100).items]
    assert 0 < len(names) < 60
    assert names == [f"run-{n:02d}" for n in reversed(range(60 - len(names), 60))]
    assert store_bytes(settings) < settings.max_bytes


def test_the_policy_removes_the_excess_count_and_enough_runs_for_the_bytes() -> None:
    limits = {"now": NOW, "max_runs": 10, "max_age_days": 1.0, "max_bytes": 1000}
    assert decide(Usage(12, 12, 100), **limits).by_count == 2  # type: ignore[arg-type]
    assert decide(Usage(5, 5, 800), **limits).by_bytes == 0  # type: ignore[arg-type]
    # 10 runs of 100 bytes, bound 1000: down to the low-water mark (650) takes 4.
    assert decide(Usage(10, 10, 1000), **limits).by_bytes == 4  # type: ignore[arg-type]
    assert decide(Usage(10, 2, 1000), **limits).by_bytes == 2  # type: ignore[arg-type]
    assert decide(Usage(1, 1, 0), **limits).created_before == NOW - 86_400  # type: ignore[arg-type]


def _rss() -> int:
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def _soak(path: str) -> tuple[list[int], int, int, int, int]:
    """A million actions through one store, in a process of its own: its RSS samples
    (every 50 runs), records and drops, and the largest and final bytes on disk."""
    settings = StoreSettings(
        path=Path(path), max_bytes=32 * MiB, max_runs=200, retention_interval=0.5
    )
    per_run, runs = 1000, 1000
    samples, largest = [], 0
    with SqliteRunStore.open(settings) as store:
        for r in range(runs):
            name = f"soak-{r:04d}"
            store.run_submitted(submitted(name, NOW + r))
            for n in range(per_run):
                store.action_ended(action(name, n))
            store.run_ended(ended(name))
            if r % 50 == 49:
                assert store.flush(timeout=120), store.statistics()
                largest = max(largest, store_bytes(settings))
                samples.append(_rss())
        assert store.prune(timeout=120)
        stats = store.statistics()
    return samples, stats.records, stats.dropped, largest, store_bytes(settings)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_million_actions_keep_the_file_under_its_bound_and_rss_flat(tmp_path: Path) -> None:
    # In a fresh interpreter: the RSS measured is the store's, not what the tests before
    # this one left in pytest's process (hundreds of MB, still moving, in the slow suite).
    soak = "import json, sys; from tests.store.test_retention import _soak; "
    soak += "print(json.dumps(_soak(sys.argv[1])))"
    done = subprocess.run(
        [sys.executable, "-c", soak, str(tmp_path / "runs.sqlite")],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    samples, records, dropped, largest, final = json.loads(done.stdout.splitlines()[-1])
    assert records >= 1000 * 1000 and dropped == 0
    assert largest < 32 * MiB and final < 32 * MiB
    # Flat: the last samples are within 16 MiB of the ones after warm-up.
    assert max(samples[5:]) - samples[4] < 16 * MiB, samples
    assert ActionPhase.SUCCEEDED.is_terminal
