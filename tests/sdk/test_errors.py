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


class PaymentError(Exception):
    def __init__(self, code: int, kind: str) -> None:
        super().__init__(f"payment failed with {code}")
        self.code, self.kind = code, kind


def test_a_tasks_own_code_and_kind_stay_its_own() -> None:
    """Flyte's ``code``, ``kind`` and ``worker`` fill in only what the exception lacks."""
    original = PaymentError(402, "card")
    seen = as_user_error(original, worker="r1")
    assert isinstance(seen, PaymentError) and isinstance(seen, flyte.errors.RuntimeUserError)
    assert (seen.code, seen.kind, seen.worker) == (402, "card", "r1")  # type: ignore[attr-defined]
    again = pickle.loads(cloudpickle.dumps(seen))
    assert type(again) is PaymentError and again.__dict__ == original.__dict__
    regrafted = as_user_error(again, worker="r2")
    assert (regrafted.code, regrafted.kind, regrafted.worker) == (402, "card", "r2")  # type: ignore[attr-defined]
    plain = pickle.loads(cloudpickle.dumps(as_user_error(Custom("x", 2), worker="r1")))
    assert plain.__dict__ == {"what": "x"}  # what grafting added does not travel


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


def test_a_tasks_own_exception_class_arrives_as_itself_across_processes(tmp_path: Path) -> None:
    """Classes whose ``__init__`` does not take their ``args``, from the script (a module
    named ``_reuse_main_script`` in replicas) and from a module, caught by their own name
    in the driver and in a parent task; one the driver cannot load arrives as its base."""
    (tmp_path / "bank.py").write_text(
        textwrap.dedent(
            """
            class Declined(ValueError):
                def __init__(self, *, card, reason="expired"):
                    super().__init__(f"card {card} declined: {reason}")
                    self.card = card
                    self.reason = reason
            """
        )
    )
    (tmp_path / "remote").mkdir()  # on the replica's path only: the driver cannot import it
    (tmp_path / "remote" / "remote_bank.py").write_text(
        textwrap.dedent(
            """
            from _reuse_main_script import PaymentError

            class Frozen(PaymentError):
                def __init__(self, account):
                    super().__init__(f"account {account} is frozen")
                    self.account = account
            """
        )
    )
    done = run_python(
        tmp_path,
        """
        import os, sys
        import reuse_runtime as flyte
        from bank import Declined

        env = flyte.TaskEnvironment(
            name="own", reusable=flyte.ReusePolicy(replicas=1, concurrency=4)
        )

        class InsufficientFunds(Exception):
            def __init__(self, account, missing):
                super().__init__(f"account {account} is short by {missing}")
                self.account = account
                self.missing = missing
                self.checked_by = "ledger"

        class PaymentError(LookupError):
            pass

        class Corrupt(Exception):
            def __init__(self, file):
                super().__init__("corrupt ledger")
                self.file = file
                self.line = 3

        @env.task
        async def pay(account: str, missing: int) -> None:
            try:
                {}["balance"]
            except KeyError as e:
                raise InsufficientFunds(account, missing) from e

        @env.task
        async def pay_while_handling(account: str) -> None:
            try:
                1 / 0
            except ZeroDivisionError:
                raise InsufficientFunds(account, 1)

        @env.task
        async def charge(card: str) -> None:
            raise Declined(card=card, reason="stolen")

        @env.task
        async def freeze(where: str) -> None:
            sys.path.insert(0, where)
            import remote_bank
            raise remote_bank.Frozen("a-7")

        @env.task
        async def check(path: str) -> None:
            raise Corrupt(open(path))

        @env.task
        async def parent(where: str) -> list[str]:
            seen = []
            try:
                await pay("a-1", 5)
            except InsufficientFunds as e:
                seen.append(f"parent {type(e).__name__} {e.account} {e.missing} {e.code}")
            try:
                await charge("4242")
            except Declined as e:
                seen.append(f"parent {type(e).__name__} {e.card} {e.reason}")
            try:
                await freeze(where)
            except PaymentError as e:
                seen.append(f"parent {type(e).__name__} {e.account}")
            return seen

        if __name__ == "__main__":
            where = os.path.abspath("remote")
            print(*flyte.run(parent, where).outputs()[0], sep="\\n")
            try:
                flyte.run(pay, "a-2", 7).outputs()
            except InsufficientFunds as e:
                print("driver", type(e).__name__, e.account, e.missing, e.checked_by, e.code)
                print("cause", "KeyError: 'balance'" in str(e.__cause__))
            try:
                flyte.run(pay_while_handling, "a-3").outputs()
            except InsufficientFunds as e:
                print("context", "ZeroDivisionError" in str(e.__cause__), e.account)
            try:
                flyte.run(charge, "1111").outputs()
            except Declined as e:
                print("driver", type(e).__name__, e.card, e.reason)
            try:
                flyte.run(freeze, where).outputs()
            except PaymentError as e:
                kinds = isinstance(e, LookupError), isinstance(e, flyte.errors.TaskRaisedError)
                print("driver stand-in", e.code, e.account, *kinds)
                print("driver stand-in", e)
            try:
                flyte.run(check, os.path.abspath("bank.py")).outputs()
            except Corrupt as e:
                print("corrupt", e.line, hasattr(e, "file"), e.__notes__)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "parent InsufficientFunds a-1 5 InsufficientFunds",
        "parent Declined 4242 stolen",
        "parent Frozen a-7",
        "driver InsufficientFunds a-2 7 ledger InsufficientFunds",
        "cause True",
        "context True a-3",
        "driver Declined 1111 stolen",
        "driver stand-in Frozen a-7 True True",
        "driver stand-in task freeze failed: remote_bank.Frozen: account a-7 is frozen",
        "corrupt 3 False [\"attribute 'file' (an open file ('"
        + str(tmp_path / "bank.py")
        + "')) was left out: it cannot be pickled\"]",
    ]
    # The run summaries show the replica's tracebacks: the script's classes by their names.
    assert "InsufficientFunds: account a-2 is short by 7" in done.stderr
    assert "_reuse_main_" not in done.stdout + done.stderr


def test_a_task_timeout_is_a_timeout_error(tmp_path: Path) -> None:
    assert issubclass(flyte.TaskTimedOutError, TimeoutError)
    assert isinstance(flyte.errors.TaskTimeoutError("slow"), TimeoutError)
    done = run_python(
        tmp_path,
        """
        import asyncio
        import reuse_runtime as flyte

        env = flyte.TaskEnvironment(name="slow", reusable=flyte.ReusePolicy(replicas=1))

        @env.task(timeout=0.5)
        async def slow() -> None:
            await asyncio.sleep(30)

        @env.task
        async def parent() -> str:
            try:
                await slow()
            except TimeoutError as e:
                return f"parent {type(e).__name__}"
            return "not caught"

        if __name__ == "__main__":
            print(flyte.run(parent).outputs()[0])
            try:
                flyte.run(slow).outputs()
            except TimeoutError as e:
                print("driver", type(e).__name__, isinstance(e, flyte.errors.TaskTimeoutError))
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "parent TaskTimedOutError",
        "driver TaskTimedOutError True",
    ]


def test_open_files_are_refused_as_arguments_and_results(tmp_path: Path) -> None:
    (tmp_path / "ledger.csv").write_text("a,1\n")
    done = run_python(
        tmp_path,
        """
        import reuse_runtime as flyte

        env = flyte.TaskEnvironment(name="files", reusable=flyte.ReusePolicy(replicas=1))

        @env.task
        async def count(ledger) -> int:
            return len(ledger.read())

        @env.task
        async def opened(path: str):
            return open(path)

        @env.task
        async def parent(path: str) -> str:
            with open(path) as ledger:
                try:
                    await count(ledger)
                except flyte.errors.BadInputError as e:
                    return f"parent: {e}"
            return "sent"

        if __name__ == "__main__":
            print(flyte.run(parent, "ledger.csv").outputs()[0])
            with open("ledger.csv") as ledger:
                try:
                    flyte.run(count, ledger)
                except flyte.errors.BadInputError as e:
                    print(f"driver: {e}")
            try:
                flyte.run(opened, "ledger.csv").outputs()
            except flyte.errors.BadOutputError as e:
                print(f"result: {e}")
        """,
    )
    assert done.returncode == 0, done.stderr
    sent = (
        "argument 0 is an open file ('ledger.csv'), which cannot travel to a replica; "
        "pass its path instead, or a flyte.io.File"
    )
    assert done.stdout.splitlines() == [
        f"parent: {sent}",
        f"driver: {sent}",
        "result: task opened failed: the result of task opened is an open file "
        "('ledger.csv'), which cannot travel back to the caller; return its path instead, "
        "or a flyte.io.File",
    ]
