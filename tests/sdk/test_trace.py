"""``flyte.trace``: helper calls inside tasks, recorded in the run's log."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import reuse_runtime as flyte
from reuse_runtime import runlog
from tests.helpers import run_python


@flyte.trace
def add(a: int, b: int) -> int:
    return a + b


@flyte.trace
async def twice(x: int) -> int:
    return 2 * x


@flyte.trace
def count(n: int):  # type: ignore[no-untyped-def]
    yield from range(n)


@flyte.trace
async def acount(n: int):  # type: ignore[no-untyped-def]
    for i in range(n):
        yield i


async def _collect() -> list[int]:
    return [i async for i in acount(3)]


def test_outside_a_task_traced_functions_are_plain_functions() -> None:
    assert add(1, 2) == 3
    assert asyncio.run(twice(4)) == 8
    assert list(count(3)) == [0, 1, 2]
    assert asyncio.run(_collect()) == [0, 1, 2]
    assert add.__name__ == "add"


def test_traced_calls_are_recorded_and_may_not_call_tasks(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        textwrap.dedent(
            """
            import reuse_runtime as flyte
            from reuse_runtime import paths, runlog

            env = flyte.TaskEnvironment(name="traced", reusable=flyte.ReusePolicy(replicas=1))

            @env.task
            async def leaf() -> int:
                return 1

            @flyte.trace
            async def fetch(x: int) -> int:
                return x + 1

            @flyte.trace
            def parse(text: str) -> int:
                return int(text)

            @flyte.trace
            async def sneaky() -> int:
                return await leaf()

            @env.task
            async def main() -> list:
                out = [await fetch(1), parse("7")]
                try:
                    parse("x")
                except ValueError:
                    out.append("parse failed")
                try:
                    await sneaky()
                except flyte.errors.TraceDoesNotAllowNestedTasksError as e:
                    out.append(type(e).__name__)
                return out

            if __name__ == "__main__":
                r = flyte.run(main)
                print(r.outputs()[0])
                log = runlog.find_run_log(paths.state_dir() / "runs", r.name)
                print(open(log).read())
            """
        ),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "[2, 7, 'parse failed', 'TraceDoesNotAllowNestedTasksError']"
    traced = [
        line.text
        for line in map(runlog.parse_line, lines[1:])
        if line is not None and (line.task, line.stream) == ("main", "trace")
    ]
    for name, outcome in [("fetch", "ok"), ("parse", "ok"), ("parse", "raised ValueError")]:
        assert any(t.startswith(f"trace {name}: ") and t.endswith(outcome) for t in traced)
    assert "trace" not in done.stderr  # in the log, not on the terminal
