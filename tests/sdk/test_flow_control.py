"""Flow control: a client keeps at most ``max_outstanding`` tasks at the controller.

The rest wait in the client, so one parent gathering 100k children cannot
blow up the shared controller; nested fan-out must still never deadlock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from reuse_runtime.model import Submission, TaskResult, TaskState
from reuse_runtime.wire.clients import ControllerClient
from tests.controller import tasks
from tests.helpers import running_controller
from tests.sdk.test_run import run_script


async def submit_slow(
    client: ControllerClient, count: int, seconds: float, run_id: str
) -> list[asyncio.Future[TaskResult]]:
    """``count`` tasks that sleep ``seconds`` each, on a pool of one replica and one slot."""
    key = await client.register(tasks.slow.environment_spec())
    return [
        client.submit(Submission(key, tasks.slow.task_spec((seconds,), {}, run_id=run_id)))
        for _ in range(count)
    ]


async def test_the_controller_holds_at_most_the_window_and_every_task_finishes() -> None:
    async with running_controller() as (server, _):
        service = server.service  # type: ignore[attr-defined]
        async with ControllerClient(server.address, max_outstanding=20) as client:  # type: ignore[attr-defined]
            futures = await submit_slow(client, 150, 0.01, "window")
            done = asyncio.ensure_future(asyncio.gather(*futures))
            most = 0
            while not done.done():
                most = max(most, len(service.tasks))
                await asyncio.sleep(0.002)
            results = await asyncio.wait_for(done, 60)
    assert [r.state for r in results] == [TaskState.SUCCEEDED] * 150
    assert 0 < most <= 20


async def test_cancelling_a_run_drops_its_tasks_still_waiting_in_the_client() -> None:
    async with running_controller() as (server, _):
        service = server.service  # type: ignore[attr-defined]
        async with ControllerClient(server.address, max_outstanding=2) as client:  # type: ignore[attr-defined]
            futures = await submit_slow(client, 10, 30, "doomed")
            async with asyncio.timeout(10):  # two at the controller, eight held here
                # The controller has no event for "accepted"; watch its task table.
                while len(service.tasks) < 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            cancelled = await client.cancel(run_id="doomed")
            results = await asyncio.wait_for(asyncio.gather(*futures), 30)
    assert cancelled == 10
    assert {r.state for r in results} == {TaskState.CANCELLED}
    assert sum("before it was sent" in (r.error.message if r.error else "") for r in results) == 8


def test_nested_fan_out_past_the_window_does_not_deadlock(tmp_path: Path) -> None:
    """Parents waiting on held children must not hold every slot.

    One replica, four slots, a window of 3: 12 children each gather 3
    grandchildren. Without the rule that a parent always has one child at the
    controller, three slots fill with children whose grandchildren wait in the
    client behind their siblings, and nothing ever finishes.
    """
    done = run_script(
        tmp_path,
        """
        import os
        os.environ["REUSE_RUNTIME_MAX_OUTSTANDING"] = "3"  # the replicas inherit it

        @env.task
        async def leaf(i: int, j: int) -> int:
            await asyncio.sleep(0.01)
            return i * 10 + j

        @env.task
        async def middle(i: int) -> int:
            return sum(await asyncio.gather(*(leaf(i, j) for j in range(3))))

        @env.task
        async def main() -> int:
            return sum(await asyncio.gather(*(middle(i) for i in range(12))))

        if __name__ == "__main__":
            print("result", flyte.run(main).outputs()[0])
        """,
    )
    assert done.returncode == 0, done.stderr
    expected = sum(i * 10 + j for i in range(12) for j in range(3))
    assert f"result {expected}" in done.stdout
