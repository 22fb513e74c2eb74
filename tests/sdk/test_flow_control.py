"""Flow control: a client keeps at most ``max_outstanding`` tasks at the controller.

The rest wait in the client, so one parent gathering 100k children cannot
blow up the shared controller; nested fan-out must still never deadlock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from reuse_runtime.client import ControllerClient
from reuse_runtime.model import Submission, TaskResult, TaskState
from tests.controller import tasks
from tests.helpers import running_controller
from tests.sdk.test_run import run_script


@contextlib.asynccontextmanager
async def limited_client(**limits: int) -> AsyncIterator[tuple[Any, ControllerClient]]:
    """A real controller's service, and a client of it with flow-control ``limits``
    (``max_outstanding``, ``max_outstanding_bytes``)."""
    async with running_controller() as (server, _):
        security = server.security  # type: ignore[attr-defined]
        async with ControllerClient(server.address, security, **limits) as client:  # type: ignore[attr-defined]
            yield server.service, client  # type: ignore[attr-defined]


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
    async with limited_client(max_outstanding=20) as (service, client):
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
    async with limited_client(max_outstanding=2) as (service, client):
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


async def submit_sized(
    client: ControllerClient, sizes: list[int], run_id: str
) -> list[asyncio.Future[TaskResult]]:
    key = await client.register(tasks.sized.environment_spec())
    return [
        client.submit(Submission(key, tasks.sized.task_spec((b"x" * size,), {}, run_id=run_id)))
        for size in sizes
    ]


async def test_a_held_task_whose_caller_stopped_waiting_leaves_its_turn_to_the_next() -> None:
    """A held task whose caller stopped waiting is not sent when its turn comes: the next
    held one goes in its place (it used to take the turn, and with nothing else out the
    rest waited forever). Once all are done, no byte is counted as held or out."""
    async with limited_client(max_outstanding=1) as (_, client):
        futures = await submit_sized(client, [1_000, 2_000, 3_000, 4_000, 5_000], "counted")
        futures[1].cancel()  # held: its caller stops waiting before it is sent
        futures[3].cancel()
        results = await asyncio.wait_for(asyncio.gather(futures[0], futures[2], futures[4]), 60)
        admission = client._admission
        counted = (admission.outstanding, admission.outstanding_bytes, admission.held_bytes)
        sizes = dict(admission._sizes)
    assert [r.unwrap() for r in results] == [1_000, 3_000, 5_000]
    assert counted == (0, 0, 0)
    assert sizes == {}


async def test_many_large_tasks_finish_with_their_bytes_at_the_controller_bounded() -> None:
    limit = 250_000
    async with limited_client(max_outstanding_bytes=limit) as (_, client):
        futures = await submit_sized(client, [100_000] * 30, "bytes")
        results = await asyncio.wait_for(asyncio.gather(*futures), 60)
        peak = client.peak_outstanding_bytes
    assert [r.state for r in results] == [TaskState.SUCCEEDED] * 30
    assert [r.unwrap() for r in results] == [100_000] * 30
    # Two 100 kB tasks fit in 250 kB, a third does not: never more than two at once.
    assert 200_000 <= peak <= limit


async def test_a_task_larger_than_the_byte_limit_still_runs_alone() -> None:
    async with limited_client(max_outstanding_bytes=1_000) as (_, client):
        futures = await submit_sized(client, [50_000, 10, 50_000], "big")
        results = await asyncio.wait_for(asyncio.gather(*futures), 60)
        peak = client.peak_outstanding_bytes
    assert [r.unwrap() for r in results] == [50_000, 10, 50_000]
    assert 50_000 <= peak < 100_000  # each big one went, and went alone


def test_a_bad_byte_limit_is_one_clear_line(tmp_path: Path) -> None:
    done = run_script(
        tmp_path,
        """
        import os
        os.environ["REUSE_RUNTIME_MAX_OUTSTANDING_BYTES"] = "lots"

        @env.task
        async def main() -> int:
            return 1

        if __name__ == "__main__":
            flyte.run(main).outputs()
        """,
    )
    assert done.returncode != 0
    assert (
        "REUSE_RUNTIME_MAX_OUTSTANDING_BYTES must be a size of at least 1 byte, like 67108864 "
        "or 64Mi, got 'lots'" in done.stderr
    ), done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_nested_fan_out_of_large_arguments_past_the_byte_limit_finishes(tmp_path: Path) -> None:
    """Callers wait to serialize while the client holds its byte limit, in order; a
    parent with nothing out never waits, so nested fan-out cannot deadlock."""
    done = run_script(
        tmp_path,
        """
        import os
        os.environ["REUSE_RUNTIME_MAX_OUTSTANDING_BYTES"] = "100000"  # replicas inherit it

        @env.task
        async def leaf(payload: bytes, j: int) -> int:
            await asyncio.sleep(0.005)
            return len(payload) + j

        @env.task
        async def middle(payload: bytes, i: int) -> int:
            return sum(await asyncio.gather(*(leaf(payload, j) for j in range(4))))

        @env.task
        async def main() -> int:
            payload = b"x" * 40_000
            return sum(await asyncio.gather(*(middle(payload, i) for i in range(10))))

        if __name__ == "__main__":
            print("result", flyte.run(main).outputs()[0])
        """,
    )
    assert done.returncode == 0, done.stderr
    assert f"result {10 * (4 * 40_000 + 6)}" in done.stdout


def test_a_wide_gather_starts_children_before_its_last_child_is_made(tmp_path: Path) -> None:
    """The client lets at most SEND_AHEAD calls wait for its writer: the first children
    of a 5,000-wide gather are sent, and run, while the parent still makes the rest."""
    done = run_script(
        tmp_path,
        """
        class Made:
            # Pickled when the call is made: the child receives that moment.
            def __reduce__(self):
                return (float, (time.monotonic(),))

        @env.task
        async def stamp(made: float) -> list:
            return [made, time.monotonic()]

        @env.task
        async def main(n: int) -> list:
            await stamp(0.0)
            calls = await asyncio.gather(*(stamp(Made()) for _ in range(n)))
            return [min(ran for _, ran in calls), max(made for made, _ in calls), len(calls)]

        if __name__ == "__main__":
            first_ran, last_made, count = flyte.run(main, n=5000).outputs()[0]
            print(first_ran < last_made, count, f"{last_made - first_ran:.3f}")
        """,
    )
    assert done.returncode == 0, done.stderr
    ran_early, count, _ = done.stdout.split()
    assert (ran_early, count) == ("True", "5000"), done.stdout


def test_a_wide_gather_sends_its_first_children_before_the_last_call_is_made(
    tmp_path: Path,
) -> None:
    """The caller that finds SEND_AHEAD calls waiting writes them itself, at once: the
    writer task's turn would come only after every first step the gather queued. Here
    the gather's last call blocks the parent's loop until a child has run: the first
    children must be on their way before it (they run in another environment's replica)."""
    done = run_script(
        tmp_path,
        """
        kids = flyte.TaskEnvironment(
            name="kids", reusable=flyte.ReusePolicy(replicas=1, concurrency=100)
        )

        @kids.task
        async def mark(path: str) -> None:
            open(path, "a").close()

        @env.task
        async def main(n: int, path: str) -> bool:
            await mark(path + ".warm")  # the pool is up, the client's stream open
            ran = []

            async def last_call() -> None:
                # The loop runs nothing else while this waits (at most 5 s).
                deadline = time.monotonic() + 5
                while not os.path.exists(path) and time.monotonic() < deadline:
                    time.sleep(0.01)
                ran.append(os.path.exists(path))

            await asyncio.gather(*(mark(path) for _ in range(n)), last_call())
            return ran[0]

        if __name__ == "__main__":
            print("ran before the last call:", flyte.run(main, n=3000, path=MARKER).outputs()[0])
        """.replace("MARKER", repr(str(tmp_path / "marker"))),
    )
    assert done.returncode == 0, done.stderr
    assert "ran before the last call: True" in done.stdout, done.stdout
