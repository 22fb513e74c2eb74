"""A task's inputs from the command line, converted by its annotations."""

from __future__ import annotations

import enum
from pathlib import Path

import pytest

import reuse_runtime as flyte
from reuse_runtime.sdk.inputs import task_inputs

env = flyte.TaskEnvironment(name="inputs")


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@env.task
async def typed(
    n: int,
    name: str,
    ratio: float = 0.5,
    flag: bool = False,
    tags: list[str] | None = None,
    color: Color = Color.RED,
    f: flyte.io.File | None = None,
) -> None: ...


@env.task
async def untyped(x, y=1):  # type: ignore[no-untyped-def]
    ...


def test_values_convert_by_annotation() -> None:
    got = task_inputs(
        typed,
        ["n=3", "name=007", "--ratio", "2.5", "--flag", "--tags", '["a", "b"]', "color=BLUE"],
    )
    assert got == {
        "n": 3,
        "name": "007",
        "ratio": 2.5,
        "flag": True,
        "tags": ["a", "b"],
        "color": Color.BLUE,
    }
    assert task_inputs(typed, ["n=1", "name=x", "tags=None", "flag=no"])["tags"] is None
    assert task_inputs(untyped, ["x=[1, 2]", "y=hello"]) == {"x": [1, 2], "y": "hello"}


def test_a_file_argument_is_copied_into_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REUSE_RUNTIME_STORE", str(tmp_path / "store"))
    (tmp_path / "in.csv").write_text("x")
    got = task_inputs(typed, ["n=1", "name=x", f"f={tmp_path / 'in.csv'}"])
    assert Path(got["f"].path).read_text() == "x"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["n=abc", "name=x"], "parameter n of task typed takes int; 'abc' is not an int"),
        (["n=1"], "task typed needs name=<str>"),
        (["n=1", "name=x", "nn=2"], "task typed has no parameter 'nn'; its parameters: n, name"),
        (["n=1", "name=x", "flag=maybe"], "parameter flag of task typed takes bool"),
        (["n=1", "name=x", "tags=[1"], "parameter tags of task typed takes list[str] | None"),
        (["n=1", "name=x", "color=GREEN"], "not one of RED, BLUE"),
        (["n"], "arguments look like name=value"),
        (["n=1", "name=x", "--ratio"], "parameter ratio of task typed needs a value"),
    ],
)
def test_bad_values_name_the_parameter(params: list[str], message: str) -> None:
    with pytest.raises(flyte.errors.InputError) as raised:
        task_inputs(typed, params)
    assert message in str(raised.value)
