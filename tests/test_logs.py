"""Log lines inside a task name the task, its run and its parent."""

from __future__ import annotations

import asyncio

from reuse_runtime.context import TaskContext, current_task
from reuse_runtime.logs import _add_task_id


async def test_a_log_line_inside_a_task_carries_its_run_task_and_parent() -> None:
    async def noop() -> None:
        return None

    ctx = TaskContext(
        task_id="t2", run_id="r1", name="leaf", emit=lambda line: None, lend_slot=lambda: None,
        reclaim_slot=noop, loop=asyncio.get_running_loop(), parent_task_id="t1",
        replica_id="env-1-abcd",
    )  # fmt: skip
    token = current_task.set(ctx)
    try:
        event = _add_task_id(None, "info", {"event": "hello"})
    finally:
        current_task.reset(token)
    assert event == {"event": "hello", "task_id": "t2", "run_id": "r1", "parent_task_id": "t1"}
    assert _add_task_id(None, "info", {"event": "outside"}) == {"event": "outside"}
