"""The executor in-process: every task reports exactly once, however it ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from reuse_runtime.context import current_task
from reuse_runtime.model import ErrorKind, FunctionRef, TaskResult, TaskSpec, TaskState, dumps_args
from reuse_runtime.worker.executor import Executor, ExecutorConfig

TASKS = "tests.worker.tasks"


def _spec(task_id: str, qualname: str, *args: object) -> TaskSpec:
    return TaskSpec(task_id, qualname, dumps_args(args, {}), ref=FunctionRef(TASKS, qualname))


class _Reports:
    """What ``done`` was given, by task id, and whether a task was current then."""

    def __init__(self, expected: int) -> None:
        self.results: dict[str, list[TaskResult]] = {}
        self.inside_a_task: list[str] = []
        self.all_in = asyncio.Event()
        self.expected = expected

    def done(self, result: TaskResult) -> None:
        self.results.setdefault(result.task_id, []).append(result)
        if current_task.get() is not None:
            self.inside_a_task.append(result.task_id)
        if len(self.results) >= self.expected:
            self.all_in.set()

    async def settled(self) -> None:
        """Every expected task has reported, and a second report, which could only be a
        callback queued by then, would have come too."""
        await asyncio.wait_for(self.all_in.wait(), 30)
        await asyncio.sleep(0.05)

    def only(self, task_id: str) -> TaskResult:
        """``task_id``'s one result (after :meth:`settled`)."""
        (result,) = self.results[task_id]
        return result


@asynccontextmanager
async def _executor(concurrency: int, expected: int) -> AsyncIterator[tuple[Executor, _Reports]]:
    executor = Executor(ExecutorConfig("replica-a", concurrency=concurrency))
    try:
        yield executor, _Reports(expected)
    finally:
        executor.close()


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"not within 10 s: {what}"
        await asyncio.sleep(0.005)


async def test_every_task_reports_once_with_the_replica_and_attempt() -> None:
    async with _executor(concurrency=4, expected=50) as (executor, reports):
        for i in range(50):  # more than its 4 slots: most wait for one
            assert executor.start(_spec(f"t{i}", "sleepy", 0.001), print, reports.done) is None
        await reports.settled()
        assert sorted(reports.results) == sorted(f"t{i}" for i in range(50))
        for i in range(50):
            result = reports.only(f"t{i}")
            assert result.state is TaskState.SUCCEEDED
            assert (result.replica_id, result.attempts) == ("replica-a", 1)
        assert reports.inside_a_task == []  # `done` runs as the replica, not as the task
        assert executor.running == 0


async def test_a_task_cancelled_from_outside_the_executor_reports_cancelled_once() -> None:
    """As when the loop shuts down: the task's asyncio Task is cancelled directly."""
    async with _executor(concurrency=2, expected=1) as (executor, reports):
        executor.start(_spec("slow", "sleepy", 60.0), print, reports.done)
        await _until(lambda: executor.limiter.statistics().active == 1, "the task holds a slot")
        (task,) = [t for t in asyncio.all_tasks() if t.get_name() == "reuse-task:slow"]
        task.cancel()
        await reports.settled()
        result = reports.only("slow")
        assert result.state is TaskState.CANCELLED
        assert result.error is not None and result.error.kind is ErrorKind.CANCELLED
        assert executor.running == 0


async def test_a_task_cancelled_before_its_first_step_still_reports_once() -> None:
    """A Dispatch batch that sends a task and cancels it: the task never runs a line
    (the fuzz suite found a stream that then waited for ever for its result)."""
    async with _executor(concurrency=2, expected=1) as (executor, reports):
        executor.start(_spec("early", "sleepy", 60.0), print, reports.done)
        assert executor.cancel("early")  # in the same step: the task has not started
        await reports.settled()
        assert reports.only("early").state is TaskState.CANCELLED
        assert executor.running == 0


async def test_a_missing_function_of_a_loaded_module_is_a_clear_bad_input() -> None:
    async with _executor(concurrency=2, expected=0) as (executor, _):
        loaded = await executor.execute(_spec("first", "count"), print)
        assert loaded.state is TaskState.SUCCEEDED  # the module is loaded now
        missing = await executor.execute(_spec("second", "nope"), print)
        assert missing.state is TaskState.FAILED
        assert missing.error is not None and missing.error.kind is ErrorKind.BAD_INPUT
        assert f"module {TASKS!r} has no attribute 'nope'" in missing.error.message
