"""pickling.dumps: exceptions arrive as themselves; process resources are refused."""

from __future__ import annotations

import asyncio
import errno
import io
import pickle
import socket
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import pytest

from reuse_runtime import errors, pickling


class InsufficientFunds(Exception):
    def __init__(self, account: str, missing: int) -> None:
        super().__init__(f"account {account} is short by {missing}")
        self.account = account
        self.missing = missing


class Declined(ValueError):
    def __init__(self, *, card: str, reason: str = "expired") -> None:
        super().__init__(f"card {card} declined: {reason}")
        self.card = card
        self.reason = reason
        self.retry_after = 30  # an attribute no argument names


class Gone(FileNotFoundError):
    def __init__(self, path: str) -> None:
        super().__init__(errno.ENOENT, "gone", path)


def test_an_exception_whose_init_does_not_take_its_args_arrives_as_itself() -> None:
    for error in (InsufficientFunds("a-1", 5), Declined(card="4242")):
        with pytest.raises(TypeError):  # what plain cloudpickle gives the caller
            pickle.loads(cloudpickle.dumps(error))
        copy = pickle.loads(pickling.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error) and copy.args == error.args
        assert copy.__dict__ == error.__dict__
    gone = pickle.loads(pickling.dumps(Gone("/data/x")))
    assert (type(gone), gone.errno, gone.strerror, gone.filename) == (
        Gone,
        errno.ENOENT,
        "gone",
        "/data/x",
    )
    assert str(gone) == str(Gone("/data/x"))


def test_an_exception_that_refers_to_itself_and_one_inside_a_value() -> None:
    error = InsufficientFunds("a-1", 5)
    error.me = error  # type: ignore[attr-defined]
    error.__notes__ = ["checked at noon"]  # add_note() from Python 3.11 on
    copy = pickle.loads(pickling.dumps({"failed": [error]}))["failed"][0]
    assert copy.me is copy and copy.__notes__ == ["checked at noon"]


@pytest.fixture
def vanishing_module() -> Iterator[types.ModuleType]:
    """A module that exists while an exception is pickled, and not when it is loaded."""
    module = types.ModuleType("vanishing_bank")
    exec(
        "from tests.test_pickling import InsufficientFunds\n"
        "class Overdrawn(InsufficientFunds):\n"
        "    def __init__(self, account):\n"
        "        super().__init__(account, 100)\n"
        "        self.limit = 0\n"
        "class Frozen(Exception):\n"
        "    pass\n",
        module.__dict__,
    )
    sys.modules[module.__name__] = module
    try:
        yield module
    finally:
        sys.modules.pop(module.__name__, None)


def test_a_class_the_caller_cannot_load_arrives_as_its_nearest_base(
    vanishing_module: types.ModuleType,
) -> None:
    overdrawn = pickling.dumps(vanishing_module.Overdrawn("a-9"))
    frozen = pickling.dumps(vanishing_module.Frozen("no access"))
    del sys.modules[vanishing_module.__name__]

    copy = pickle.loads(overdrawn)
    assert isinstance(copy, InsufficientFunds) and isinstance(copy, errors.TaskRaisedError)
    assert copy.code == "Overdrawn" and copy.type_name == "vanishing_bank.Overdrawn"
    assert (copy.account, copy.missing, copy.limit) == ("a-9", 100, 0)
    assert str(copy) == "vanishing_bank.Overdrawn: account a-9 is short by 100"
    again = pickle.loads(pickling.dumps(copy))  # a parent passing it on
    assert type(again) is type(copy) and again.__dict__ == copy.__dict__

    plain = pickle.loads(frozen)  # no base but Exception: a plain TaskRaisedError
    assert type(plain) is errors.TaskRaisedError and plain.code == "Frozen"
    assert str(plain) == "vanishing_bank.Frozen: no access"


def test_a_class_of_the_script_is_named_without_its_replica_module() -> None:
    cls = type("Point", (), {"__module__": f"{pickling.BUNDLE_PREFIX}shop"})
    assert pickling.user_type_name(cls) == "Point"
    assert pickling.user_type_name(ValueError) == "builtins.ValueError"
    assert pickling.user_type_name(InsufficientFunds) == "tests.test_pickling.InsufficientFunds"


def _resources(tmp_path: Path) -> list[tuple[object, str]]:
    path = tmp_path / "data.txt"
    path.write_text("x")
    loop = asyncio.new_event_loop()
    loop.close()
    return [
        (open(path), "an open file"),
        (open(path, "rb"), "an open file"),
        (open(path, "rb", buffering=0), "an open file"),
        (socket.socket(), "a socket"),
        (threading.Lock(), "a lock"),
        (threading.RLock(), "a lock"),
        (threading.Event(), "a threading.Event"),
        (asyncio.Lock(), "a lock"),
        (asyncio.Queue(), "an asyncio.Queue"),
        (loop, "an event loop"),
        ((i for i in range(3)), "a generator"),
    ]


def test_process_resources_are_refused_saying_what_to_send(tmp_path: Path) -> None:
    resources = _resources(tmp_path)
    try:
        for resource, what in resources:
            with pytest.raises(errors.ProcessResourceError) as raised:
                pickling.dumps({"nested": [resource]})
            assert raised.value.what.startswith(what) and raised.value.resource is resource
    finally:
        for resource, _ in resources:
            if isinstance(resource, (io.IOBase, socket.socket)):
                resource.close()
    with open(tmp_path / "data.txt") as file, pytest.raises(errors.ProcessResourceError) as raised:
        pickling.dumps(file)
    assert str(raised.value) == (
        f"an open file ({str(tmp_path / 'data.txt')!r}) cannot be pickled: "
        "send its path instead, or a flyte.io.File"
    )


def test_in_memory_streams_and_the_standard_streams_still_travel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert pickle.loads(pickling.dumps(io.StringIO("abc"))).read() == "abc"
    assert pickle.loads(pickling.dumps(io.BytesIO(b"abc"))).read() == b"abc"
    with open(tmp_path / "stderr", "w") as stderr:
        monkeypatch.setattr(sys, "stderr", stderr)  # a real file, as outside pytest
        assert pickle.loads(pickling.dumps(sys.stderr)) is sys.stderr  # by name, as before
