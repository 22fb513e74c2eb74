"""``flyte.map``: a task over items, concurrently, results in order."""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path

import pytest

import reuse_runtime as flyte
from tests.helpers import run_python

env = flyte.TaskEnvironment(name="maplocal")


@env.task
def double(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative {x}")
    return 2 * x


@env.task
def scale(x: int, factor: int) -> int:
    return x * factor


def test_outside_a_task_map_calls_here_in_order() -> None:
    assert list(flyte.map(double, [1, 2, 3])) == [2, 4, 6]
    out = list(flyte.map(double, [1, -1]))
    assert out[0] == 2 and isinstance(out[1], ValueError)
    with pytest.raises(ValueError):
        list(flyte.map(double, [-1], return_exceptions=False))
    assert list(flyte.map(functools.partial(scale, factor=3), [1, 2])) == [3, 6]
    assert list(flyte.map(scale, [1, 2], [5, 6])) == [5, 12]


def test_map_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="exactly one parameter"):
        list(flyte.map(functools.partial(scale), [1]))
    with pytest.raises(TypeError, match="task"):
        list(flyte.map(len, [[1]]))
    with pytest.raises(ValueError, match="concurrency"):
        list(flyte.map(double, [1], concurrency=-1))


def test_map_in_sync_and_async_tasks_on_replicas(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        textwrap.dedent(
            """
            import asyncio, functools, json
            import reuse_runtime as flyte

            env = flyte.TaskEnvironment(
                name="mapper", reusable=flyte.ReusePolicy(replicas=1, concurrency=8)
            )
            live = 0
            peak = 0

            @env.task
            async def slow(x: int) -> int:
                global live, peak
                live += 1
                peak = max(peak, live)
                await asyncio.sleep(0.05)
                live -= 1
                if x == 3:
                    raise ValueError("three")
                return x * 10

            @env.task
            def fn(x: int, slope: int = 2) -> int:
                return slope * x + 5

            @env.task
            def sync_main(n: int) -> float:
                ys = list(flyte.map(fn, range(n)))
                return sum(ys) / len(ys)

            @env.task
            async def async_main() -> list:
                got = []
                async for r in flyte.map.aio(slow, range(6), concurrency=2, group_name="slow"):
                    got.append(repr(r))
                scaled = [r async for r in flyte.map.aio(functools.partial(fn, slope=3), [1, 2])]
                try:
                    [r async for r in flyte.map.aio(slow, [3], return_exceptions=False)]
                except ValueError as e:
                    got.append(f"raised {e}")
                return got + scaled + [peak]  # one replica: its tasks share `peak`

            if __name__ == "__main__":
                print(flyte.run(sync_main, 10).outputs()[0])
                print(json.dumps(flyte.run(async_main).outputs()[0]))
            """
        ),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "14.0"
    got = __import__("json").loads(lines[1])
    assert got[:6] == ["0", "10", "20", "ValueError('three')", "40", "50"]
    assert got[6:] == ["raised three", 8, 11, 2]  # never more than 2 at once


def test_sync_map_inside_an_async_task_says_to_use_aio(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        textwrap.dedent(
            """
            import reuse_runtime as flyte

            env = flyte.TaskEnvironment(name="wrongmap", reusable=flyte.ReusePolicy(replicas=1))

            @env.task
            async def one(x: int) -> int:
                return x

            @env.task
            async def main() -> list:
                return list(flyte.map(one, [1, 2]))

            if __name__ == "__main__":
                try:
                    flyte.run(main).outputs()[0]
                except TypeError as e:
                    print(e)
            """
        ),
    )
    assert done.returncode == 0, done.stderr
    assert "use `async for r in flyte.map.aio(...)` there" in done.stdout
