"""The replica's slot limiter, alone: waiting in order, and cancellation while waiting."""

from __future__ import annotations

import asyncio

import pytest

from reuse_runtime.worker.limiter import TaskLimiter


async def test_a_waiter_cancelled_as_a_slot_frees_is_cancelled_and_leaves_no_trace() -> None:
    """A task cancelled while it waits for a slot, when a slot frees before it runs again:
    the freeing drops its (cancelled) turn, and the task must see its cancellation, not
    an error of the limiter's own (as it did, and the task ended INTERNAL)."""
    limiter = TaskLimiter(1)
    await limiter.acquire()
    waiting = asyncio.ensure_future(limiter.acquire())
    behind = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)  # both wait in line
    assert limiter.statistics().waiting == 2
    waiting.cancel()
    limiter.release()  # in the same step: the cancelled turn is dropped, the next one served
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.wait_for(behind, 5)
    stats = limiter.statistics()
    assert (stats.active, stats.waiting) == (1, 0)
    limiter.release()
    assert limiter.statistics().active == 0
