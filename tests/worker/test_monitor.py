"""The replica monitor's watchdog: a blocked event loop shows in status while it is blocked."""

from __future__ import annotations

import asyncio

from tests.controller import storm_tasks as st
from tests.helpers import running_controller, submit


async def test_status_shows_a_blocked_loop_while_it_is_blocked() -> None:
    async with running_controller() as (_, client):
        await (await submit(client, st.pid_after, 0.0))  # a ready replica first
        pending = await submit(client, st.blocks_loop, 4.0)
        seen: list[tuple[str, float]] = []
        while not pending.done():  # type: ignore[attr-defined]
            status = await client.status()  # type: ignore[attr-defined]
            for env in status.environments:
                for r in env.replicas:
                    if r.report is not None and r.report.loop_blocked_by:
                        seen.append((r.report.loop_blocked_by, r.report.loop_lag))
            if seen:
                break
            await asyncio.sleep(0.1)
        assert not pending.done(), "the task finished before status showed the block"  # type: ignore[attr-defined]
        assert (await pending).unwrap() == "unblocked"  # type: ignore[attr-defined]
    name, lag = seen[0]
    assert name.startswith("blocks_loop (") and lag >= 0.5
