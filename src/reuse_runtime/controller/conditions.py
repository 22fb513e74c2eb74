"""`ConditionBook`: the conditions (``flyte.new_condition``) of a controller's runs.

A task creates a condition and waits on it (a long poll: ``wait`` answers when it
ends, or after a bounded time, and the task asks again); anyone who reaches the
controller signals it. A condition ends once: signaled (SUCCEEDED, with its value),
past its timeout (TIMED_OUT), or with its run (ABORTED: the run ended or was
aborted while it waited), and its waiters are woken then. Lives on the
controller's loop; nothing here blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import structlog

from reuse_runtime.conditions import (
    DATA_TYPES,
    ConditionInfo,
    ConditionValue,
    a_type,
    coerce_condition_payload,
)
from reuse_runtime.errors import BadInputError, RunNotFoundError
from reuse_runtime.runinfo import ActionPhase

log = structlog.get_logger("reuse_runtime.controller")

#: Conditions one run may have at most (each is a few hundred bytes in memory).
MAX_PER_RUN = 10_000
#: The longest a ``wait`` call is held before it answers "still waiting".
MAX_WAIT = 60.0
_PROMPT_TYPES = frozenset({"text", "markdown"})


@dataclass(eq=False)
class _Held:
    info: ConditionInfo
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    timer: asyncio.TimerHandle | None = None


class ConditionBook:
    """The conditions of the runs of one controller, by run, then by action id."""

    def __init__(
        self,
        *,
        on_change: Callable[[ConditionInfo], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._runs: dict[str, dict[str, _Held]] = {}
        #: Called with each condition created or ended (the runs store records it).
        self._on_change = on_change
        self._clock = clock

    def create(self, info: ConditionInfo) -> ConditionInfo:
        """Hold a new condition; one that exists (same run, task, name) is returned as it is
        (a task's next attempt creates its conditions again)."""
        _check(info)
        held = self._runs.setdefault(info.run, {})
        found = held.get(info.action_id)
        if found is not None:
            return found.info
        if len(held) >= MAX_PER_RUN:
            raise BadInputError(
                f"run {info.run} has {MAX_PER_RUN} conditions already; no more can be created"
            )
        info = replace(
            info, phase=ActionPhase.RUNNING, created=self._clock(), ended=None, value=None
        )
        entry = held[info.action_id] = _Held(info)
        if info.timeout is not None:
            entry.timer = asyncio.get_running_loop().call_later(
                info.timeout, self._timed_out, entry
            )
        log.info("condition created", run=info.run, condition=info.name, action=info.action_id)
        self._changed(info)
        return info

    def restore(self, infos: list[ConditionInfo]) -> None:
        """Hold again the conditions a resumed run recorded (a restart): one signaled
        before it stays signaled; one waiting waits what is left of its timeout."""
        now = self._clock()
        for info in infos:
            held = self._runs.setdefault(info.run, {})
            if info.action_id in held:
                continue
            entry = held[info.action_id] = _Held(info)
            if not info.waiting:
                entry.ended.set()
            elif info.timeout is not None:
                left = max(0.0, info.created + info.timeout - now)
                entry.timer = asyncio.get_running_loop().call_later(left, self._timed_out, entry)

    def list(self, run: str, parent: str | None = None) -> list[ConditionInfo]:
        """The run's conditions, oldest first (``parent``: those that task created)."""
        found = [h.info for h in self._runs.get(run, {}).values()]
        if parent is not None:
            found = [c for c in found if c.parent_action_id == parent]
        return found

    def _find(self, run: str, name: str) -> _Held:
        held = self._runs.get(run, {})
        found = held.get(name)
        if found is not None:
            return found
        named = [h for h in held.values() if h.info.name == name]
        if len(named) == 1:
            return named[0]
        if named:
            ids = ", ".join(h.info.action_id for h in named)
            raise BadInputError(
                f"run {run} has {len(named)} conditions named {name!r}; name one by its "
                f"action id: {ids}"
            )
        known = ", ".join(sorted({h.info.name for h in held.values()})[:10]) or "none"
        raise RunNotFoundError(f"run {run!r} has no condition {name!r} (its conditions: {known})")

    def signal(self, run: str, name: str, value: ConditionValue) -> ConditionInfo:
        """End the condition (its name or action id) with ``value``, coerced to its type."""
        entry = self._find(run, name)
        info = entry.info
        if not info.waiting:
            raise BadInputError(
                f"condition {info.name!r} of run {run} already ended ({info.phase}"
                f"{': ' + info.reason if info.reason else ''}); it cannot be signaled again"
            )
        try:
            typed = coerce_condition_payload(value, info.expected_type)
        except (TypeError, ValueError) as exc:
            raise BadInputError(
                f"condition {info.name!r} of run {run} expects {a_type(info.data_type)}: {exc}"
            ) from None
        return self._end(entry, ActionPhase.SUCCEEDED, value=typed)

    async def wait(self, run: str, action_id: str, max_wait: float) -> ConditionInfo:
        """The condition once it ends, or as it is after ``max_wait`` seconds (bounded)."""
        entry = self._runs.get(run, {}).get(action_id)
        if entry is None:
            raise RunNotFoundError(f"run {run!r} has no condition {action_id!r}")
        if entry.info.waiting:
            bound = min(max(max_wait, 0.0), MAX_WAIT)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(entry.ended.wait(), bound)
        return entry.info

    def run_over(self, run: str, reason: str) -> None:
        """The run ended or was aborted: its conditions still waiting end ABORTED."""
        for entry in list(self._runs.get(run, {}).values()):
            if entry.info.waiting:
                self._end(entry, ActionPhase.ABORTED, reason=reason)

    def action_over(self, run: str, action_id: str, reason: str) -> None:
        """The action was aborted: the conditions it created still waiting end ABORTED."""
        for entry in list(self._runs.get(run, {}).values()):
            if entry.info.parent_action_id == action_id and entry.info.waiting:
                self._end(entry, ActionPhase.ABORTED, reason=reason)

    def forget(self, run: str) -> None:
        """Drop an ended run's conditions from memory (the runs store keeps them)."""
        for entry in self._runs.pop(run, {}).values():
            if entry.timer is not None:
                entry.timer.cancel()

    def close(self) -> None:
        """Wake every waiter (the controller stops): they ask again at the next one."""
        for held in self._runs.values():
            for entry in held.values():
                if entry.timer is not None:
                    entry.timer.cancel()
                entry.ended.set()

    def _timed_out(self, entry: _Held) -> None:
        if entry.info.waiting:
            timeout = entry.info.timeout or 0.0
            self._end(
                entry,
                ActionPhase.TIMED_OUT,
                reason=f"it was not signaled within its timeout of {timeout:g} s",
            )

    def _end(
        self,
        entry: _Held,
        phase: ActionPhase,
        *,
        value: ConditionValue | None = None,
        reason: str = "",
    ) -> ConditionInfo:
        info = entry.info = replace(
            entry.info, phase=phase, ended=self._clock(), value=value, reason=reason
        )
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        entry.ended.set()
        log.info("condition ended", run=info.run, condition=info.name, phase=str(phase))
        self._changed(info)
        return info

    def _changed(self, info: ConditionInfo) -> None:
        if self._on_change is not None:
            self._on_change(info)


def _check(info: ConditionInfo) -> None:
    """Refuse a condition that could not be shown or signaled, in one line."""
    if not info.run or not info.parent_action_id:
        raise BadInputError("a condition is created by a running task (it needs its run and task)")
    if not info.name or len(info.name) > 200:
        raise BadInputError(f"a condition's name is 1 to 200 characters; got {info.name[:210]!r}")
    if info.data_type not in DATA_TYPES:
        raise BadInputError(
            f"a condition's data_type is one of bool, int, float, str; got {info.data_type!r}"
        )
    if info.prompt_type not in _PROMPT_TYPES:
        raise BadInputError(
            f"a condition's prompt_type is 'text' or 'markdown'; got {info.prompt_type!r}"
        )
    if info.timeout is not None and not info.timeout > 0:
        raise BadInputError(f"a condition's timeout must be positive; got {info.timeout}")
