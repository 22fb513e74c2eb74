"""`ConditionBook`: a condition ends once (signaled, timed out, or with its run), wakes
its waiters then, and refuses a value of the wrong type in one line."""

from __future__ import annotations

import asyncio

import pytest

from reuse_runtime.conditions import ConditionInfo
from reuse_runtime.controller.conditions import ConditionBook
from reuse_runtime.errors import BadInputError, RunNotFoundError
from reuse_runtime.runinfo import ActionPhase


def spec(name: str = "approval", data_type: str = "bool", **more: object) -> ConditionInfo:
    fields: dict[str, object] = {"parent_action_id": "a1", **more}
    return ConditionInfo(run="r", name=name, data_type=data_type, **fields)  # type: ignore[arg-type]


async def test_a_signal_wakes_the_waiter_with_the_value_as_its_type() -> None:
    changes: list[ActionPhase] = []
    book = ConditionBook(on_change=lambda info: changes.append(info.phase), clock=lambda: 5.0)
    info = book.create(spec("batch", "int"))
    assert (info.phase, info.created, info.action_id) == (ActionPhase.RUNNING, 5.0, "a1-cond-batch")
    assert book.create(spec("batch", "int", prompt="again?")) == info  # a retry: the same one
    waiter = asyncio.ensure_future(book.wait("r", info.action_id, 30.0))
    still = await book.wait("r", info.action_id, 0.01)  # bounded: answers while it waits
    assert still.waiting and not waiter.done()
    with pytest.raises(BadInputError, match="expects an int: could not parse 'many' as int"):
        book.signal("r", "batch", "many")
    book.signal("r", "batch", "41")
    done = await asyncio.wait_for(waiter, 10)
    assert (done.phase, done.value) == (ActionPhase.SUCCEEDED, 41)
    with pytest.raises(BadInputError, match="already ended"):
        book.signal("r", info.action_id, 1)
    assert changes == [ActionPhase.RUNNING, ActionPhase.SUCCEEDED]
    assert [c.name for c in book.list("r")] == ["batch"] and book.list("r", "a2") == []


async def test_a_condition_times_out_and_ends_with_its_run() -> None:
    book = ConditionBook()
    soon = book.create(spec("soon", timeout=0.05))
    forever = book.create(spec("forever"))
    waiting = asyncio.ensure_future(book.wait("r", forever.action_id, 30.0))
    timed = await asyncio.wait_for(book.wait("r", soon.action_id, 30.0), 10)
    assert timed.phase is ActionPhase.TIMED_OUT and "timeout of 0.05 s" in timed.reason
    book.create(spec("other", parent_action_id="a2"))
    book.action_over("r", "a2", "action a2 was aborted")
    assert book.list("r", "a2")[0].phase is ActionPhase.ABORTED and waiting.done() is False
    book.run_over("r", "run r was aborted")
    ended = await asyncio.wait_for(waiting, 10)
    assert (ended.phase, ended.reason) == (ActionPhase.ABORTED, "run r was aborted")
    book.forget("r")
    with pytest.raises(RunNotFoundError):
        await book.wait("r", forever.action_id, 1.0)


async def test_what_cannot_be_a_condition_is_refused_in_one_line() -> None:
    book = ConditionBook()
    for bad, why in (
        (spec(data_type="list"), "data_type is one of bool, int, float, str"),
        (spec(prompt_type="html"), "prompt_type is 'text' or 'markdown'"),
        (spec(timeout=-1.0), "timeout must be positive"),
        (spec(name=""), "name is 1 to 200 characters"),
    ):
        with pytest.raises(BadInputError, match=why):
            book.create(bad)
    book.create(spec("same"))
    book.create(ConditionInfo(run="r", parent_action_id="a2", name="same"))
    with pytest.raises(BadInputError, match="2 conditions named 'same'"):
        book.signal("r", "same", True)
    with pytest.raises(RunNotFoundError, match="has no condition 'other'"):
        book.signal("r", "other", True)


async def test_a_resumed_runs_conditions_are_held_again_as_recorded() -> None:
    from dataclasses import replace

    book = ConditionBook(clock=lambda: 100.0)
    signaled = replace(spec("done"), phase=ActionPhase.SUCCEEDED, created=1.0, value=True)
    late = replace(spec("late", timeout=5.0), created=1.0)  # its timeout passed meanwhile
    waiting = replace(spec("open"), created=1.0)
    book.restore([signaled, late, waiting])
    assert (await book.wait("r", signaled.action_id, 30.0)).value is True
    assert book.create(spec("done")) == signaled  # the task's next attempt gets the value
    timed = await asyncio.wait_for(book.wait("r", late.action_id, 30.0), 10)
    assert timed.phase is ActionPhase.TIMED_OUT
    assert (await book.wait("r", waiting.action_id, 0.01)).waiting
