"""The ``Runs`` service's messages: conversion, and its client calls in model terms.

Runs, actions and log lines travel as the values of :mod:`reuse_runtime.runinfo`;
a phase keeps the number the runs store gives it. The server side of the service
is :mod:`reuse_runtime.wire.run_service`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import grpc

from reuse_runtime import model
from reuse_runtime.runinfo import (
    PHASE_CODES,
    PHASES_BY_CODE,
    ActionInfo,
    ActionPhase,
    Attempt,
    ClientInfo,
    ErrorInfo,
    LogEntry,
    NewRun,
    Page,
    RunEvent,
    RunFilter,
    RunInfo,
    RunIO,
    Trace,
    error_info_of,
    remote_error_of,
)
from reuse_runtime.wire import convert
from reuse_runtime.wire.v1 import runtime_pb2 as pb
from reuse_runtime.wire.v1 import runtime_pb2_grpc as pb_grpc

Metadata = tuple[tuple[str, str], ...]

RUNS_SERVICE = pb.DESCRIPTOR.services_by_name["Runs"].full_name


# ------------------------------------------------------------------ parts


def phase_from_proto(value: int) -> ActionPhase:
    return PHASES_BY_CODE.get(value, ActionPhase.QUEUED)


def _client_to_proto(client: ClientInfo) -> pb.RunClient:
    return pb.RunClient(client_id=client.client_id, user=client.user, host=client.host)


def _client_from_proto(msg: pb.RunClient) -> ClientInfo:
    return ClientInfo(msg.client_id, msg.user, msg.host)


def _error_to_proto(error: ErrorInfo, msg: pb.RunErrorInfo) -> None:
    msg.kind, msg.type, msg.message, msg.traceback = (
        error.kind,
        error.type,
        error.message,
        error.traceback,
    )


def _error_from_proto(msg: pb.RunErrorInfo) -> ErrorInfo:
    return ErrorInfo(msg.kind, msg.type, msg.message, msg.traceback)


def _size(value: int | None) -> int:
    return -1 if value is None else value


def _unsize(value: int) -> int | None:
    return None if value < 0 else value


def _pairs(pairs: Iterable[tuple[str, str]]) -> list[pb.StringPair]:
    return [pb.StringPair(key=k, value=v) for k, v in pairs]


def _unpairs(msgs: Iterable[pb.StringPair]) -> tuple[tuple[str, str], ...]:
    return tuple((m.key, m.value) for m in msgs)


# ------------------------------------------------------------------ runs


def run_to_proto(run: RunInfo) -> pb.RunInfo:
    msg = pb.RunInfo(
        name=run.name,
        phase=PHASE_CODES[run.phase],  # type: ignore[arg-type]
        task=run.task,
        environment=run.environment,
        root_action_id=run.root_action_id,
        client=_client_to_proto(run.client),
        created=run.created,
        started=run.started or 0.0,
        ended=run.ended or 0.0,
        inputs_preview=run.inputs_preview,
        inputs_size=_size(run.inputs_size),
        output_size=_size(run.output_size),
        labels=_pairs(run.labels),
        url=run.url,
    )
    if run.error is not None:
        _error_to_proto(run.error, msg.error)
    for phase, n in run.counts.items():
        msg.counts[PHASE_CODES[phase]] = n
    return msg


def run_from_proto(msg: pb.RunInfo) -> RunInfo:
    return RunInfo(
        name=msg.name,
        phase=phase_from_proto(msg.phase),
        task=msg.task,
        environment=msg.environment,
        root_action_id=msg.root_action_id,
        client=_client_from_proto(msg.client),
        created=msg.created,
        started=msg.started or None,
        ended=msg.ended or None,
        inputs_preview=msg.inputs_preview,
        inputs_size=_unsize(msg.inputs_size),
        output_size=_unsize(msg.output_size),
        error=_error_from_proto(msg.error) if msg.HasField("error") else None,
        labels=_unpairs(msg.labels),
        counts={phase_from_proto(code): n for code, n in sorted(msg.counts.items())},
        url=msg.url,
    )


def new_run_to_proto(run: NewRun) -> pb.CreateRunRequest:
    msg = pb.CreateRunRequest(
        name=run.name,
        environment=convert.environment_to_proto(run.environment),
        inputs_preview=run.inputs_preview,
        labels=_pairs(run.labels),
        client=_client_to_proto(run.client),
        inputs=run.inputs,
    )
    convert.submission_to_proto(run.root, msg.root)
    return msg


def new_run_from_proto(msg: pb.CreateRunRequest) -> NewRun:
    return NewRun(
        name=msg.name,
        environment=convert.environment_from_proto(msg.environment),
        root=convert.submission_from_proto(msg.root),
        inputs_preview=msg.inputs_preview,
        labels=_unpairs(msg.labels),
        client=_client_from_proto(msg.client),
        inputs=msg.inputs,
    )


def encode_new_run(run: NewRun) -> bytes:
    """What the runs store keeps to start the run again after a restart (its ``submission``)."""
    return bytes(new_run_to_proto(run).SerializeToString())


def decode_new_run(data: bytes) -> NewRun:
    """The run :func:`encode_new_run` encoded; raises ``ValueError`` for bytes that are not one."""
    msg = pb.CreateRunRequest()
    try:
        msg.ParseFromString(data)
    except Exception as exc:
        raise ValueError(f"not a recorded run ({len(data)} bytes): {exc}") from None
    return new_run_from_proto(msg)


def filter_to_proto(where: RunFilter, limit: int, cursor: str | None) -> pb.ListRunsRequest:
    msg = pb.ListRunsRequest(
        phases=[PHASE_CODES[p] for p in where.phases],  # type: ignore[misc]
        environment=where.environment or "",
        task=where.task or "",
        name_contains=where.name_contains or "",
        user=where.user or "",
        labels=_pairs(where.labels),
        label_keys=list(where.label_keys),
        limit=limit,
        cursor=cursor or "",
    )
    if where.created_after is not None:
        msg.created_after = where.created_after
    if where.created_before is not None:
        msg.created_before = where.created_before
    return msg


def filter_from_proto(msg: pb.ListRunsRequest) -> tuple[RunFilter, int, str | None]:
    where = RunFilter(
        phases=tuple(phase_from_proto(p) for p in msg.phases),
        environment=msg.environment or None,
        task=msg.task or None,
        name_contains=msg.name_contains or None,
        user=msg.user or None,
        labels=_unpairs(msg.labels),
        label_keys=tuple(msg.label_keys),
        created_after=msg.created_after if msg.HasField("created_after") else None,
        created_before=msg.created_before if msg.HasField("created_before") else None,
    )
    return where, msg.limit or 50, msg.cursor or None


# ------------------------------------------------------------------ actions


def _attempt_to_proto(attempt: Attempt, msg: pb.ActionAttempt) -> None:
    msg.attempt = attempt.attempt
    msg.replica = attempt.replica
    msg.started = attempt.started
    msg.ended = attempt.ended
    msg.phase = PHASE_CODES[attempt.phase]  # type: ignore[assignment]
    if attempt.error is not None:
        _error_to_proto(attempt.error, msg.error)


def action_to_proto(action: ActionInfo) -> pb.ActionInfo:
    msg = pb.ActionInfo(
        run=action.run,
        action_id=action.action_id,
        parent_id=action.parent_id,
        call_key=action.call_key,
        task=action.task,
        environment=action.environment,
        group=action.group,
        phase=PHASE_CODES[action.phase],  # type: ignore[arg-type]
        created=action.created,
        started=action.started or 0.0,
        ended=action.ended or 0.0,
        replica=action.replica,
        inputs_preview=action.inputs_preview,
        output_size=_size(action.output_size),
        traces=[
            pb.ActionTrace(name=t.name, start=t.start, duration=t.duration, error_type=t.error_type)
            for t in action.traces
        ],
        children=action.children,
    )
    if action.error is not None:
        _error_to_proto(action.error, msg.error)
    for attempt in action.attempts:
        _attempt_to_proto(attempt, msg.attempts.add())
    return msg


def action_from_proto(msg: pb.ActionInfo) -> ActionInfo:
    return ActionInfo(
        run=msg.run,
        action_id=msg.action_id,
        parent_id=msg.parent_id,
        call_key=msg.call_key,
        task=msg.task,
        environment=msg.environment,
        group=msg.group,
        phase=phase_from_proto(msg.phase),
        created=msg.created,
        started=msg.started or None,
        ended=msg.ended or None,
        replica=msg.replica,
        inputs_preview=msg.inputs_preview,
        output_size=_unsize(msg.output_size),
        error=_error_from_proto(msg.error) if msg.HasField("error") else None,
        attempts=tuple(
            Attempt(
                a.attempt,
                a.replica,
                a.started,
                a.ended,
                phase_from_proto(a.phase),
                _error_from_proto(a.error) if a.HasField("error") else None,
            )
            for a in msg.attempts
        ),
        traces=tuple(Trace(t.name, t.start, t.duration, t.error_type) for t in msg.traces),
        children=msg.children,
    )


# ------------------------------------------------------------------ lines, events, io


def entry_to_proto(entry: LogEntry, msg: pb.RunLogLine) -> None:
    msg.action_id = entry.action_id
    msg.task_name = entry.task
    msg.stream = entry.stream
    msg.text = entry.text
    msg.at = entry.at
    msg.seq = entry.seq
    msg.line = entry.line
    msg.dropped_before = entry.dropped_before


def entry_from_proto(msg: pb.RunLogLine) -> LogEntry:
    return LogEntry(
        msg.seq,
        msg.action_id,
        msg.line,
        msg.at,
        msg.stream,
        msg.text,
        msg.dropped_before,
        msg.task_name,
    )


def line_to_proto(line: model.LogLine, at: float, msg: pb.RunLogLine) -> None:
    msg.action_id = line.task_id
    msg.task_name = line.task_name
    msg.parent_action_id = line.parent_task_id
    msg.replica_id = line.replica_id
    msg.stream = line.stream
    msg.text = line.text
    msg.at = at


def line_from_proto(msg: pb.RunLogLine, run: str) -> model.LogLine:
    return model.LogLine(
        msg.action_id,
        msg.task_name,
        run,
        msg.stream,
        msg.text,
        msg.parent_action_id,
        msg.replica_id,
    )


def event_to_proto(event: RunEvent) -> pb.RunEvent:
    msg = pb.RunEvent(cursor=event.cursor)
    if event.run is not None:
        msg.run.CopyFrom(run_to_proto(event.run))
    for line in event.lines:
        line_to_proto(line, 0.0, msg.lines.add())
    if event.result is not None:
        convert.result_to_proto(event.result, msg.result)
    return msg


def event_from_proto(msg: pb.RunEvent, run: str) -> RunEvent:
    return RunEvent(
        run=run_from_proto(msg.run) if msg.HasField("run") else None,
        lines=tuple(line_from_proto(line, run) for line in msg.lines),
        cursor=msg.cursor,
        result=convert.result_from_proto(msg.result) if msg.HasField("result") else None,
    )


def io_to_proto(io: RunIO) -> pb.RunIO:
    msg = pb.RunIO(phase=PHASE_CODES[io.phase], inputs_preview=io.inputs_preview)  # type: ignore[arg-type]
    if io.inputs is not None:
        msg.has_inputs, msg.inputs = True, io.inputs
    if io.output is not None:
        msg.has_output, msg.output = True, io.output
    if io.error is not None:
        msg.error.CopyFrom(convert.error_to_proto(remote_error_of(io.error)))
    return msg


def io_from_proto(msg: pb.RunIO) -> RunIO:
    return RunIO(
        phase=phase_from_proto(msg.phase),
        inputs_preview=msg.inputs_preview,
        inputs=msg.inputs if msg.has_inputs else None,
        output=msg.output if msg.has_output else None,
        error=error_info_of(convert.error_from_proto(msg.error)) if msg.HasField("error") else None,
    )


# ------------------------------------------------------------------ client calls


class RunCalls:
    """The ``Runs`` methods of a controller over ``channel``, in model terms. Failures
    raise what gRPC raises (``grpc.aio.AioRpcError``): the client says what they mean."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = pb_grpc.RunsStub(channel)

    async def create(self, run: NewRun, metadata: Metadata, timeout: float) -> RunInfo:
        reply = await self._stub.CreateRun(
            new_run_to_proto(run), metadata=metadata, timeout=timeout
        )
        return run_from_proto(reply)

    async def get_run(self, name: str, metadata: Metadata, timeout: float) -> RunInfo:
        reply = await self._stub.GetRun(
            pb.GetRunRequest(name=name), metadata=metadata, timeout=timeout
        )
        return run_from_proto(reply)

    async def list_runs(
        self, where: RunFilter, limit: int, cursor: str | None, metadata: Metadata, timeout: float
    ) -> Page[RunInfo]:
        reply = await self._stub.ListRuns(
            filter_to_proto(where, limit, cursor), metadata=metadata, timeout=timeout
        )
        return Page(tuple(run_from_proto(r) for r in reply.runs), reply.cursor or None)

    async def watch(
        self, name: str, logs: bool, cursor: str, metadata: Metadata
    ) -> AsyncIterator[RunEvent]:
        call = self._stub.WatchRun(
            pb.WatchRunRequest(name=name, logs=logs, cursor=cursor), metadata=metadata
        )
        try:
            async for msg in call:
                yield event_from_proto(msg, name)
        finally:
            call.cancel()

    async def abort(
        self, name: str, reason: str, metadata: Metadata, timeout: float, action_id: str = ""
    ) -> int:
        reply = await self._stub.AbortRun(
            pb.AbortRunRequest(name=name, reason=reason, action_id=action_id),
            metadata=metadata,
            timeout=timeout,
        )
        return int(reply.cancelled)

    async def actions(
        self,
        run: str,
        *,
        parent: str | None,
        phases: tuple[ActionPhase, ...],
        limit: int,
        cursor: str | None,
        metadata: Metadata,
        timeout: float,
    ) -> Page[ActionInfo]:
        request = pb.ListActionsRequest(
            run=run,
            phases=[PHASE_CODES[p] for p in phases],  # type: ignore[misc]
            limit=limit,
            cursor=cursor or "",
        )
        if parent is not None:
            request.parent = parent
        reply = await self._stub.ListActions(request, metadata=metadata, timeout=timeout)
        return Page(tuple(action_from_proto(a) for a in reply.actions), reply.cursor or None)

    async def action(
        self, run: str, action_id: str, metadata: Metadata, timeout: float
    ) -> ActionInfo:
        reply = await self._stub.GetAction(
            pb.GetActionRequest(run=run, action_id=action_id), metadata=metadata, timeout=timeout
        )
        return action_from_proto(reply)

    async def logs(
        self, run: str, action_id: str, follow: bool, after: int, metadata: Metadata
    ) -> AsyncIterator[list[LogEntry]]:
        call = self._stub.GetLogs(
            pb.GetLogsRequest(run=run, action_id=action_id, follow=follow, after=after),
            metadata=metadata,
        )
        try:
            async for msg in call:
                yield [entry_from_proto(line) for line in msg.lines]
        finally:
            call.cancel()

    async def io(self, run: str, action_id: str, metadata: Metadata, timeout: float) -> RunIO:
        reply = await self._stub.GetRunIO(
            pb.GetRunIORequest(run=run, action_id=action_id), metadata=metadata, timeout=timeout
        )
        return io_from_proto(reply)
