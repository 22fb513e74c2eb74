"""A task's inputs from the command line, converted by its annotations."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
from pathlib import Path
from typing import NamedTuple, TypedDict

import pydantic
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


# ---------------------------------------------------------------- JSON inputs, as `flyte run`


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


CORNER = Point(1, 2)


@dataclasses.dataclass
class Shape:
    name: str
    points: list[Point]
    center: Point | None = None
    made: datetime.datetime | None = None
    data: flyte.io.File | None = None


class Settings(pydantic.BaseModel):
    rate: float
    layers: list[int] = []


class Job(pydantic.BaseModel):
    settings: Settings
    label: str = "job"


class Pair(NamedTuple):
    a: int
    b: str = "b"


class Row(TypedDict):
    id: int
    tags: list[str]


@env.task
async def structured(
    point: Point = CORNER,
    shape: Shape | None = None,
    job: Job | None = None,
    points: list[Point] | None = None,
    by_name: dict[str, Point] | None = None,
    weights: dict[int, float] | None = None,
    pair: Pair | None = None,
    row: Row | None = None,
    both: tuple[int, str] | None = None,
    when: datetime.datetime | None = None,
    day: datetime.date | None = None,
    wait: datetime.timedelta | None = None,
    verbose: bool = True,
    either: int | str | None = None,
    folder: flyte.io.Dir | None = None,
) -> None: ...


def test_dataclasses_models_and_containers_are_built_from_json(tmp_path: Path) -> None:
    got = task_inputs(
        structured,
        [
            '--point={"x": 5}',  # the rest from the default, as flyte run merges
            "shape="
            + json.dumps(
                {
                    "name": "s",
                    "points": [{"x": 1}],
                    "center": {"x": 3, "y": 4},
                    "made": "2024-01-02",
                }
            ),
            "--job",
            '{"settings": {"rate": 0.5, "layers": [1, 2]}}',
            'points=[{"x": 1}, {"x": 2, "y": 3}]',
            'by_name={"a": {"x": 7}}',
            'weights={"1": 2}',
            "pair=[1]",
            'row={"id": 1, "tags": ["t"]}',
            'both={"item_0": 1, "item_1": "one"}',
        ],
    )
    assert got == {
        "point": Point(5, 2),
        "shape": Shape("s", [Point(1)], Point(3, 4), datetime.datetime(2024, 1, 2)),
        "job": Job(settings=Settings(rate=0.5, layers=[1, 2])),
        "points": [Point(1), Point(2, 3)],
        "by_name": {"a": Point(7)},
        "weights": {1: 2.0},
        "pair": Pair(1, "b"),
        "row": {"id": 1, "tags": ["t"]},
        "both": (1, "one"),
    }
    # A JSON (or YAML) file holds the value as well.
    (tmp_path / "shape.json").write_text('{"name": "f", "points": []}')
    (tmp_path / "job.yaml").write_text("settings:\n  rate: 2\n")
    got = task_inputs(
        structured, [f"shape={tmp_path / 'shape.json'}", f"job={tmp_path / 'job.yaml'}"]
    )
    assert got == {"shape": Shape("f", []), "job": Job(settings=Settings(rate=2))}


def test_files_inside_json_and_dirs_take_local_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REUSE_RUNTIME_STORE", str(tmp_path / "store"))
    (tmp_path / "in.csv").write_text("x")
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a.txt").write_text("a")
    shape = json.dumps({"name": "s", "points": [], "data": str(tmp_path / "in.csv")})
    got = task_inputs(structured, [f"shape={shape}", f"folder={tmp_path / 'tree'}"])
    assert Path(got["shape"].data.path).read_text() == "x"
    assert str(tmp_path / "store") in got["shape"].data.path
    assert (Path(got["folder"].path) / "a.txt").read_text() == "a"


def test_times_durations_bools_and_unions_take_flyte_run_forms() -> None:
    got = task_inputs(
        structured,
        ["when=2024-01-02 - P1D", "day=2024-05-06", "wait=P1DT2H", "--no-verbose", "either=3"],
    )
    assert got == {
        "when": datetime.datetime(2024, 1, 1),
        "day": datetime.date(2024, 5, 6),
        "wait": datetime.timedelta(days=1, hours=2),
        "verbose": False,
        "either": 3,  # int before str, as flyte run tries them
    }
    for text, seconds in [("1:30", 90), (":45", 45), ("10 minutes | 5 seconds", 605), ("2.5", 2.5)]:
        assert task_inputs(structured, [f"wait={text}"])["wait"].total_seconds() == seconds
    before = datetime.datetime.now()
    assert (
        before - datetime.timedelta(hours=1, seconds=1)
        <= (task_inputs(structured, ["when=now - PT1H"])["when"])
        <= datetime.datetime.now() - datetime.timedelta(hours=1)
    )
    assert task_inputs(structured, ["verbose=f", "either=abc"]) == {
        "verbose": False,
        "either": "abc",
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["point=1"], "takes Point; 1 is not a JSON object for Point"),
        (['point={"x": "a"}'], "takes Point; point.x: 'a' is not an int"),
        (['point={"z": 1}'], "takes Point; Point has no field 'z'; its fields: x, y"),
        (['shape={"points": []}'], "takes Shape | None; Shape needs name"),
        (
            ['shape={"name": "s", "points": [{"x": 1}, {"x": true}]}'],
            "takes Shape | None; shape.points[1].x: true is not an int",
        ),
        (
            ['job={"settings": {"rate": "fast"}}'],
            "takes Job | None; job.settings.rate: 'fast': Input should be a valid number",
        ),
        (["points={x"], "takes list[Point] | None; '{x' is not valid JSON (Expecting property"),
        (['weights={"a": 1}'], "takes dict[int, float] | None; key 'a' is not an int"),
        (["both=[1]"], "takes tuple[int, str] | None; [1] has 1 items, not 2"),
        (["when=yesterday"], "takes datetime | None; 'yesterday' is not a datetime"),
        (["wait=soon"], "takes timedelta | None; 'soon' is not a duration"),
        (["folder=/no/such/dir"], "takes Dir | None; '/no/such/dir' is not a directory"),
    ],
)
def test_a_bad_json_value_is_one_line_naming_the_parameter_and_type(
    params: list[str], message: str
) -> None:
    with pytest.raises(flyte.errors.InputError) as raised:
        task_inputs(structured, params)
    name = params[0].split("=")[0]
    assert str(raised.value).startswith(f"parameter {name} of task structured {message}")
    assert "\n" not in str(raised.value)


def test_a_value_after_an_option_may_hold_an_equals_sign() -> None:
    got = task_inputs(structured, ["--by_name", '{"a=b": {"x": 1}}', "verbose=no"])
    assert got == {"by_name": {"a=b": Point(1)}, "verbose": False}
