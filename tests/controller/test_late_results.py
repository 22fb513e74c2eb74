"""A replica declared lost that comes back: its late results are counted, never delivered.

An external worker is stopped (SIGSTOP: to its controller, as silent as a partition,
while its connection stays up) with tasks on it. At the report deadline it is
declared lost and its tasks run elsewhere. Woken, it sends their results late: the
controller discards and counts them (``late_results``), ends its stream, and the
worker (an external one dials again by default) rejoins as a new replica.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from reuse_runtime.security import Security
from tests.controller import holding_tasks
from tests.helpers import eventually, running_controller, spawn_worker, submit

TOKEN = "late-results-token"
WORKER = "late-worker"


async def _environment(client: object) -> object:
    status = await client.status()  # type: ignore[attr-defined]
    name = holding_tasks.holding1.name
    return next(e for e in status.environments if e.name == name)


async def _events(client: object, kind: str) -> int:
    env = await _environment(client)
    return sum(e.kind == kind and e.replica_id == WORKER for e in env.events)  # type: ignore[attr-defined]


def _pids(log: Path) -> set[int]:
    if not log.exists():
        return set()
    return {int(line.split()[1]) for line in log.read_text().splitlines() if line}


@pytest.mark.timeout(120)
async def test_late_results_are_counted_and_the_replica_rejoins(tmp_path: Path) -> None:
    log = tmp_path / "leaves.log"
    async with running_controller(security=Security(token=TOKEN), report_deadline=3.0) as (
        server,
        client,
    ):
        warm = await submit(client, holding_tasks.leaf1, -1, 0.0, str(tmp_path / "warm.log"))
        assert (await warm).ok  # type: ignore[attr-defined]
        async with spawn_worker(
            "--controller", server.address, "--environment", holding_tasks.holding1.name,
            "--concurrency", "4", "--replica-id", WORKER, REUSE_RUNTIME_TOKEN=TOKEN,
        ) as worker:  # fmt: skip
            await eventually(lambda: _events(client, "attached"), timeout=30, what="attached")
            futures = [
                await submit(client, holding_tasks.leaf1, i, 2.0, str(log)) for i in range(8)
            ]
            await eventually(lambda: worker.pid in _pids(log), timeout=30, what="on the worker")
            worker.signal(signal.SIGSTOP)
            try:
                await eventually(lambda: _events(client, "lost"), timeout=20, what="lost")
                # Its tasks ran elsewhere: every result is in, while it is still stopped.
                results = await asyncio.wait_for(asyncio.gather(*futures), 60)  # type: ignore[arg-type]
            finally:
                worker.signal(signal.SIGCONT)
            assert [r.unwrap() for r in results] == list(range(8))
            # Woken, it sends the results of the tasks it had: late, counted, not delivered.
            await eventually(lambda: _late(client), timeout=20, what="late results counted")
            await eventually(
                lambda: _attached_twice(client), timeout=30, what="the worker rejoined"
            )
        assert client.duplicate_results == 0  # type: ignore[attr-defined]


async def _late(client: object) -> bool:
    return (await _environment(client)).late_results > 0  # type: ignore[attr-defined]


async def _attached_twice(client: object) -> bool:
    return await _events(client, "attached") >= 2
