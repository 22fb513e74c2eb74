"""A task retried after its replica died can always run (issue 29's hang).

A retried task is a suspect: it runs alone, so a second death can be pinned on it.
"Alone" once meant "on a replica that runs nothing", and a replica that holds a
parent waiting for its children never runs nothing: when every replica the pool may
have held such a parent, the suspect waited for ever. Here an external worker takes
some of a fan-out's children and dies (kill -9): its children are retried while the
pool's own replicas (at their maximum) each hold a waiting parent.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import pytest

from reuse_runtime.security import Security
from tests.controller import holding_tasks
from tests.helpers import eventually, running_controller, spawn_worker, submit

TOKEN = "suspect-placement-token"


async def _ready(client: object, name: str, count: int) -> bool:
    status = await client.status()  # type: ignore[attr-defined]
    return any(
        e.name == name and sum(r.state == "ready" for r in e.replicas) >= count
        for e in status.environments
    )


def _executions(log: Path) -> list[tuple[int, int]]:
    if not log.exists():
        return []
    return [
        (int(i), int(pid))
        for i, pid in (line.split() for line in log.read_text().split("\n") if line)
    ]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("parents", [1, 2])
async def test_children_of_a_dead_worker_run_beside_parents_that_wait(
    tmp_path: Path, parents: int
) -> None:
    gather = holding_tasks.gather1 if parents == 1 else holding_tasks.gather2
    leaf = holding_tasks.leaf1 if parents == 1 else holding_tasks.leaf2
    env = gather.environment_spec()
    # Seconds of work for the pool's own slots (4, or 2): the worker joins well before the end.
    n, seconds = (240, 0.1) if parents == 1 else (100, 0.1)
    logs = [tmp_path / f"parent{p}.log" for p in range(parents)]
    async with running_controller(security=Security(token=TOKEN)) as (server, client):
        # Every replica the pool may have is up, then the parents come at once: with one
        # slot per replica (or one replica) each parent holds a replica of its own.
        warm = await submit(client, leaf, -1, 0.0, str(tmp_path / "warm.log"))
        assert (await warm).unwrap() == -1  # type: ignore[attr-defined]
        await eventually(
            lambda: _ready(client, env.name, parents), timeout=30, what="all replicas ready"
        )
        futures = [await submit(client, gather, n, seconds, str(log)) for log in logs]
        for log in logs:
            await eventually(lambda log=log: _executions(log), timeout=30, what="children running")
        async with spawn_worker(
            "--controller", server.address, "--environment", env.name, "--concurrency", "4",
            REUSE_RUNTIME_TOKEN=TOKEN,
        ) as worker:  # fmt: skip
            await eventually(
                lambda: any(pid == worker.pid for log in logs for _, pid in _executions(log)),
                timeout=30,
                what="the external worker running children",
            )
            worker.signal(signal.SIGKILL)
            await worker.wait(10)
        for future, log in zip(futures, logs, strict=True):
            try:
                result = await asyncio.wait_for(future, 40)
            except asyncio.TimeoutError:
                raise AssertionError(
                    "the run hung: the dead worker's children were never placed again"
                ) from None
            assert result.unwrap() == list(range(n))
            done = Counter(i for i, _ in _executions(log))
            assert set(done) == set(range(n))
            # Only the children the worker was running when it died ran twice.
            assert sum(count - 1 for count in done.values()) <= 4 + 2
