"""The client end of the Worker and Controller services, in model terms.

The clients (:mod:`reuse_runtime.client`) own the channels, streams and flow
control; what travels over them as protobuf is built and read here, so only
``wire/`` knows the messages. Unary calls return model values and raise what gRPC
raises (``grpc.aio.AioRpcError``): what a failure means is the client's to say.

The bidi methods carry spliced payloads both ways (see :mod:`splice`): their
messages are written as built here and read as ``(message, payloads)`` pairs, which
:func:`read_results`, :func:`read_submit_events` and :func:`command_from_message`
turn into model values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import grpc

from reuse_runtime import model
from reuse_runtime.errors import CodeBundleError
from reuse_runtime.wire import convert, splice
from reuse_runtime.wire import status as wire_status
from reuse_runtime.wire.bundles import bundle_chunks
from reuse_runtime.wire.services import CONTROLLER_SERVICE, WORKER_SERVICE
from reuse_runtime.wire.v1 import runtime_pb2 as pb
from reuse_runtime.wire.v1 import runtime_pb2_grpc as pb_grpc

#: What a controller sends a replica on its ``Connect`` stream.
ControllerCommand = model.ReplicaInit | model.DispatchCommand | model.DrainCommand
#: One message of a result stream: its results, its output lines, and the ids of the
#: tasks it hands back unfinished.
Events = tuple[list[model.TaskResult], list[model.LogLine], Sequence[str]]

_NOTHING_RETURNED: tuple[str, ...] = ()

# ------------------------------------------------------------------ bidi streams


def _bidi(channel: grpc.aio.Channel, method: str, response: Any) -> Any:
    """A bidi method whose messages may carry spliced payloads (see :mod:`splice`)."""
    return channel.stream_stream(
        method, request_serializer=splice.serialize, response_deserializer=splice.parser(response)
    )


def dispatch_method(channel: grpc.aio.Channel) -> Any:
    """A worker's ``Dispatch``: write :func:`convert.dispatch_message`, read with
    :func:`read_results`."""
    return _bidi(channel, f"/{WORKER_SERVICE}/Dispatch", pb.ResultBatch)


def submit_method(channel: grpc.aio.Channel) -> Any:
    """A controller's ``Submit``: write :func:`submit_message`, read with
    :func:`read_submit_events`."""
    return _bidi(channel, f"/{CONTROLLER_SERVICE}/Submit", pb.SubmitEvents)


def connect_method(channel: grpc.aio.Channel) -> Any:
    """A controller's ``Connect`` (a replica's stream): write :func:`hello_message`,
    :func:`report_message` and :func:`results_message`; read with
    :func:`command_from_message`."""
    return _bidi(channel, f"/{CONTROLLER_SERVICE}/Connect", pb.ControllerMessage)


def read_results(message: Any, big: splice.Payloads) -> Events:
    """A worker's ``ResultBatch``: its results and lines (it hands nothing back)."""
    results, logs = convert.results_from_batch(message, big)
    return results, logs, _NOTHING_RETURNED


def read_submit_events(message: Any, big: splice.Payloads) -> Events:
    """A controller's ``SubmitEvents``: results, lines, and tasks handed back."""
    results, logs = convert.results_from_batch(message, big)
    return results, logs, message.returned


def submit_message(
    submissions: list[model.Submission], cancel: list[str], held: Iterable[tuple[str, int]]
) -> Any:
    """A ``SubmitBatch`` to write: ``submissions``, the task ids to ``cancel``, and the
    runs whose count of children held back in the client changed (``run_id, count``)."""
    batch = pb.SubmitBatch()
    big = convert.submission_batch(submissions, batch)
    if cancel:
        batch.cancel.extend(cancel)
    for run_id, count in held:
        batch.held.add(run_id=run_id, count=count)
    return splice.outgoing(batch, big)


def hello_message(hello: model.ReplicaHello) -> Any:
    """A replica's first message on ``Connect``."""
    return pb.WorkerMessage(hello=convert.hello_to_proto(hello))


def report_message(report: model.ReplicaReport) -> Any:
    return pb.WorkerMessage(report=convert.report_to_proto(report))


def results_message(results: list[model.TaskResult], logs: list[model.LogLine]) -> Any:
    """Results (and output lines) on ``Connect``, their large values spliced."""
    message = pb.WorkerMessage()
    message.results.SetInParent()  # the oneof is set even with nothing in it
    big = convert.result_batch(results, logs, message.results)
    return splice.outgoing(message, big)


def command_from_message(message: Any, big: splice.Payloads) -> ControllerCommand | None:
    """What a ``ControllerMessage`` asks of the replica; None for a kind it does not know."""
    kind = message.WhichOneof("kind")
    if kind == "dispatch":
        dispatch = message.dispatch
        return model.DispatchCommand(convert.tasks_from_batch(dispatch, big), list(dispatch.cancel))
    if kind == "init":
        return convert.init_from_proto(message.init)
    if kind == "drain":
        return model.DrainCommand(message.drain.reason)
    return None


# ------------------------------------------------------------------ unary calls

Metadata = tuple[tuple[str, str], ...]


class WorkerCalls:
    """A worker's unary methods over ``channel``."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = pb_grpc.WorkerStub(channel)

    async def execute(
        self, spec: model.TaskSpec, metadata: Metadata, timeout: float | None = None
    ) -> model.TaskResult:
        reply = await self._stub.Execute(
            convert.task_to_proto(spec), metadata=metadata, timeout=timeout
        )
        return convert.result_from_proto(reply)

    async def cancel(self, task_id: str, metadata: Metadata) -> int:
        """How many tasks the worker cancelled."""
        reply = await self._stub.Cancel(pb.CancelRequest(task_id=task_id), metadata=metadata)
        return int(reply.cancelled)

    async def status(self, metadata: Metadata) -> model.ReplicaReport:
        reply = await self._stub.GetStatus(pb.StatusRequest(), metadata=metadata)
        return convert.report_from_proto(reply)


class ControllerCalls:
    """A controller's unary methods over ``channel``."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = pb_grpc.ControllerStub(channel)

    async def register_environment(
        self, env: model.EnvironmentSpec, metadata: Metadata, timeout: float | None = None
    ) -> str:
        """The environment's pool key."""
        reply = await self._stub.RegisterEnvironment(
            convert.environment_to_proto(env), metadata=metadata, timeout=timeout
        )
        return str(reply.key)

    async def cancel(self, task_id: str, run_id: str, metadata: Metadata) -> int:
        """How many tasks the controller cancelled (one task, or a run's)."""
        reply = await self._stub.Cancel(
            pb.CancelRequest(task_id=task_id, run_id=run_id), metadata=metadata
        )
        return int(reply.cancelled)

    async def status(self, metadata: Metadata) -> model.ControllerStatus:
        reply = await self._stub.GetStatus(pb.StatusRequest(), metadata=metadata)
        return wire_status.status_from_proto(reply)

    async def run_progress(
        self, run_id: str, metadata: Metadata, timeout: float | None = None
    ) -> model.RunProgress:
        reply = await self._stub.GetRunProgress(
            pb.RunProgressRequest(run_id=run_id), metadata=metadata, timeout=timeout
        )
        return wire_status.progress_from_proto(reply)

    async def bundle_size(
        self, digest: str, metadata: Metadata, timeout: float | None = None
    ) -> int | None:
        """The size of code bundle ``digest`` at the controller; None if it lacks it."""
        reply = await self._stub.StatBundle(
            pb.BundleRequest(digest=digest), metadata=metadata, timeout=timeout
        )
        return int(reply.size) if reply.present else None

    async def put_bundle(
        self, digest: str, data: bytes, metadata: Metadata, timeout: float | None = None
    ) -> None:
        """Send code bundle ``digest`` in chunks; the controller checks it against its digest."""
        await self._stub.PutBundle(bundle_chunks(digest, data), metadata=metadata, timeout=timeout)

    async def fetch_bundle(
        self, digest: str, metadata: Metadata, *, max_bytes: int, timeout: float | None = None
    ) -> bytes:
        """Code bundle ``digest`` from the controller, as sent (the caller checks its digest).

        Raises ``CodeBundleError`` for a reply that is out of order or over ``max_bytes``.
        """
        data = bytearray()
        call = self._stub.FetchBundle(
            pb.BundleRequest(digest=digest), metadata=metadata, timeout=timeout
        )
        async for chunk in call:
            if chunk.offset != len(data) or chunk.size > max_bytes:
                call.cancel()
                raise CodeBundleError(
                    f"code bundle {digest[:12]}: the controller sent a chunk at offset "
                    f"{chunk.offset} of {chunk.size} bytes where {len(data)} of at most "
                    f"{max_bytes} was expected"
                )
            data += chunk.data
            if len(data) > chunk.size:
                call.cancel()
                raise CodeBundleError(
                    f"code bundle {digest[:12]}: the controller sent more than its "
                    f"{chunk.size} bytes"
                )
        return bytes(data)


def send_report(
    channel: grpc.Channel, report: model.ReplicaReport, metadata: Metadata, timeout: float
) -> bool:
    """A controller's ``Report``, blocking, over a plain (not asyncio) channel: whether
    it knew the replica. Raises ``grpc.RpcError``."""
    reply = pb_grpc.ControllerStub(channel).Report(
        convert.report_to_proto(report), timeout=timeout, metadata=metadata
    )
    return bool(reply.known)


async def health_status(channel: grpc.aio.Channel, timeout: float) -> str:
    """The standard gRPC health status of the server behind ``channel``, e.g. ``"SERVING"``."""
    # Imported here: only the CLI's health check needs these modules.
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=timeout
    )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
