"""Faults, for real: a corrupt file, a full disk, a second controller, a kill -9, a bad record."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reuse_runtime.store import (
    ActionPhase,
    SqliteRunStore,
    StoreError,
    StoreLockedError,
    StoreSettings,
)
from tests.helpers import fill_filesystem
from tests.store.support import NOW, action, flushed, record_run, submitted

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ unusable files


def _other_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda p: p.write_bytes(b"this is not a database\n" * 500), id="garbage"),
        pytest.param(lambda p: p.mkdir(), id="a-directory"),
        pytest.param(lambda p: _other_database(p), id="another-apps-database"),
    ],
)
def test_an_unusable_store_is_moved_aside_and_an_empty_one_opens(
    settings: StoreSettings, spoil: object
) -> None:
    settings.path.parent.mkdir(parents=True)
    spoil(settings.path)  # type: ignore[operator]
    with SqliteRunStore.open(settings) as store:
        notice = store.notice
        record_run(store, "fresh")
        assert flushed(store).get_run("fresh") is not None
    assert notice.startswith(f"the runs store {settings.path} could not be used (")
    assert "\n" not in notice
    moved = Path(notice.split(" moved it to ")[1].split(" and started")[0])
    assert moved.name.startswith("runs.sqlite.corrupt-") and os.path.lexists(moved)
    assert store.statistics().notice == notice


def test_a_store_damaged_inside_is_moved_aside(settings: StoreSettings) -> None:
    with SqliteRunStore.open(settings) as store:
        for n in range(50):
            record_run(store, f"run-{n}", actions=20)
    data = bytearray(settings.path.read_bytes())
    page = 4096
    for start in range(2 * page, len(data), page):  # every page but the header's
        data[start + 8 : start + 100] = b"\xff" * 92
    settings.path.write_bytes(bytes(data))
    with SqliteRunStore.open(settings) as store:
        assert "could not be used" in store.notice
        assert store.list_runs().items == ()


def test_a_busy_store_is_an_error_and_is_never_moved_aside(settings: StoreSettings) -> None:
    shared = StoreSettings(path=settings.path, shared=True, read_timeout=0.2)
    with SqliteRunStore.open(shared) as store:
        record_run(store, "kept")
        flushed(store)
        holder = sqlite3.connect(settings.path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a write
        try:
            with pytest.raises(StoreError, match="cannot be opened: database is locked"):
                SqliteRunStore.open(shared)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert store.get_run("kept") is not None
    assert [p.name for p in settings.path.parent.iterdir() if "corrupt" in p.name] == []


# ------------------------------------------------------------------ one controller


def test_a_second_controller_on_the_same_state_dir_is_refused_naming_the_pid(
    settings: StoreSettings,
) -> None:
    with SqliteRunStore.open(settings):
        script = textwrap.dedent(
            f"""
            from pathlib import Path
            from reuse_runtime.store import SqliteRunStore, StoreSettings, StoreLockedError
            try:
                SqliteRunStore.open(StoreSettings(path=Path({str(settings.path)!r})))
            except StoreLockedError as exc:
                print(exc)
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
    message = done.stdout.strip()
    assert message == (
        f"the runs store in {settings.path.parent} is in use by a controller "
        f"(pid {os.getpid()}); stop it, or give this controller another state dir "
        f"(--state-dir)"
    ), done.stderr
    # Released with the store: a new controller opens it.
    with SqliteRunStore.open(settings) as store:
        assert store.accepting()


def test_embedded_controllers_share_one_store(settings: StoreSettings) -> None:
    shared = StoreSettings(path=settings.path, shared=True, flush_interval=0.01)
    with SqliteRunStore.open(shared) as first, SqliteRunStore.open(shared) as second:
        # The first found nobody else there: what it finds unfinished has no owner left.
        assert (first.alone, second.alone) == (True, False)
        record_run(first, "from-first")
        record_run(second, "from-second")
        flushed(first), flushed(second)
        assert {r.name for r in first.list_runs().items} == {"from-first", "from-second"}
        with pytest.raises(StoreLockedError, match="in use by embedded controllers"):
            SqliteRunStore.open(settings)
    with (
        pytest.raises(StoreLockedError, match=rf"pid {os.getpid()}"),
        SqliteRunStore.open(settings),
    ):
        SqliteRunStore.open(shared)


# ------------------------------------------------------------------------ kill -9

_WRITER = """
import sys, time
from pathlib import Path
from reuse_runtime.store import SqliteRunStore, StoreSettings
from tests.store.support import record_run

store = SqliteRunStore.open(StoreSettings(path=Path(sys.argv[1]), flush_interval=0.005))
for n in range(200):
    record_run(store, f"committed-{n}", actions=5)
assert store.flush(timeout=60)
print("flushed", flush=True)
n = 0
while True:  # until killed: every batch in flight at the kill may be lost, nothing before
    record_run(store, f"late-{n}", actions=5)
    n += 1
    if n % 100 == 0:
        time.sleep(0.001)
"""


def test_kill_9_loses_at_most_the_last_batch_and_corrupts_nothing(
    settings: StoreSettings,
) -> None:
    settings.path.parent.mkdir(parents=True)
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(settings.path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "flushed"
        # Let it commit a few batches of late runs, then kill it in the middle of others.
        reader = sqlite3.connect(f"file:{settings.path}?mode=ro", uri=True)
        for _ in range(100_000):  # bounded: a few seconds at most
            query = "SELECT count(*) FROM runs WHERE name LIKE 'late-%'"
            if reader.execute(query).fetchone()[0] >= 300:
                break
        reader.close()
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        if writer.stdout is not None:
            writer.stdout.close()
    conn = sqlite3.connect(settings.path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with SqliteRunStore.open(settings) as store:
        assert store.notice == ""
        for n in range(200):
            run = store.get_run(f"committed-{n}")
            assert run is not None and run.phase is ActionPhase.SUCCEEDED
            assert len(store.list_actions(f"committed-{n}").items) == 6
        # Whatever late run was committed was committed whole (one transaction per batch).
        for run in store.list_runs().items:
            if run.name.startswith("late-") and run.phase is ActionPhase.SUCCEEDED:
                assert len(store.list_actions(run.name).items) == 6


# ---------------------------------------------------------------------- disk full


def test_a_full_disk_holds_records_refuses_runs_and_recovers_by_itself(
    small_filesystem: Path,
) -> None:
    settings = StoreSettings(
        path=small_filesystem / "runs.sqlite",
        flush_interval=0.01,
        retry_interval=0.05,
        blob_threshold=4096,
    )
    with SqliteRunStore.open(settings) as store:
        record_run(store, "before", actions=10)
        flushed(store)
        filler = fill_filesystem(small_filesystem)
        # Enough to need new pages, and a value for a file of its own.
        store.run_submitted(submitted("during", NOW))
        for n in range(3000):
            store.action_ended(action("during", n, inputs_preview="p" * 200))
        store.action_ended(action("during", 5000, output=b"big" * 10_000))
        assert not store.flush(timeout=2)
        stats = store.statistics()
        assert stats.state == "full" and not store.accepting()
        assert str(small_filesystem) in stats.reason and "no space left" in stats.reason
        assert stats.queued > 0  # what arrived since the disk filled waits in memory
        before = store.get_run("before")
        assert before is not None and len(store.list_actions("before").items) == 11
        filler.unlink()  # space comes back
        assert store.flush(timeout=60), store.statistics()
        assert store.accepting() and store.statistics().state == "ok"
        assert store.phase_counts("during") == {ActionPhase.SUCCEEDED: 3001}
        assert store.action_output("during", "during-a5000") == b"big" * 10_000
        assert store.statistics().dropped == 0


# --------------------------------------------------------------------- bad record


def test_a_record_the_database_refuses_is_dropped_alone(store: SqliteRunStore) -> None:
    store.run_submitted(submitted("r"))
    store.action_ended(action("r", 1))
    store.action_ended(action("r", 2, output=object()))  # a caller's bug: not bytes
    store.action_ended(action("r", 3))
    flushed(store)
    assert [a.action_id for a in store.list_actions("r").items] == ["r-a1", "r-a3"]
    stats = store.statistics()
    assert stats.dropped == 1 and "ActionRecord was not recorded" in stats.last_error
    assert store.accepting()
