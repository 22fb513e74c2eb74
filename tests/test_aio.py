"""Cancellation that is correct by construction: wait_within, TaskSet.wait and cancel_all."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from reuse_runtime.aio import TaskSet, in_thread, wait_within


def _heartbeat_loop(
    wait: Callable[[Awaitable[Any], float], Awaitable[Any]], event: asyncio.Event
) -> Callable[[], Awaitable[None]]:
    async def loop() -> None:
        while True:  # a report loop: wake on a change or a heartbeat
            with contextlib.suppress(asyncio.TimeoutError):
                await wait(event.wait(), 10.0)
            event.clear()

    return loop


async def _cancel_as_the_event_fires(
    wait: Callable[[Awaitable[Any], float], Awaitable[Any]],
) -> bool:
    """Whether the loop ends when it is cancelled in the same iteration its event is set."""
    event = asyncio.Event()
    task = asyncio.create_task(_heartbeat_loop(wait, event)())
    for _ in range(3):
        await asyncio.sleep(0)
    event.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=1.0)
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    return bool(done)


async def test_wait_within_never_swallows_the_callers_cancellation() -> None:
    assert await _cancel_as_the_event_fires(wait_within)


@pytest.mark.skipif(
    sys.version_info >= (3, 12),
    reason="Python 3.12 rewrote asyncio.wait_for and it no longer loses the cancellation: "
    "this control only demonstrates the bug on 3.10 and 3.11",
)
async def test_wait_for_swallows_it_on_this_python_which_is_why_we_do_not_use_it() -> None:
    # The control: proves the test above can fail. A loop like this kept a replica
    # alive after its controller was gone.
    assert not await _cancel_as_the_event_fires(asyncio.wait_for)


async def test_wait_within_times_out_and_cancels_what_it_waited_for() -> None:
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(30)

    inner = asyncio.ensure_future(slow())
    with pytest.raises(asyncio.TimeoutError):
        await wait_within(inner, 0.05)
    await asyncio.wait({inner}, timeout=1.0)
    assert inner.cancelled()
    assert await wait_within(asyncio.sleep(0, "value"), None) == "value"


async def test_cancel_all_cancels_again_a_task_that_swallowed_it_once() -> None:
    tasks = TaskSet("test")
    swallowed = []

    async def stubborn_once() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            swallowed.append(1)
        await asyncio.sleep(30)

    tasks.spawn(stubborn_once(), "stubborn")
    await asyncio.sleep(0)
    await asyncio.wait_for(tasks.cancel_all(patience=5.0), 10)
    assert swallowed == [1]
    assert len(tasks) == 0


async def test_cancel_all_gives_up_on_a_task_that_never_ends() -> None:
    tasks = TaskSet("test")
    stop = asyncio.Event()

    async def immortal() -> None:
        while not stop.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(30)

    task = tasks.spawn(immortal(), "immortal")
    await asyncio.sleep(0)
    await asyncio.wait_for(tasks.cancel_all(patience=0.3), 10)  # returns: never waits for ever
    assert not task.done()
    stop.set()
    task.cancel()
    await asyncio.wait({task}, timeout=1.0)


async def test_wait_lets_tasks_finish_by_themselves_and_says_how_many_did_not() -> None:
    tasks = TaskSet("test")
    release = asyncio.Event()
    done: list[str] = []

    async def quick() -> None:
        await asyncio.sleep(0)
        done.append("quick")

    async def held() -> None:
        await release.wait()

    tasks.spawn(quick(), "quick")
    late = tasks.spawn(held(), "held")
    assert await tasks.wait(0.2) == 1  # "quick" ran to its end; "held" is still waiting
    assert done == ["quick"] and not late.done()
    release.set()
    assert await tasks.wait(5.0) == 0
    assert await TaskSet("empty").wait(0.0) == 0


async def test_in_thread_returns_what_the_call_returns_or_raises_off_the_loop() -> None:
    import threading

    loop_thread = threading.get_ident()
    assert await in_thread(lambda x: (x * 2, threading.get_ident()), 21) != (42, loop_thread)
    assert (await in_thread(lambda x: x * 2, 21)) == 42

    def fail() -> None:
        raise ValueError("no such bundle")

    with pytest.raises(ValueError, match="no such bundle"):
        await in_thread(fail)


def test_in_thread_works_as_the_interpreter_shuts_down(tmp_path: Any) -> None:
    """A loop in another thread still gets blocking work done after the main thread
    ended, when executors (asyncio.to_thread) refuse it: an embedded controller serving
    a script's last runs."""
    import subprocess
    import textwrap

    script = tmp_path / "at_exit.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, atexit
            from reuse_runtime.aio import in_thread

            def at_exit():  # the runtime finishes a script's runs so, as it exits
                print(*asyncio.run(both()), sep=" | ")

            atexit.register(at_exit)

            async def both():
                try:
                    await asyncio.to_thread(int, "1")
                    executor = "ran"
                except RuntimeError as exc:
                    executor = str(exc)
                return executor, await in_thread(int, "7")
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "cannot schedule new futures after interpreter shutdown | 7"
