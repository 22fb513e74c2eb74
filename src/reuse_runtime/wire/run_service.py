"""The ``Runs`` service's server side: an adapter from gRPC to the controller's runs.

The controller's :class:`~reuse_runtime.controller.runs.RunBook` implements
:class:`RunOperations`; errors become gRPC statuses through
:func:`~reuse_runtime.wire.services.status_for`, as everywhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol, TypeVar

import grpc

from reuse_runtime.conditions import ConditionInfo, ConditionValue
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
from reuse_runtime.wire import conditions, runs
from reuse_runtime.wire.services import _abort, _parsed, _parser
from reuse_runtime.wire.v1 import runtime_pb2 as pb

Reply = TypeVar("Reply")


class RunOperations(Protocol):
    """What the controller offers about its runs (see ``controller/runs.py``)."""

    async def create_run(self, run: NewRun) -> RunInfo: ...
    async def get_run(self, name: str) -> RunInfo: ...
    async def list_runs(
        self, where: RunFilter, limit: int, cursor: str | None
    ) -> Page[RunInfo]: ...
    def watch_run(self, name: str, logs: bool, cursor: str) -> AsyncIterator[RunEvent]: ...
    async def abort_run(self, name: str, reason: str, action_id: str = "") -> int: ...
    async def list_actions(
        self,
        run: str,
        *,
        parent: str | None,
        group: str | None,
        phases: tuple[ActionPhase, ...],
        limit: int,
        cursor: str | None,
    ) -> Page[ActionInfo]: ...
    async def get_action(self, run: str, action_id: str) -> ActionInfo: ...
    def get_logs(
        self, run: str, action_id: str, follow: bool, after: int
    ) -> AsyncIterator[list[LogEntry]]: ...
    async def get_run_io(self, run: str, action_id: str) -> RunIO: ...
    async def create_condition(self, info: ConditionInfo) -> ConditionInfo: ...
    async def list_conditions(self, run: str, parent: str | None) -> list[ConditionInfo]: ...
    async def signal_condition(
        self, run: str, name: str, value: ConditionValue
    ) -> ConditionInfo: ...
    async def wait_condition(self, run: str, action_id: str, max_wait: float) -> ConditionInfo: ...


async def _answer(context: grpc.aio.ServicerContext, call: Awaitable[Reply]) -> Reply:
    try:
        return await call
    except Exception as exc:
        await _abort(context, exc)
        raise


class _RunsAdapter:
    def __init__(self, ops: RunOperations) -> None:
        self._ops = ops

    async def create(self, request: Any, context: grpc.aio.ServicerContext) -> pb.RunInfo:
        request = await _parsed(request, context)
        try:
            run = runs.new_run_from_proto(request)
        except Exception as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed run: {exc}")
            raise
        return runs.run_to_proto(await _answer(context, self._ops.create_run(run)))

    async def get(self, request: Any, context: grpc.aio.ServicerContext) -> pb.RunInfo:
        request = await _parsed(request, context)
        return runs.run_to_proto(await _answer(context, self._ops.get_run(request.name)))

    async def list(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ListRunsReply:
        request = await _parsed(request, context)
        where, limit, cursor = runs.filter_from_proto(request)
        page = await _answer(context, self._ops.list_runs(where, limit, cursor))
        return pb.ListRunsReply(
            runs=[runs.run_to_proto(r) for r in page.items], cursor=page.cursor or ""
        )

    async def watch(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RunEvent]:
        request = await _parsed(request, context)
        try:
            async for event in self._ops.watch_run(request.name, request.logs, request.cursor):
                yield runs.event_to_proto(event)
        except Exception as exc:
            await _abort(context, exc)

    async def abort(self, request: Any, context: grpc.aio.ServicerContext) -> pb.AbortRunReply:
        request = await _parsed(request, context)
        cancelled = await _answer(
            context, self._ops.abort_run(request.name, request.reason, request.action_id)
        )
        return pb.AbortRunReply(cancelled=cancelled)

    async def actions(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ListActionsReply:
        request = await _parsed(request, context)
        page = await _answer(
            context,
            self._ops.list_actions(
                request.run,
                parent=request.parent if request.HasField("parent") else None,
                group=request.group if request.HasField("group") else None,
                phases=tuple(runs.phase_from_proto(p) for p in request.phases),
                limit=request.limit or 100,
                cursor=request.cursor or None,
            ),
        )
        return pb.ListActionsReply(
            actions=[runs.action_to_proto(a) for a in page.items], cursor=page.cursor or ""
        )

    async def action(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ActionInfo:
        request = await _parsed(request, context)
        found = await _answer(context, self._ops.get_action(request.run, request.action_id))
        return runs.action_to_proto(found)

    async def logs(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.LogBatch]:
        request = await _parsed(request, context)
        try:
            async for entries in self._ops.get_logs(
                request.run, request.action_id, request.follow, request.after
            ):
                batch = pb.LogBatch()
                for entry in entries:
                    runs.entry_to_proto(entry, batch.lines.add())
                yield batch
        except Exception as exc:
            await _abort(context, exc)

    async def io(self, request: Any, context: grpc.aio.ServicerContext) -> pb.RunIO:
        request = await _parsed(request, context)
        found = await _answer(context, self._ops.get_run_io(request.run, request.action_id))
        return runs.io_to_proto(found)

    async def create_condition(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> pb.ConditionInfo:
        request = await _parsed(request, context)
        info = conditions.condition_from_proto(request)
        return conditions.condition_to_proto(
            await _answer(context, self._ops.create_condition(info))
        )

    async def list_conditions(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> pb.ListConditionsReply:
        request = await _parsed(request, context)
        parent = request.parent if request.HasField("parent") else None
        found = await _answer(context, self._ops.list_conditions(request.run, parent))
        return pb.ListConditionsReply(conditions=[conditions.condition_to_proto(c) for c in found])

    async def signal_condition(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> pb.ConditionInfo:
        request = await _parsed(request, context)
        value = conditions.value_from_proto(request.value)
        if value is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a signal needs a value")
            raise AssertionError("unreachable")
        found = await _answer(context, self._ops.signal_condition(request.run, request.name, value))
        return conditions.condition_to_proto(found)

    async def wait_condition(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> pb.ConditionInfo:
        request = await _parsed(request, context)
        found = await _answer(
            context,
            self._ops.wait_condition(request.run, request.action_id, request.max_wait),
        )
        return conditions.condition_to_proto(found)


def runs_handler(ops: RunOperations) -> grpc.GenericRpcHandler:
    adapter = _RunsAdapter(ops)

    def unary(handler: Any, request: Any) -> Any:
        return grpc.unary_unary_rpc_method_handler(
            handler, request_deserializer=_parser(request), response_serializer=_serialize
        )

    def stream(handler: Any, request: Any) -> Any:
        return grpc.unary_stream_rpc_method_handler(
            handler, request_deserializer=_parser(request), response_serializer=_serialize
        )

    return grpc.method_handlers_generic_handler(
        runs.RUNS_SERVICE,
        {
            "CreateRun": unary(adapter.create, pb.CreateRunRequest),
            "GetRun": unary(adapter.get, pb.GetRunRequest),
            "ListRuns": unary(adapter.list, pb.ListRunsRequest),
            "WatchRun": stream(adapter.watch, pb.WatchRunRequest),
            "AbortRun": unary(adapter.abort, pb.AbortRunRequest),
            "ListActions": unary(adapter.actions, pb.ListActionsRequest),
            "GetAction": unary(adapter.action, pb.GetActionRequest),
            "GetLogs": stream(adapter.logs, pb.GetLogsRequest),
            "GetRunIO": unary(adapter.io, pb.GetRunIORequest),
            "CreateCondition": unary(adapter.create_condition, pb.ConditionInfo),
            "ListConditions": unary(adapter.list_conditions, pb.ListConditionsRequest),
            "SignalCondition": unary(adapter.signal_condition, pb.SignalConditionRequest),
            "WaitCondition": unary(adapter.wait_condition, pb.WaitConditionRequest),
        },
    )


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())
