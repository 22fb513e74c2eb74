"""What is recorded is read back: runs, actions, errors, attempts, traces, values, listings."""

from __future__ import annotations

import pickle

import pytest

from reuse_runtime.store import (
    ActionPhase,
    Attempt,
    ClientInfo,
    ErrorInfo,
    RunEnded,
    RunFilter,
    RunProgress,
    SqliteRunStore,
    StoreError,
    StoreSettings,
    Trace,
    parse_phase,
)
from tests.store.support import NOW, action, ended, flushed, record_run, submitted


def test_a_run_is_read_back_with_who_submitted_it_its_labels_and_its_inputs(
    store: SqliteRunStore,
) -> None:
    inputs = pickle.dumps(((3,), {"x": "y"}))
    store.run_submitted(
        submitted(
            "r1",
            client=ClientInfo("client-7", "ada", "host-a"),
            inputs=inputs,
            inputs_preview="(3, x='y')",
            labels=(("team", "ml"), ("stage", "dev")),
            submission=b"the root, serialized",
        )
    )
    store.run_progress(RunProgress("r1", ActionPhase.RUNNING, NOW + 5))
    run = flushed(store).get_run("r1")
    assert run is not None
    assert (run.phase, run.task, run.environment, run.root_action_id) == (
        ActionPhase.RUNNING,
        "main",
        "env",
        "r1-root",
    )
    assert run.client == ClientInfo("client-7", "ada", "host-a")
    assert (run.created, run.started, run.ended) == (NOW, NOW + 5, None)
    assert run.labels == (("team", "ml"), ("stage", "dev"))
    assert (run.inputs_preview, run.inputs_size) == ("(3, x='y')", len(inputs))
    assert store.run_inputs("r1") == inputs
    assert not run.done
    assert store.get_run("nope") is None


def test_an_ended_run_has_its_output_or_its_error(store: SqliteRunStore) -> None:
    store.run_submitted(submitted("ok"))
    store.run_ended(RunEnded("ok", ActionPhase.SUCCEEDED, NOW + 9, pickle.dumps(42)))
    store.run_submitted(submitted("bad"))
    error = ErrorInfo(
        "USER", "ValueError", "boom", "Traceback...", pickle.dumps(ValueError("boom"))
    )
    store.run_ended(RunEnded("bad", ActionPhase.FAILED, NOW + 9, error=error))
    flushed(store)
    good, bad = store.get_run("ok"), store.get_run("bad")
    assert good is not None and bad is not None
    assert (good.phase, good.ended, good.error, good.done) == (
        ActionPhase.SUCCEEDED,
        NOW + 9,
        None,
        True,
    )
    assert pickle.loads(store.run_output("ok") or b"") == 42
    assert bad.phase is ActionPhase.FAILED
    assert bad.error is not None and (bad.error.type, bad.error.message) == ("ValueError", "boom")
    assert isinstance(pickle.loads(store.run_output("bad") or b""), ValueError)


def test_an_action_keeps_its_attempts_traces_error_and_output(store: SqliteRunStore) -> None:
    store.run_submitted(submitted("r"))
    error = ErrorInfo("USER", "KeyError", "'k'", "tb text", pickle.dumps(KeyError("k")))
    attempts = (
        Attempt(
            1, "env-1", NOW, NOW + 1, ActionPhase.FAILED, ErrorInfo("REPLICA_LOST", "", "died")
        ),
        Attempt(2, "env-2", NOW + 2, NOW + 3, ActionPhase.FAILED, error),
    )
    traces = (Trace("fetch", NOW + 2.1, 0.25), Trace("parse", NOW + 2.4, 0.1, "ValueError"))
    store.action_ended(
        action(
            "r", 1, phase=ActionPhase.FAILED, output=b"", error=error, attempts=attempts
        )._replace(traces=traces, group="batch-1")
    )
    store.action_ended(action("r", 2))
    found = flushed(store).get_action("r", "r-a1")
    assert found is not None
    assert (found.phase, found.group, found.replica, found.call_key) == (
        ActionPhase.FAILED,
        "batch-1",
        "env-1",
        "r-k1",
    )
    assert found.error == ErrorInfo("USER", "KeyError", "'k'", "tb text")
    assert [(a.attempt, a.replica, a.phase) for a in found.attempts] == [
        (1, "env-1", ActionPhase.FAILED),
        (2, "env-2", ActionPhase.FAILED),
    ]
    assert found.attempts[0].error == ErrorInfo("REPLICA_LOST", "", "died")
    assert found.traces == traces
    assert isinstance(pickle.loads(store.action_output("r", "r-a1") or b""), KeyError)
    assert store.action_output("r", "r-a2") == b"v2"
    single = store.get_action("r", "r-a2")
    assert single is not None and single.attempts == () and single.output_size == 2
    assert store.get_action("r", "missing") is None


def test_a_large_value_goes_to_a_file_and_comes_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = StoreSettings(path=tmp_path / "runs.sqlite", blob_threshold=1024)
    big = bytes(range(256)) * 64  # 16 KiB
    with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("r", inputs=big))
        store.action_ended(action("r", 1, output=big))
        store.action_ended(action("r", 2, output=big))  # the same value: one file
        flushed(store)
        assert store.action_output("r", "r-a1") == big == store.action_output("r", "r-a2")
        assert store.run_inputs("r") == big
        files = [p for p in settings.blob_dir.rglob("*") if p.is_file()]
        assert len(files) == 1 and files[0].stat().st_size == len(big)
        info = store.get_action("r", "r-a1")
        assert info is not None and info.output_size == len(big)


def test_a_value_past_its_bound_is_not_kept_but_its_action_is(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = StoreSettings(
        path=tmp_path / "runs.sqlite", blob_threshold=10, value_max=100, inputs_max=50
    )
    with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("r", inputs=b"i" * 51, inputs_preview="x" * 1000))
        store.action_ended(action("r", 1, output=b"o" * 101))
        flushed(store)
        info, run = store.get_action("r", "r-a1"), store.get_run("r")
        assert info is not None and run is not None
        assert info.output_size is None and store.action_output("r", "r-a1") is None
        assert run.inputs_size is None and store.run_inputs("r") is None
        assert run.inputs_preview == "x" * settings.preview_max


def test_runs_are_listed_newest_first_page_by_page(store: SqliteRunStore) -> None:
    for n in range(7):
        store.run_submitted(submitted(f"run-{n}", NOW + n))
    flushed(store)
    names, cursor = [], None
    while True:
        page = store.list_runs(limit=3, cursor=cursor)
        names.extend(run.name for run in page.items)
        if page.cursor is None:
            break
        cursor = page.cursor
    assert names == [f"run-{n}" for n in reversed(range(7))]
    with pytest.raises(StoreError, match="not a cursor"):
        store.list_runs(cursor="a:1")


def test_runs_are_filtered_by_phase_environment_task_name_label_and_time(
    store: SqliteRunStore,
) -> None:
    store.run_submitted(
        submitted("alpha-1", NOW, labels=(("team", "ml"),), client=ClientInfo("c1", "ada", "h"))
    )
    store.run_submitted(submitted("alpha-2", NOW + 10, environment="gpu", task="train"))
    store.run_submitted(submitted("beta-1", NOW + 20, labels=(("team", "ops"),)))
    store.run_ended(ended("alpha-1", ActionPhase.FAILED))
    flushed(store)

    def names(where: RunFilter) -> list[str]:
        return [run.name for run in store.list_runs(where).items]

    assert names(RunFilter(phases=(ActionPhase.FAILED,))) == ["alpha-1"]
    assert names(RunFilter(phases=(parse_phase("queued"),))) == ["beta-1", "alpha-2"]
    assert names(RunFilter(environment="gpu")) == ["alpha-2"]
    assert names(RunFilter(task="train")) == ["alpha-2"]
    assert names(RunFilter(name_contains="alpha")) == ["alpha-2", "alpha-1"]
    assert names(RunFilter(labels=(("team", "ml"),))) == ["alpha-1"]
    assert names(RunFilter(label_keys=("team",))) == ["beta-1", "alpha-1"]
    assert names(RunFilter(user="ada")) == ["alpha-1"]
    assert names(RunFilter(created_after=NOW + 5, created_before=NOW + 15)) == ["alpha-2"]


def test_a_runs_actions_make_a_tree_with_child_counts_and_groups(store: SqliteRunStore) -> None:
    store.run_submitted(submitted("r"))
    for n in range(5):
        store.action_ended(action("r", n, group="fanout" if n < 3 else ""))
    store.action_ended(action("r", 9, parent_id="r-a0", phase=ActionPhase.FAILED))
    store.action_ended(action("r", -1, action_id="r-root", parent_id="", call_key=""))
    flushed(store)
    (root,) = store.list_actions("r", parent="").items
    assert (root.action_id, root.children) == ("r-root", 5)
    children = store.list_actions("r", parent="r-root", limit=2)
    assert [a.action_id for a in children.items] == ["r-a0", "r-a1"]
    assert children.items[0].children == 1 and children.cursor is not None
    rest = store.list_actions("r", parent="r-root", cursor=children.cursor)
    assert [a.action_id for a in rest.items] == ["r-a2", "r-a3", "r-a4"] and rest.cursor is None
    grouped = {g.group: (g.total, g.counts) for g in store.groups("r", "r-root")}
    assert grouped == {
        "": (2, {ActionPhase.SUCCEEDED: 2}),
        "fanout": (3, {ActionPhase.SUCCEEDED: 3}),
    }
    failed = store.list_actions("r", phases=("failed",)).items
    assert [a.action_id for a in failed] == ["r-a9"]
    assert store.phase_counts("r") == {ActionPhase.SUCCEEDED: 6, ActionPhase.FAILED: 1}
    run = store.get_run("r")
    assert run is not None and run.counts == store.phase_counts("r")


def test_phases_have_flytes_spellings() -> None:
    assert [p.value for p in ActionPhase] == [
        "queued",
        "waiting_for_resources",
        "initializing",
        "running",
        "succeeded",
        "failed",
        "aborted",
        "timed_out",
    ]
    assert (
        ActionPhase.TIMED_OUT == "timed_out" and parse_phase("TIMED_OUT") is ActionPhase.TIMED_OUT
    )
    assert [p.is_terminal for p in ActionPhase] == [False] * 4 + [True] * 4
    with pytest.raises(ValueError, match="the phases are queued"):
        parse_phase("done")


def test_the_store_is_read_without_a_controller(settings: StoreSettings) -> None:
    from reuse_runtime.store import SqliteRunReader

    with SqliteRunStore.open(settings) as store:
        record_run(store, "past")
    reader = SqliteRunReader(settings.path)
    try:
        run = reader.get_run("past")
        assert run is not None and run.phase is ActionPhase.SUCCEEDED
        assert len(reader.list_actions("past").items) == 3
    finally:
        reader.close_reads()


def test_a_view_of_a_messages_bytes_is_a_value_too(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = StoreSettings(path=tmp_path / "runs.sqlite", blob_threshold=1000)
    message = bytearray(b"header" + b"v" * 5000)
    with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("r"))
        store.action_ended(action("r", 1, output=memoryview(message)[6:20]))
        store.action_ended(action("r", 2, output=memoryview(message)[6:]))
        flushed(store)
        assert store.action_output("r", "r-a1") == b"v" * 14
        assert store.action_output("r", "r-a2") == b"v" * 5000


def test_a_large_submission_is_kept_until_its_run_ends(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = StoreSettings(path=tmp_path / "runs.sqlite", blob_threshold=100)
    submission = b"s" * 1000
    with SqliteRunStore.open(settings) as store:
        store.run_submitted(submitted("r", submission=submission))
        (unfinished,) = flushed(store).unfinished_runs()
        assert unfinished.submission == submission
        store.run_ended(ended("r"))
        assert store.prune()
        assert store.unfinished_runs() == ()
        assert [p for p in settings.blob_dir.rglob("*") if p.is_file()] == []
        assert store.statistics().blob_bytes == 0


def test_a_large_batch_keeps_every_action_in_order_and_the_last_record_of_a_repeat(
    store: SqliteRunStore,
) -> None:
    # 60 rows go in per statement and the rest in one more: 131 records, one of them an
    # action recorded twice in the same batch, its second record the one that stands.
    store.run_submitted(submitted("big"))
    for n in range(130):
        store.action_ended(action("big", n))
    store.action_ended(action("big", 7, phase=ActionPhase.FAILED, output=b""))
    got = flushed(store).list_actions("big", limit=1000).items
    assert [a.action_id for a in got] == [f"big-a{n}" for n in range(130) if n != 7] + ["big-a7"]
    assert got[-1].phase is ActionPhase.FAILED
    assert got[0].phase is ActionPhase.SUCCEEDED and got[0].inputs_preview == "(0,)"
    assert store.action_output("big", "big-a129") == b"v129"


def test_alike_actions_and_others_keep_their_order_and_every_field(
    store: SqliteRunStore,
) -> None:
    # Children like their siblings (no preview, error or attempts) share their fields in
    # one statement, 100 rows at a time; a short run of them, and the others, do not.
    store.run_submitted(submitted("mix"))
    plain = {"inputs_preview": ""}
    records = [action("mix", n, **plain) for n in range(250)]
    records += [action("mix", n, parent_id="mix-a1", **plain) for n in range(250, 253)]
    records.append(
        action(
            "mix",
            253,
            phase=ActionPhase.FAILED,
            output=b"",
            error=ErrorInfo("user", "ValueError", "no", "Traceback", b"pickled"),
            **plain,
        )
    )
    records += [action("mix", n, group="g", replica="env-2", **plain) for n in range(254, 274)]
    records.append(action("mix", 5, ended=NOW + 99, **plain))  # a repeat: this one stands
    for record in records:
        store.action_ended(record)
    got = flushed(store).list_actions("mix", limit=1000).items
    expected = [r for r in records if r.action_id != "mix-a5"] + [records[-1]]
    assert [a.action_id for a in got] == [r.action_id for r in expected]
    for info, record in zip(got, expected, strict=True):
        assert (info.parent_id, info.call_key, info.task, info.environment, info.group) == (
            record.parent_id,
            record.call_key,
            record.task,
            record.environment,
            record.group,
        )
        assert (info.phase, info.created, info.started, info.ended, info.replica) == (
            record.phase,
            record.created,
            record.started,
            record.ended,
            record.replica,
        )
        assert info.inputs_preview == "" and info.attempts == ()
        assert (info.error is None) == (record.error is None)
    assert got[-1].ended == NOW + 99
    failed = store.get_action("mix", "mix-a253")
    assert failed is not None and failed.error is not None and failed.error.type == "ValueError"
    assert store.action_output("mix", "mix-a253") == b"pickled"
    assert store.action_output("mix", "mix-a260") == b"v260"
    assert [a.action_id for a in store.list_actions("mix", parent="mix-a1").items] == [
        "mix-a250",
        "mix-a251",
        "mix-a252",
    ]
    assert [g.group for g in store.groups("mix", "mix-root")] == ["", "g"]
