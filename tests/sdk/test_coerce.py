"""A task's inputs built by its type hints: dicts become the models and dataclasses declared."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Any

import pydantic
import pytest

from reuse_runtime.errors import InputError
from reuse_runtime.sdk.coerce import LATER, converter, plan
from tests.helpers import run_python


class Query(pydantic.BaseModel):
    query: str
    name: str = "default"


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


def plain(a: int, b: str, c: dict[str, int], d: list[Any], *rest: Any, **more: Any) -> None: ...


def structured(
    q: Query, /, p: Point, ps: list[Point], maybe: Query | None, *, by: dict[str, Point]
) -> None: ...


def test_tasks_without_models_or_dataclasses_plan_nothing() -> None:
    assert plan("plain", plain) is None
    assert converter(int) is None and converter(dict[str, list[int]]) is None
    assert converter(tuple[()]) is None and converter(int | None) is None


def test_dicts_are_built_by_position_and_by_name_nested_too() -> None:
    inputs = plan("structured", structured)
    assert inputs is not None
    args, kwargs = inputs.apply(
        ({"query": "q"}, {"x": 1}),
        {"ps": [{"x": 2}, Point(3)], "maybe": None, "by": {"a": {"x": 4, "y": 5}}},
    )
    assert args == (Query(query="q"), Point(1))
    assert kwargs == {"ps": [Point(2), Point(3)], "maybe": None, "by": {"a": Point(4, 5)}}
    _, kwargs = inputs.apply((), {"maybe": {"query": "m"}, "p": Point(9)})
    assert kwargs == {"maybe": Query(query="m"), "p": Point(9)}
    built = converter(tuple[Point, int])
    assert built is not None and built(({"x": 1}, 2)) == (Point(1), 2)


def test_a_value_that_does_not_fit_is_one_line_naming_the_parameter() -> None:
    inputs = plan("structured", structured)
    assert inputs is not None
    with pytest.raises(InputError) as misfit:
        inputs.apply((), {"p": {"x": 1, "z": 2}})
    assert str(misfit.value).startswith("task structured: input 'p' does not fit: Point has no")
    with pytest.raises(InputError, match=r"input 'q' does not fit: .*query"):
        inputs.apply(({"name": "no query"},), {})


def test_hints_that_do_not_resolve_are_left_alone() -> None:
    def later(x: Undefined) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    assert plan("later", later) is None
    assert plan("later", later, final=False) is LATER

    def garbled(x: "list[") -> None: ...  # type: ignore[name-defined]  # noqa: F722

    assert plan("garbled", garbled, final=False) is None


def test_a_run_gives_the_task_the_declared_types(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        textwrap.dedent(
            """
            from __future__ import annotations
            import asyncio, dataclasses
            import pydantic
            import reuse_runtime as flyte

            env = flyte.TaskEnvironment(name="coerce", reusable=flyte.ReusePolicy(replicas=1))

            @env.task
            async def child(query: Query, points: list[Point] | None = None) -> str:
                return f"{query.name}:{query.query}:{[p.x for p in points or []]}"

            @env.task
            async def main() -> list:
                out = [await child({"query": "q1"}), await child(Query(query="q2"), [{"x": 3}])]
                try:
                    await child({"name": "no query"})
                except flyte.errors.InputError as e:
                    out.append(str(e))
                return out

            # Defined after the tasks: hints are read at the first call.
            class Query(pydantic.BaseModel):
                query: str
                name: str = "default"

            @dataclasses.dataclass
            class Point:
                x: int

            if __name__ == "__main__":
                print(flyte.run(child, query={"query": "top", "name": "n"}).outputs()[0])
                for line in flyte.run(main).outputs()[0]:
                    print(line.splitlines()[0])
            """
        ),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:4] == [
        "n:top:[]",
        "default:q1:[]",
        "default:q2:[3]",
        'task child: input \'query\' does not fit: query: {"name": "no query"}: Field required',
    ]
