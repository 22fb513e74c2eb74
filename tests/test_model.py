"""dumps_args / dumps_plain: builtins take stdlib pickle, the rest cloudpickle, same bytes."""

from __future__ import annotations

import enum
import pickle
import socket
import threading
from collections import OrderedDict
from pathlib import Path

import cloudpickle
import pytest

from reuse_runtime.errors import BadInputError
from reuse_runtime.model import dumps_args, dumps_plain


class Color(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    "value",
    [
        ((5,), {}),
        ((1, "a", b"x", None, 2.5, True, 1j), {"k": [1, {2: (3,)}], "s": frozenset({4}), "t": {5}}),
        ((), {}),
    ],
)
def test_builtins_pickle_to_the_bytes_cloudpickle_gives(value: object) -> None:
    assert dumps_plain(value) == cloudpickle.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        ((Color.RED,), {}),  # a subclass of int
        ((lambda: 1,), {}),  # by value, only cloudpickle can
        ((OrderedDict(a=1),), {}),
        (list(range(1000)), {}),  # too big to be worth checking
    ],
)
def test_anything_else_is_left_to_cloudpickle(value: object) -> None:
    assert dumps_plain(value) is None


def test_a_list_that_contains_itself_is_left_to_cloudpickle() -> None:
    loop: list[object] = []
    loop.append(loop)
    assert dumps_plain(loop) is None


def test_dumps_args_round_trips_and_names_an_unpicklable_argument() -> None:
    assert pickle.loads(dumps_args((1, "x"), {"k": [2]})) == ((1, "x"), {"k": [2]})
    assert pickle.loads(dumps_args((Color.RED,), {}))[0][0] is Color.RED
    with pytest.raises(BadInputError, match="argument 'lock'"):
        dumps_args((1,), {"lock": threading.Lock()})


def test_dumps_args_refuses_an_open_file_saying_what_to_pass(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text("a,1\n")
    with open(path) as ledger, pytest.raises(BadInputError) as raised:
        dumps_args((ledger,), {})  # cloudpickle would send an io.StringIO of its text
    assert str(raised.value) == (
        f"argument 0 is an open file ({str(path)!r}), which cannot travel to a replica; "
        "pass its path instead, or a flyte.io.File"
    )
    with socket.socket() as sock, pytest.raises(BadInputError) as raised:
        dumps_args((1,), {"conn": {"to": sock}})
    assert str(raised.value) == (
        "argument 'conn' holds a socket, which cannot travel to a replica; "
        "pass its address instead, and connect where it is used"
    )
    with pytest.raises(BadInputError, match=r"argument 'lock' is a lock, .* create it where"):
        dumps_args((1,), {"lock": threading.Lock()})


@pytest.mark.parametrize("exc", [SystemExit(0), KeyboardInterrupt(), GeneratorExit()])
def test_a_pickled_base_exception_is_never_raised_as_itself(exc: BaseException) -> None:
    """A result from an older replica may carry one: the caller gets a task error instead."""
    from reuse_runtime.errors import TaskFailedError
    from reuse_runtime.model import ErrorKind, RemoteError

    error = RemoteError(ErrorKind.USER, "builtins.SystemExit", "0", "", pickle.dumps(exc))
    raised = error.to_exception("t")
    assert isinstance(raised, TaskFailedError)
    assert str(raised) == "task t failed: builtins.SystemExit: 0"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((12345,), {}),
        ((None, True, 2.5, 1j, "s", b"b"), {"k": 3, "n": None}),
        (([1, (2, 3)], {"a": {4}}), {}),  # containers: walked, still plain
        ((Color.RED,), {}),  # a subclass of int: cloudpickle's
        ((), {"f": len}),
    ],
)
def test_dumps_args_gives_cloudpickles_bytes(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    """Every path (plain values at once, a walk of containers, cloudpickle) gives the bytes
    cloudpickle gives: a call's replay key and cache key hash them."""
    data = dumps_args(args, kwargs)
    assert data == cloudpickle.dumps((args, kwargs))
    assert pickle.loads(data) == (args, kwargs)


# ---------------------------------------------------------------- versions of an environment


def test_a_code_version_is_a_new_pool_of_the_same_lineage() -> None:
    from dataclasses import replace

    from reuse_runtime.model import EnvironmentSpec, FunctionRef, PoolPolicy

    policy = PoolPolicy(min_replicas=1, max_replicas=2, concurrency=1, scaledown_ttl=1, idle_ttl=9)
    hook = FunctionRef("mylib", "warm", "a" * 64)
    spec = EnvironmentSpec("team", policy, on_start=hook, code_version="1" * 64)
    old_key = spec.key()
    assert replace(spec, code_bundle="").key() == old_key  # no bundle: keys as before
    edited = replace(
        spec,
        code_bundle="b" * 64,
        code_version="2" * 64,
        on_start=replace(hook, code_version="c" * 64),
        image='{"layers":[{"bundle_digest":"' + "d" * 64 + '"}]}',
    )
    again = replace(edited, code_bundle="e" * 64, image=edited.image.replace("d" * 64, "f" * 64))
    assert len({spec.key(), edited.key(), again.key()}) == 3
    assert edited.lineage() == again.lineage() and edited.lineage().startswith("team-")
    assert replace(spec, image=edited.image).lineage() == edited.lineage()
    assert edited.version() == "b" * 12 and spec.version() == "1" * 12
    # Other settings make another environment, not another version of this one.
    assert replace(edited, policy=replace(policy, max_replicas=3)).lineage() != edited.lineage()
    assert replace(edited, on_start=None).lineage() != edited.lineage()
