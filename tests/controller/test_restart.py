"""A controller restart loses nothing a live client submitted.

The client keeps every task until its result arrives. When its controller dies
(kill -9) or shuts down (SIGTERM: it hands back what it did not run), the client
waits for one at the same address and sends every unfinished task again; each
result reaches the caller once.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path

import pytest

from reuse_runtime.client import ControllerClient
from reuse_runtime.model import Submission
from reuse_runtime.security import Security
from tests.controller import storm_tasks as st
from tests.helpers import (
    TcpProxy,
    running_controller,
    start_controller,
    stop_process,
    submit,
    until_in_flight,
)

TOKEN = "restart-test-token"


async def restart_under_load(tmp_path: Path, total: int, how: int) -> None:
    home = tmp_path / "home"
    controller = await asyncio.to_thread(start_controller, home, REUSE_RUNTIME_TOKEN=TOKEN)
    events: list[str] = []
    try:
        client = ControllerClient(controller.address, Security(token=TOKEN), on_event=events.append)
        async with client:
            key = await client.register(st.jitter.environment_spec())
            rng = random.Random(4)
            specs = [
                st.jitter.task_spec((i, rng.randint(5, 20)), {}, run_id="restart")
                for i in range(total)
            ]
            started = time.monotonic()
            futures = [client.submit(Submission(key, spec)) for spec in specs]
            for _ in range(6000):  # until about 40% are done (bounded: 300 s)
                if sum(f.done() for f in futures) >= 0.4 * total:
                    break
                await asyncio.sleep(0.05)
            done_before = sum(f.done() for f in futures)
            port = controller.port
            # SIGTERM drains: the old controller exits only after handing tasks back.
            await asyncio.to_thread(stop_process, controller.process, how)
            stopped_with = controller.process.returncode
            await asyncio.sleep(2.0)
            controller = await asyncio.to_thread(
                start_controller, home, port=port, REUSE_RUNTIME_TOKEN=TOKEN
            )
            results = await asyncio.wait_for(asyncio.gather(*futures), 300)
            took = time.monotonic() - started
    finally:
        await asyncio.to_thread(stop_process, controller.process, signal.SIGTERM)
    failed = [r for r in results if not r.ok]
    print(
        f"\ncontroller {signal.Signals(how).name} at {done_before}/{total} done, restarted 2 s "
        f"later: {len(failed)} failed, {took:.1f} s in all; the client said: {events}"
    )
    assert not failed, failed[:3]
    assert [r.unwrap() for r in results] == [i * 2 for i in range(total)]
    assert done_before < total
    assert any(e.startswith(f"lost the controller at {controller.address}") for e in events)
    assert any(e.startswith(f"the controller at {controller.address} is back") for e in events)
    if how == signal.SIGTERM:
        assert stopped_with == 0


@pytest.mark.slow  # 15-25 s of the default suite's budget: CI's slow suite runs it
@pytest.mark.timeout(240)
async def test_controller_kill_and_restart_loses_nothing(tmp_path: Path) -> None:
    await restart_under_load(tmp_path, 2_000, signal.SIGKILL)


@pytest.mark.timeout(240)
async def test_controller_sigterm_hands_back_and_nothing_fails(tmp_path: Path) -> None:
    await restart_under_load(tmp_path, 2_000, signal.SIGTERM)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_controller_kill_and_restart_20k(tmp_path: Path) -> None:
    await restart_under_load(tmp_path, 20_000, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_controller_sigterm_and_restart_20k(tmp_path: Path) -> None:
    await restart_under_load(tmp_path, 20_000, signal.SIGTERM)


async def test_a_stream_that_breaks_is_taken_over_by_the_next_one_nothing_fails() -> None:
    """The network between client and controller fails; the controller stays up. The client
    comes back on a new stream with the same ids: the controller hands the tasks over to it
    (they are not run twice, or reported as duplicates)."""
    async with running_controller() as (server, _), TcpProxy(server.address) as proxy:
        events: list[str] = []
        async with ControllerClient(
            proxy.address, server.security, on_event=events.append
        ) as client:
            await (await submit(client, st.pid_after, 0.0))  # warm
            # Some end as soon as the break cancels them; some ignore cancellation a while,
            # so the client is back before they end and takes them over.
            pending = [await submit(client, st.pid_after, 1.0) for _ in range(3)]
            pending += [await submit(client, st.stubborn, 1.5) for _ in range(3)]
            await until_in_flight(client, 6)
            assert proxy.cut() >= 2
            results = await asyncio.wait_for(asyncio.gather(*pending), 60)
            after = await asyncio.wait_for(await submit(client, st.pid_after, 0.0), 30)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert after.ok
    assert [e.split(" (")[0] for e in events] == [
        f"lost the controller at {proxy.address}",
        f"the controller at {proxy.address} is back; sent 6 unfinished tasks again",
    ]
