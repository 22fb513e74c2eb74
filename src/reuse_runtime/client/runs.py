"""`RunsClient`: a controller's runs, through the channel of a
:class:`~reuse_runtime.client.controller.ControllerClient`.

Each call is one RPC of the ``Runs`` service, bounded in time, its failure one
error of ours (:func:`run_failure`). :meth:`RunsClient.follow` is the exception:
it follows a run until it ends, across a controller that goes away and comes back
(a restart, a network that fails), resuming where it stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import grpc
import structlog

from reuse_runtime.client.channel import refused, rpc_failure
from reuse_runtime.conditions import ConditionInfo, ConditionValue
from reuse_runtime.errors import (
    BadInputError,
    ControllerUnavailableError,
    ReuseRuntimeError,
    RunAlreadyExistsError,
    RunNotFoundError,
    RunsStoreError,
    RunsStoreFullError,
)
from reuse_runtime.runinfo import (
    ActionInfo,
    ActionPhase,
    LogEntry,
    NewRun,
    Page,
    RunEvent,
    RunFilter,
    RunInfo,
    RunIO,
)
from reuse_runtime.wire.conditions import ConditionCalls
from reuse_runtime.wire.runs import RunCalls

if TYPE_CHECKING:
    from reuse_runtime.client.controller import ControllerClient

Reply = TypeVar("Reply")
_ALL = RunFilter()
log = structlog.get_logger("reuse_runtime.client")

#: Seconds a unary call of the Runs service may take.
CALL_TIMEOUT = 30.0
#: Seconds the controller holds one wait for a condition before it answers "waiting".
CONDITION_POLL = 30.0
#: The status codes a follower waits out (the controller is away), not fails on.
_TRANSIENT = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED}
)


def run_failure(exc: BaseException, target: str) -> ReuseRuntimeError:
    """The error a caller sees for a failed call of the Runs service."""
    if isinstance(exc, grpc.aio.AioRpcError) and not refused(exc):
        code, details = exc.code(), exc.details() or ""
        if code is grpc.StatusCode.NOT_FOUND:
            return RunNotFoundError(details)
        if code is grpc.StatusCode.ALREADY_EXISTS:
            return RunAlreadyExistsError(details)
        if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
            return RunsStoreFullError(details)
        if code is grpc.StatusCode.FAILED_PRECONDITION:
            return RunsStoreError(details)
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            return BadInputError(details)
        if code is grpc.StatusCode.UNIMPLEMENTED:
            return ControllerUnavailableError(
                f"the {target} does not keep runs (it is an older reuse-runtime): {details}"
            )
    return rpc_failure(exc, target)


class RunsClient:
    """The ``Runs`` service of the controller a :class:`ControllerClient` talks to."""

    def __init__(
        self, controller: ControllerClient, *, on_event: Callable[[str], None] | None = None
    ) -> None:
        self._controller = controller
        self._calls = RunCalls(controller.channel)
        self._conditions = ConditionCalls(controller.channel)
        self._target = f"controller at {controller.address}"
        self._on_event = on_event or (lambda line: log.warning(line))

    async def _call(self, call: Callable[[], Awaitable[Reply]]) -> Reply:
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            raise run_failure(exc, self._target) from None

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return self._controller.call_metadata()

    # ------------------------------------------------------------ runs

    async def create(self, run: NewRun) -> RunInfo:
        """Start a run the controller owns. While the controller is away (it restarts),
        wait for it, up to the client's reconnect timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._controller.reconnect_timeout
        delay, tried = 0.2, False
        while True:
            try:
                return await self._calls.create(
                    run, self._controller.call_metadata(refresh=tried), CALL_TIMEOUT
                )
            except grpc.aio.AioRpcError as exc:
                error = run_failure(exc, self._target)
                if exc.code() is grpc.StatusCode.ALREADY_EXISTS and tried:
                    # An earlier try got through before its answer was lost: ours?
                    found = await self.get(run.name)
                    if found.root_action_id == run.root.task.task_id:
                        return found
                if exc.code() not in _TRANSIENT or loop.time() >= deadline:
                    raise error from None
            tried = True
            await asyncio.sleep(delay)
            delay = min(2 * delay, 2.0)

    async def get(self, name: str) -> RunInfo:
        return await self._call(lambda: self._calls.get_run(name, self._metadata(), CALL_TIMEOUT))

    async def list_runs(
        self, where: RunFilter = _ALL, *, limit: int = 50, cursor: str | None = None
    ) -> Page[RunInfo]:
        return await self._call(
            lambda: self._calls.list_runs(where, limit, cursor, self._metadata(), CALL_TIMEOUT)
        )

    async def abort(self, name: str, reason: str = "", action_id: str = "") -> int:
        """Abort run ``name``, or only its action ``action_id`` and what that called."""
        return await self._call(
            lambda: self._calls.abort(name, reason, self._metadata(), CALL_TIMEOUT, action_id)
        )

    async def actions(
        self,
        run: str,
        *,
        parent: str | None = None,
        phases: tuple[ActionPhase, ...] = (),
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[ActionInfo]:
        return await self._call(
            lambda: self._calls.actions(
                run,
                parent=parent,
                phases=phases,
                limit=limit,
                cursor=cursor,
                metadata=self._metadata(),
                timeout=CALL_TIMEOUT,
            )
        )

    async def action(self, run: str, action_id: str) -> ActionInfo:
        return await self._call(
            lambda: self._calls.action(run, action_id, self._metadata(), CALL_TIMEOUT)
        )

    async def io(self, run: str, action_id: str = "") -> RunIO:
        return await self._call(
            lambda: self._calls.io(run, action_id, self._metadata(), CALL_TIMEOUT)
        )

    async def logs(
        self, run: str, action_id: str = "", *, follow: bool = False, after: int = 0
    ) -> AsyncIterator[list[LogEntry]]:
        """The run's recorded lines in batches; with ``follow``, until it ends."""
        try:
            async for batch in self._calls.logs(run, action_id, follow, after, self._metadata()):
                yield batch
        except grpc.aio.AioRpcError as exc:
            raise run_failure(exc, self._target) from None

    # ------------------------------------------------------------ conditions

    async def create_condition(self, info: ConditionInfo) -> ConditionInfo:
        return await self._call(
            lambda: self._conditions.create(info, self._metadata(), CALL_TIMEOUT)
        )

    async def conditions(self, run: str, parent: str | None = None) -> list[ConditionInfo]:
        return await self._call(
            lambda: self._conditions.list(run, parent, self._metadata(), CALL_TIMEOUT)
        )

    async def signal_condition(self, run: str, name: str, value: ConditionValue) -> ConditionInfo:
        return await self._call(
            lambda: self._conditions.signal(run, name, value, self._metadata(), CALL_TIMEOUT)
        )

    async def wait_condition(self, run: str, action_id: str) -> ConditionInfo:
        """The condition once it ended: one long poll after another (each bounded), across
        a controller that goes away and comes back within the reconnect timeout."""
        loop = asyncio.get_running_loop()
        delay, deadline = 0.2, 0.0
        while True:
            try:
                info = await self._conditions.wait(
                    run, action_id, CONDITION_POLL, self._controller.call_metadata()
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _TRANSIENT:
                    raise run_failure(exc, self._target) from None
                if not deadline:
                    deadline = loop.time() + self._controller.reconnect_timeout
                elif loop.time() >= deadline:
                    raise run_failure(exc, self._target) from None
                await asyncio.sleep(delay)
                delay = min(2 * delay, 2.0)
                continue
            delay, deadline = 0.2, 0.0
            if not info.waiting:
                return info

    # ------------------------------------------------------------ following a run

    async def follow(
        self, name: str, *, logs: bool = True, from_start: bool = True
    ) -> AsyncIterator[RunEvent]:
        """The run's events until its result, the last one; its lines (``logs``) from its
        start, or (not ``from_start``) those printed from now on.

        A stream that breaks because the controller went away is taken up again from
        where it stopped, once a controller answers at the address (with a new token
        if a local one restarted), for up to the client's reconnect timeout. It says
        so in one line when it starts waiting and one when it is back.
        """
        loop = asyncio.get_running_loop()
        cursor, lost, delay = "" if from_start else "now", "", 0.2
        deadline = 0.0
        while True:
            try:
                async for event in self._calls.watch(
                    name, logs, cursor, self._controller.call_metadata(refresh=bool(lost))
                ):
                    if lost:
                        self._on_event(
                            f"the controller at {self._controller.address} is back; "
                            f"following run {name} again"
                        )
                        lost, delay = "", 0.2
                    cursor = event.cursor or cursor
                    yield event
                    if event.result is not None:
                        return
                why = "it shut down"  # the stream ended without the result
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _TRANSIENT and not (lost and refused(exc)):
                    raise run_failure(exc, self._target) from None
                why = exc.details() or exc.code().name
            if not lost:
                lost = why
                timeout = self._controller.reconnect_timeout
                deadline = loop.time() + timeout
                self._on_event(
                    f"lost the controller at {self._controller.address} ({why}); waiting for "
                    f"it to come back, up to {timeout:g} s; run {name} goes on there"
                )
            if loop.time() >= deadline:
                raise ControllerUnavailableError(
                    f"the controller at {self._controller.address} did not come back within "
                    f"{self._controller.reconnect_timeout:g} s ({lost}); run {name} may still "
                    f"be running there"
                )
            await asyncio.sleep(delay)
            delay = min(2 * delay, 2.0)
