"""CodeLoader: a module's first load is shared by every task that asks for it meanwhile."""

from __future__ import annotations

import asyncio

import pytest

from reuse_runtime import code
from reuse_runtime.errors import CodeNotFoundError
from reuse_runtime.model import CodeBundle, FunctionRef
from reuse_runtime.worker.loader import CodeLoader

SCRIPT = b"""
import time

time.sleep(0.05)  # a slow import: every resolve below arrives while it runs
executions = 0
executions += 1

async def noop():
    return None
"""


def _bundle(source: bytes, path: str) -> CodeBundle:
    return code.script_bundle(path, source)


async def _ticker(ticks: list[int]) -> None:
    while True:
        ticks[0] += 1
        await asyncio.sleep(0)


async def test_waiters_of_one_load_all_wake_in_the_same_loop_iteration() -> None:
    bundle = _bundle(SCRIPT, "/tmp/loader-single-flight.py")
    ref = FunctionRef(bundle.module, "noop", bundle.digest)
    loader = CodeLoader()
    ticks = [0]
    ticker = asyncio.ensure_future(_ticker(ticks))
    woke: list[int] = []

    async def resolve() -> None:
        await loader.resolve(ref, bundle)
        woke.append(ticks[0])

    try:
        await asyncio.gather(*(resolve() for _ in range(50)))
    finally:
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
    assert len(woke) == 50
    # A lock would hand the module over one waiter per iteration (about 50 ticks).
    assert max(woke) - min(woke) <= 1
    fn = await loader.resolve(ref, None)
    assert fn.__globals__["executions"] == 1


async def test_a_failed_load_fails_every_waiter_and_none_hangs() -> None:
    bundle = _bundle(b"import time\ntime.sleep(0.05)\nraise RuntimeError('boom')\n", "/tmp/bad.py")
    ref = FunctionRef(bundle.module, "noop", bundle.digest)
    loader = CodeLoader()
    outcomes = await asyncio.gather(
        *(loader.resolve(ref, bundle) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(o, CodeNotFoundError) for o in outcomes), outcomes
    assert "boom" in str(outcomes[0])
    with pytest.raises(CodeNotFoundError):
        await loader.resolve(ref, bundle)
