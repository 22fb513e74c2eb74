"""Every field of a task, a submission and a result survives the wire: model -> message
-> bytes -> message -> model gives back an equal object (the builders are positional)."""

from __future__ import annotations

import pytest

from reuse_runtime.model import (
    CodeBundle,
    ErrorKind,
    FunctionRef,
    RemoteError,
    RetryBackoff,
    RunOptions,
    Submission,
    TaskResult,
    TaskSpec,
    TaskState,
)
from reuse_runtime.wire import convert
from reuse_runtime.wire import status as wire_status
from reuse_runtime.wire.v1 import runtime_pb2 as pb

# Every field set, each to a value no other field has.
FULL_TASK = TaskSpec(
    task_id="t-1",
    name="pkg.task",
    args=b"args",
    ref=FunctionRef("pkg.mod", "task", "v1"),
    pickled=None,
    bundle=CodeBundle("pkg.mod", "d" * 64, "mod.py", b"source"),
    timeout=12.5,
    run_id="run-2",
    parent_task_id="parent-3",
    group="group-4",
    custom_context=(("a", "1"), ("b", "2")),
    attempt=5,
    run_options=RunOptions(True, True, (("E", "v"),), 10),
    call_key="key-6",
)
BY_VALUE = TaskSpec("t-7", "lambda", b"", pickled=b"pickled-fn", run_id="run-8")


@pytest.mark.parametrize("spec", [FULL_TASK, BY_VALUE, TaskSpec("t-9", "bare", b"x")])
def test_a_task_survives_the_wire(spec: TaskSpec) -> None:
    data = convert.task_to_proto(spec).SerializeToString()
    assert convert.task_from_proto(pb.TaskSpec.FromString(data)) == spec


def test_a_submission_survives_the_wire() -> None:
    submission = Submission("env-1", FULL_TASK, 3, True, "cache-2", True, RetryBackoff(0.5, 2, 8))
    data = convert.submission_to_proto(submission).SerializeToString()
    assert convert.submission_from_proto(pb.Submission.FromString(data)) == submission


@pytest.mark.parametrize(
    "result",
    [
        TaskResult("t-1", TaskState.SUCCEEDED, b"value", None, "replica-2", 1.5, 3, True),
        TaskResult(
            "t-4",
            TaskState.FAILED,
            b"",
            RemoteError(ErrorKind.USER, "ValueError", "bad", "Traceback ...", b"pickled"),
            "replica-5",
            0.25,
            2,
            False,
        ),
    ],
)
def test_a_result_survives_the_wire(result: TaskResult) -> None:
    data = convert.result_to_proto(result).SerializeToString()
    assert convert.result_from_proto(pb.TaskResult.FromString(data)) == result


def test_code_bundles_and_versions_survive_the_wire() -> None:
    from reuse_runtime import model
    from reuse_runtime.wire import convert

    policy = model.PoolPolicy(1, 2, 3, 4.0, 5.0)
    env = model.EnvironmentSpec("team", policy, code_bundle="a" * 64)
    assert convert.environment_from_proto(convert.environment_to_proto(env)) == env
    init = model.ReplicaInit(environment="team", code_bundle="a" * 64, fetch_code=True)
    assert convert.init_from_proto(convert.init_to_proto(init)) == init
    status = model.ControllerStatus(
        environments=(
            model.EnvironmentStatus(
                "team-1", "team", 1, 2, 3, 0, (), 5, 0, False,
                version="aaaaaaaaaaaa", superseded=True, runs=("r1", "r2"),
            ),
        ),
        rss_bytes=1,
        address="x:1",
    )  # fmt: skip
    assert wire_status.status_from_proto(wire_status.status_to_proto(status)) == status
