"""``flyte.errors``: Flyte's exception names, in reuse-runtime's one hierarchy."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import cloudpickle
import pytest

import reuse_runtime as flyte
from reuse_runtime.user_exceptions import as_user_error
from tests.helpers import run_python


def test_flyte_names_sit_in_one_hierarchy() -> None:
    e = flyte.errors
    assert issubclass(e.BaseRuntimeError, flyte.ReuseRuntimeError)
    assert issubclass(e.BaseRuntimeError, RuntimeError)
    for user in (e.OOMError, e.TaskTimeoutError, e.RetriesExhaustedError, e.ActionAbortedError):
        assert issubclass(user, e.RuntimeUserError)
    assert issubclass(e.OOMError, e.ReplicaLostError)
    assert issubclass(flyte.TaskTimedOutError, e.TaskTimeoutError)
    assert issubclass(flyte.TaskCancelledError, e.ActionAbortedError)
    assert issubclass(flyte.BacklogFullError, e.SlowDownError)
    assert issubclass(e.InternalError, e.RuntimeSystemError)
    assert not issubclass(e.InternalError, e.RuntimeUserError)


def test_flyte_constructors_and_attributes() -> None:
    e = flyte.errors
    oom = e.OOMError("OOMError", "out of memory")
    assert (oom.code, oom.kind, str(oom)) == ("OOMError", "user", "out of memory")
    user = e.RuntimeUserError("MyCode", "it broke", "replica-1")
    assert (user.code, user.kind, user.worker) == ("MyCode", "user", "replica-1")
    assert e.RuntimeSystemError("X", "y").kind == "system"
    assert e.TaskTimeoutError("too slow").code == "TaskTimeoutError"
    assert e.NonRecoverableError("stop").code == "NonRecoverableError"
    ours = flyte.TaskFailedError("boom", type_name="builtins.KeyError", task="t")
    assert ours.code == "KeyError" and str(ours) == "task t failed: builtins.KeyError: boom"


@pytest.mark.parametrize(
    "error",
    [
        flyte.errors.RuntimeUserError("MyCode", "msg", "w"),
        flyte.errors.OOMError("OOMError", "out of memory"),
        flyte.errors.TaskTimeoutError("slow"),
        flyte.errors.InvalidPackageError("libfoo", "no such package"),
        flyte.TaskFailedError("boom", type_name="x.Y", remote_traceback="tb", task="t"),
    ],
)
def test_every_error_survives_pickling(error: Exception) -> None:
    copy = pickle.loads(cloudpickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error) and copy.__dict__ == error.__dict__


class Custom(Exception):
    def __init__(self, what: str, count: int) -> None:
        super().__init__(what, count)
        self.what = what


def test_a_tasks_exception_arrives_as_itself_and_as_runtime_user_error() -> None:
    unicode = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    for original in (ValueError("bad"), KeyError("k"), Custom("x", 2), OSError(2, "gone"), unicode):
        seen = as_user_error(original, worker="r1")
        assert isinstance(seen, type(original))
        assert isinstance(seen, flyte.errors.RuntimeUserError)
        assert type(seen).__name__ == type(original).__name__
        assert str(seen) == str(original) and seen.args == original.args
        assert seen.code == type(original).__name__ and seen.worker == "r1"  # type: ignore[attr-defined]
        again = pickle.loads(cloudpickle.dumps(seen))
        assert type(again) is type(original)  # on the wire it is the original again
    assert as_user_error(Custom("x", 2)).what == "x"  # type: ignore[attr-defined]
    exit_ = SystemExit(3)
    assert as_user_error(exit_) is exit_  # not an Exception: left alone


def test_a_failed_result_in_a_sum_raises_the_error_not_a_type_error() -> None:
    failed = flyte.errors.RuntimeUserError("ValueError", "bad input")
    with pytest.raises(flyte.errors.RuntimeUserError, match="bad input"):
        sum([1, failed])  # type: ignore[list-item]


def test_errors_are_caught_by_flyte_names_across_tasks(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        textwrap.dedent(
            """
            import asyncio, os
            from pathlib import Path
            import reuse_runtime as flyte

            env = flyte.TaskEnvironment(
                name="errs", reusable=flyte.ReusePolicy(replicas=1, concurrency=4)
            )

            @env.task
            async def fails(x: int) -> int:
                raise ValueError(f"fails {x}")

            @env.task
            async def oom() -> None:
                raise flyte.errors.OOMError("OOMError", "out of memory")

            @env.task(retries=3)
            async def stop_now(path: str) -> None:
                Path(path).open("a").write("x")
                raise flyte.errors.NonRecoverableError("do not retry")

            @env.task(timeout=0.5)
            async def slow() -> None:
                await asyncio.sleep(30)

            @env.task
            async def main(path: str) -> list[str]:
                seen = []
                try:
                    await fails(1)
                except flyte.errors.RuntimeUserError as e:
                    seen.append(f"{type(e).__name__} code={e.code} kind={e.kind}")
                try:
                    await fails(2)
                except ValueError as e:
                    seen.append(f"ValueError {e}")
                try:
                    await oom()
                except flyte.errors.OOMError as e:
                    seen.append(f"OOMError {e}")
                try:
                    await stop_now(path)
                except flyte.errors.NonRecoverableError:
                    seen.append(f"attempts {len(Path(path).read_text())}")
                try:
                    await slow()
                except flyte.errors.TaskTimeoutError as e:
                    seen.append(f"timeout {type(e).__name__}")
                return seen

            if __name__ == "__main__":
                for line in flyte.run(main, os.path.abspath("attempts")).outputs()[0]:
                    print(line)
                try:
                    flyte.run(fails, 3).outputs()[0]
                except flyte.errors.RuntimeUserError as e:
                    print("driver", e.code)
            """
        ),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "ValueError code=ValueError kind=user",
        "ValueError fails 2",
        "OOMError out of memory",
        "attempts 1",
        "timeout TaskTimedOutError",
        "driver ValueError",
    ]
