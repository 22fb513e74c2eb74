"""gRPC servers: adapters from the wire to the worker and controller services.

This is the one boundary where exceptions become gRPC status codes
(:func:`status_for`). Requests are parsed here too: a message that does not
parse gets ``INVALID_ARGUMENT`` with the parser's reason, instead of grpc's
bare "Exception deserializing request!".
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from reuse_runtime import errors, model
from reuse_runtime.aio import wait_within
from reuse_runtime.security import Security
from reuse_runtime.wire import convert, splice
from reuse_runtime.wire import status as wire_status
from reuse_runtime.wire.batching import MAX_MESSAGE_BYTES, in_batches, result_size, task_size
from reuse_runtime.wire.v1 import runtime_pb2 as pb

log = structlog.get_logger("reuse_runtime.wire")

WORKER_SERVICE = pb.DESCRIPTOR.services_by_name["Worker"].full_name
CONTROLLER_SERVICE = pb.DESCRIPTOR.services_by_name["Controller"].full_name
_AUTH_HEADER = "authorization"
#: A client names itself on its Submit streams, so a stream that broke can be resumed.
CLIENT_ID_HEADER = "x-reuse-runtime-client"
#: How long a refused stream waits for the client's first message (see ``_deny``).
DENY_READ_SECONDS = 2.0
#: The methods that answer one request with a stream (Runs: WatchRun, GetLogs; Controller:
#: FetchBundle): a refused call of one is refused in that shape.
SERVER_STREAMS = ("/WatchRun", "/GetLogs", "/FetchBundle")


# ------------------------------------------------------------------ errors


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status for an exception raised by a service: the only such mapping."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, (errors.BacklogFullError, errors.RunsStoreFullError)):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, message
    if isinstance(exc, errors.RunNotFoundError):
        return grpc.StatusCode.NOT_FOUND, message
    if isinstance(exc, errors.RunAlreadyExistsError):
        return grpc.StatusCode.ALREADY_EXISTS, message
    if isinstance(exc, errors.RunsStoreError):
        return grpc.StatusCode.FAILED_PRECONDITION, message
    if isinstance(exc, errors.ClosedError):
        return grpc.StatusCode.UNAVAILABLE, message
    if isinstance(exc, (errors.BadInputError, errors.PolicyError, ValueError)):
        return grpc.StatusCode.INVALID_ARGUMENT, message
    if isinstance(exc, errors.CodeNotFoundError):
        return grpc.StatusCode.NOT_FOUND, message
    if isinstance(exc, errors.CodeBundleError):
        return grpc.StatusCode.INVALID_ARGUMENT, message
    if isinstance(exc, KeyError):
        return grpc.StatusCode.NOT_FOUND, message
    return grpc.StatusCode.INTERNAL, f"reuse-runtime internal error: {type(exc).__name__}: {exc}"


async def _abort(context: grpc.aio.ServicerContext, exc: Exception) -> None:
    code, message = status_for(exc)
    if code is grpc.StatusCode.INTERNAL:
        log.error("request failed", error=message, exc_info=exc)
    await context.abort(code, message)


@dataclass(frozen=True, slots=True)
class Malformed:
    """A request that did not parse; the handler answers INVALID_ARGUMENT with ``reason``."""

    reason: str


def _parser(message_type: Any) -> Callable[[bytes], Any]:
    """The request deserializer: the message (with its spliced-out payloads, for the
    streams that carry them: see ``splice``), or :class:`Malformed`."""
    name = message_type.DESCRIPTOR.full_name
    from_string = (
        splice.parser(message_type) if message_type in splice.LAYOUTS else message_type.FromString
    )

    def parse(data: bytes) -> Any:
        try:
            return from_string(data)
        except Exception as exc:
            return Malformed(f"malformed {name} message ({len(data)} bytes): {exc}")

    return parse


async def _parsed(request: Any, context: grpc.aio.ServicerContext) -> Any:
    if isinstance(request, Malformed):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.reason)
    return request


def _unary(handler: Callable[..., Awaitable[Any]], request: Any, response: Any) -> Any:
    return grpc.unary_unary_rpc_method_handler(
        handler,
        request_deserializer=_parser(request),
        response_serializer=response.SerializeToString,
    )


def _bidi(handler: Callable[..., AsyncIterator[Any]], request: Any) -> Any:
    """A stream of ``request`` messages in; any message, or a ``splice.Spliced`` one, out."""
    return grpc.stream_stream_rpc_method_handler(
        handler,
        request_deserializer=_parser(request),
        response_serializer=splice.serialize,
    )


# ------------------------------------------------------------------ worker


Item = TypeVar("Item", contravariant=True)
Fed = TypeVar("Fed")


class Session(Protocol[Item]):
    """One stream's tasks: items in, results and output out, in batches."""

    def submit(self, item: Item) -> None: ...
    def cancel(self, task_id: str) -> None: ...
    def close_input(self) -> None: ...
    def abort(self, reason: str) -> None: ...
    def batches(self) -> AsyncIterator[tuple[list[model.TaskResult], list[model.LogLine]]]: ...


class TaskSessionLike(Session[model.TaskSpec], Protocol):
    def cancel(self, task_id: str) -> None: ...


class SubmitSessionLike(Session[model.Submission], Protocol):
    def held(self, run_id: str, count: int) -> None: ...
    def take_returned(self) -> list[str]:
        """Ids of tasks handed back unfinished since the last call (a controller shutting down)."""
        ...


class WorkerOperations(Protocol):
    """What the worker core offers the transport (see ``worker/servicer.py``)."""

    async def execute(self, spec: model.TaskSpec) -> model.TaskResult: ...
    def open_session(self) -> TaskSessionLike: ...
    def cancel(self, task_id: str, run_id: str) -> int: ...
    def report(self) -> model.ReplicaReport: ...


async def _feed(
    session: Session[Fed],
    batches: AsyncIterator[Any],
    items: Callable[[Any, splice.Payloads], list[Fed]],
    then: Callable[[Any], None] | None = None,
) -> str:
    """Feed request batches into ``session``: each batch's ``items``, its cancels, then
    ``then(batch)``. Returns why input stopped early, or ""."""
    try:
        async for request in batches:
            if isinstance(request, Malformed):
                return request.reason
            batch, big = request
            for item in items(batch, big):
                session.submit(item)
            for task_id in batch.cancel:
                session.cancel(task_id)
            if then is not None:
                then(batch)
        return ""
    finally:
        session.close_input()


def _feed_submit(session: SubmitSessionLike, batches: AsyncIterator[Any]) -> Awaitable[str]:
    def held(batch: pb.SubmitBatch) -> None:
        for count in batch.held:
            session.held(count.run_id, count.count)

    return _feed(session, batches, convert.submissions_from_batch, held)


async def _serve_session(
    session: Session[Any],
    feed: Awaitable[str],
    context: grpc.aio.ServicerContext,
    make_batch: Callable[[list[model.TaskResult], list[model.LogLine]], Any],
    what: str,
) -> AsyncIterator[Any]:
    """Run a session: feed it from the request stream and yield its batches until done."""
    reader = asyncio.ensure_future(feed)
    try:
        async for results, logs in session.batches():
            for items, last in in_batches(results, result_size):
                yield make_batch(items, logs if last else [])
        if reader.done():
            problem = reader.result()
        else:  # this side ended the session (a shutdown): stop reading the client
            reader.cancel()
            problem = ""
    finally:
        if not reader.done():
            reader.cancel()
        session.abort(f"the {what} stream closed")
    if problem:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)


class _WorkerAdapter:
    def __init__(self, ops: WorkerOperations) -> None:
        self._ops = ops

    async def execute(self, request: Any, context: grpc.aio.ServicerContext) -> pb.TaskResult:
        request = await _parsed(request, context)
        try:
            result = await self._ops.execute(convert.task_from_proto(request))
        except Exception as exc:
            await _abort(context, exc)
            raise
        if result.error is not None and result.error.kind is model.ErrorKind.BAD_INPUT:
            # The task could not start: on a unary call that is the call's own status.
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, result.error.message)
        return convert.result_to_proto(result)

    async def dispatch(
        self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ResultBatch]:
        session = self._ops.open_session()
        async for batch in _serve_session(
            session,
            _feed(session, requests, convert.tasks_from_batch),
            context,
            convert.result_message,
            "dispatch",
        ):
            yield batch

    async def cancel(self, request: Any, context: grpc.aio.ServicerContext) -> pb.CancelReply:
        request = await _parsed(request, context)
        if not request.task_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Cancel needs a task_id")
        return pb.CancelReply(cancelled=self._ops.cancel(request.task_id, request.run_id))

    async def get_status(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ReplicaReport:
        await _parsed(request, context)
        return convert.report_to_proto(self._ops.report())


def worker_handler(ops: WorkerOperations) -> grpc.GenericRpcHandler:
    adapter = _WorkerAdapter(ops)
    return grpc.method_handlers_generic_handler(
        WORKER_SERVICE,
        {
            "Execute": _unary(adapter.execute, pb.TaskSpec, pb.TaskResult),
            "Dispatch": _bidi(adapter.dispatch, pb.DispatchBatch),
            "Cancel": _unary(adapter.cancel, pb.CancelRequest, pb.CancelReply),
            "GetStatus": _unary(adapter.get_status, pb.StatusRequest, pb.ReplicaReport),
        },
    )


# ------------------------------------------------------------------ servers


class _TokenAuth(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Requires ``authorization: Bearer <token>`` on every call but health checks."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if details.method.startswith("/grpc.health.v1.Health/"):
            return await continuation(details)
        presented = b""
        for key, value in details.invocation_metadata or ():
            if key == _AUTH_HEADER:
                presented = value.encode() if isinstance(value, str) else value
        if hmac.compare_digest(presented, self._expected):
            return await continuation(details)
        return _deny(details.method, "missing" if not presented else "wrong")


def _deny(method: str, what: str) -> grpc.RpcMethodHandler:
    message = (
        f"{what} token for {method}: pass --token or set REUSE_RUNTIME_TOKEN to the "
        f"server's shared token"
    )

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        # Take the client's first message (unread, as bytes) before refusing: a client
        # whose write is still in flight when the status arrives sees "INTERNAL: Internal
        # error from Core" instead of it (grpc/grpc#36066). Our clients write first.
        with contextlib.suppress(Exception):
            await wait_within(anext(aiter(requests)), DENY_READ_SECONDS)
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield None  # pragma: no cover - abort raises

    async def stream_in(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        with contextlib.suppress(Exception):
            await wait_within(anext(aiter(requests)), DENY_READ_SECONDS)
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def server_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield None  # pragma: no cover - abort raises

    if method.endswith(("/Dispatch", "/Connect", "/Submit", "/ServerReflectionInfo")):
        return grpc.stream_stream_rpc_method_handler(stream)
    if method.endswith(SERVER_STREAMS):
        return grpc.unary_stream_rpc_method_handler(server_stream)
    if method.endswith("/PutBundle"):
        return grpc.stream_unary_rpc_method_handler(stream_in)
    return grpc.unary_unary_rpc_method_handler(unary)


#: The standard name of server reflection, besides v1alpha.
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def build_server(
    handlers: Sequence[grpc.GenericRpcHandler],
    service_names: Sequence[str],
    security: Security,
) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """A grpc.aio server with our services, health checks and reflection (not yet bound)."""
    interceptors = [_TokenAuth(security.token)] if security.token else []
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            # Accept our clients' keepalive pings (every 10 s, even when idle).
            ("grpc.keepalive_permit_without_calls", 1),
            # And ping them: a client or replica cut off without a word (a partition, a
            # host gone) has its streams ended within 30 s, not left open for ever.
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.keepalive_timeout_ms", 20_000),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
            ("grpc.http2.max_ping_strikes", 0),
        ],
    )
    server.add_generic_rpc_handlers(tuple(handlers))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = (
        *service_names,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
        REFLECTION_V1,
    )
    reflection.enable_server_reflection(names, server)
    # grpc.reflection.v1 is v1alpha under another name, message for message: newer
    # clients (grpcurl) ask for v1 first. The same servicer answers both.
    servicer = reflection.aio.ReflectionServicer(names)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                REFLECTION_V1,
                {
                    "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                        servicer.ServerReflectionInfo,
                        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
                    )
                },
            ),
        )
    )
    return server, health_servicer


def bind(server: grpc.aio.Server, host: str, port: int, security: Security) -> int:
    """Bind ``host:port`` (port 0 picks one) and return the bound port."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    credentials = None
    if security.tls is not None:
        credentials = grpc.ssl_server_credentials(
            [(security.tls.key, security.tls.cert)],
            root_certificates=security.tls.ca,
            require_client_auth=security.tls.ca is not None,
        )
    try:
        if credentials is not None:
            bound = server.add_secure_port(address, credentials)
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise errors.AddressUnavailableError(_why_not_bound(host, port))
    return int(bound)


def _why_not_bound(host: str, port: int) -> str:
    """What stopped a bind, in words: gRPC only says that it failed."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return f"cannot listen on {where}: {host!r} is not an address of this machine"
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return (
                        f"cannot listen on {where}: the port is in use (another controller or "
                        f"worker?); stop it, or pick another port with --port"
                    )
                if exc.errno == errno.EACCES:
                    return (
                        f"cannot listen on {where}: permission denied (ports below 1024 need "
                        f"privileges); pick another port with --port"
                    )
                if exc.errno == errno.EADDRNOTAVAIL:
                    return f"cannot listen on {where}: {host} is not an address of this machine"
                return f"cannot listen on {where}: {exc.strerror or exc}"
    return f"cannot listen on {where}"


async def set_serving(
    health_servicer: health.aio.HealthServicer, serving: bool, *names: str
) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in ("", *names):
        await health_servicer.set(name, status)


# ------------------------------------------------------------------ controller


ReplicaEvent = model.ReplicaReport | model.ResultsBatch


class ReplicaStream:
    """The controller's end of one replica's Connect stream: work goes down here.

    Dispatches queued between two sends travel as one batch.
    """

    def __init__(self, hello: model.ReplicaHello) -> None:
        self.hello = hello
        self._tasks: list[model.TaskSpec] = []
        self._cancels: list[str] = []
        self._control: list[pb.ControllerMessage] = []
        self._wakeup = asyncio.Event()
        self._closed = False

    def send_init(self, init: model.ReplicaInit) -> None:
        self._control.append(pb.ControllerMessage(init=convert.init_to_proto(init)))
        self._wakeup.set()

    def dispatch(self, task: model.TaskSpec) -> None:
        self._tasks.append(task)
        self._wakeup.set()

    def cancel(self, task_id: str) -> None:
        self._cancels.append(task_id)
        self._wakeup.set()

    def drain(self, reason: str) -> None:
        self._control.append(pb.ControllerMessage(drain=pb.DrainCommand(reason=reason)))
        self._wakeup.set()

    def close(self) -> None:
        """End the stream once what is queued has been sent."""
        self._closed = True
        self._wakeup.set()

    async def messages(self) -> AsyncIterator[pb.ControllerMessage]:
        while True:
            if self._control:
                control, self._control = self._control, []
                for message in control:
                    yield message
            if self._tasks or self._cancels:
                tasks, self._tasks = self._tasks, []
                cancels, self._cancels = self._cancels, []
                for items, last in in_batches(tasks, task_size):
                    message = pb.ControllerMessage()
                    message.dispatch.SetInParent()
                    big = convert.dispatch_batch(items, cancels if last else [], message.dispatch)
                    yield splice.outgoing(message, big)
                continue
            if self._closed:
                return
            self._wakeup.clear()
            await self._wakeup.wait()


class ReplicaOperations(Protocol):
    """What a controller offers replicas (a test may implement just this)."""

    async def attach(self, stream: ReplicaStream, events: AsyncIterator[ReplicaEvent]) -> None:
        """Serve one replica until ``events`` ends (it disconnected) or the replica is dropped."""
        ...


class ControllerOperations(ReplicaOperations, Protocol):
    """What the controller core offers the transport (see ``controller/service.py``)."""

    def register_environment(self, spec: model.EnvironmentSpec) -> str: ...
    def open_session(self, client_id: str = "") -> SubmitSessionLike:
        """A session for one Submit stream of the client ``client_id`` (may be empty)."""
        ...

    def cancel(self, task_id: str, run_id: str) -> int: ...
    def status(self) -> model.ControllerStatus: ...
    def run_progress(self, run_id: str) -> model.RunProgress: ...
    def replica_report(self, report: model.ReplicaReport) -> bool: ...


async def _replica_events(
    requests: AsyncIterator[Any], stream: ReplicaStream
) -> AsyncIterator[ReplicaEvent]:
    try:
        async for event in _parse_replica_messages(requests):
            yield event
    finally:
        # The replica half-closed (or broke): end our side too, so it can exit at once.
        stream.close()


async def _parse_replica_messages(requests: AsyncIterator[Any]) -> AsyncIterator[ReplicaEvent]:
    async for request in requests:
        if isinstance(request, Malformed):
            raise errors.BadInputError(request.reason)
        message, big = request
        kind = message.WhichOneof("kind")
        if kind == "report":
            yield convert.report_from_proto(message.report)
        elif kind == "results":
            results, logs = convert.results_from_batch(message.results, big)
            yield model.ResultsBatch(results, logs)
        elif kind == "hello":
            raise errors.BadInputError("a replica may say hello only once per stream")


class _ReplicaAdapter:
    def __init__(self, ops: ReplicaOperations) -> None:
        self._ops = ops

    async def connect(
        self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ControllerMessage]:
        request = await anext(aiter(requests), None)
        if isinstance(request, Malformed):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.reason)
        first = None if request is None else request[0]
        if first is None or first.WhichOneof("kind") != "hello":
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "a replica's first message on Connect must be a hello naming its replica id",
            )
            return
        stream = ReplicaStream(convert.hello_from_proto(first.hello))
        served = asyncio.get_running_loop().create_task(
            self._serve(stream, _replica_events(requests, stream))
        )
        try:
            async for message in stream.messages():
                yield message
        finally:
            if not served.done():
                served.cancel()
            failure = await asyncio.gather(served, return_exceptions=True)
        if isinstance(failure[0], Exception):
            await _abort(context, failure[0])

    async def _serve(self, stream: ReplicaStream, events: AsyncIterator[ReplicaEvent]) -> None:
        try:
            await self._ops.attach(stream, events)
        finally:
            stream.close()


class _ControllerAdapter:
    def __init__(self, ops: ControllerOperations) -> None:
        self._ops = ops

    async def register(self, request: Any, context: grpc.aio.ServicerContext) -> pb.EnvironmentRef:
        request = await _parsed(request, context)
        try:
            key = self._ops.register_environment(convert.environment_from_proto(request))
        except Exception as exc:
            await _abort(context, exc)
            raise
        return pb.EnvironmentRef(key=key)

    async def submit(
        self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SubmitEvents]:
        client_id = ""
        for key, value in context.invocation_metadata() or ():
            if key == CLIENT_ID_HEADER:
                client_id = value if isinstance(value, str) else value.decode(errors="replace")
        session = self._ops.open_session(client_id[:64])

        def events(results: list[model.TaskResult], logs: list[model.LogLine]) -> Any:
            return _submit_events(results, logs, session.take_returned())

        async for batch in _serve_session(
            session, _feed_submit(session, requests), context, events, "submit"
        ):
            yield batch

    async def cancel(self, request: Any, context: grpc.aio.ServicerContext) -> pb.CancelReply:
        request = await _parsed(request, context)
        if not request.task_id and not request.run_id:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "Cancel needs a task_id or a run_id"
            )
        return pb.CancelReply(cancelled=self._ops.cancel(request.task_id, request.run_id))

    async def get_status(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await _parsed(request, context)
        return wire_status.status_to_proto(self._ops.status())

    async def get_run_progress(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        request = await _parsed(request, context)
        return wire_status.progress_to_proto(self._ops.run_progress(request.run_id))

    async def report(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ReportReply:
        request = await _parsed(request, context)
        if not request.replica_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a report names its replica_id")
        return pb.ReportReply(known=self._ops.replica_report(convert.report_from_proto(request)))


def _submit_events(
    results: list[model.TaskResult], logs: list[model.LogLine], returned: list[str]
) -> Any:
    events = pb.SubmitEvents()
    big = convert.result_batch(results, logs, events)
    if returned:
        events.returned.extend(returned)
    return splice.outgoing(events, big)


def replica_handler(ops: ReplicaOperations) -> grpc.GenericRpcHandler:
    """Just the Connect method: enough for a replica to attach (used by tests)."""
    adapter = _ReplicaAdapter(ops)
    return grpc.method_handlers_generic_handler(
        CONTROLLER_SERVICE,
        {"Connect": _bidi(adapter.connect, pb.WorkerMessage)},
    )


def controller_handler(ops: ControllerOperations) -> grpc.GenericRpcHandler:
    replicas = _ReplicaAdapter(ops)
    adapter = _ControllerAdapter(ops)
    return grpc.method_handlers_generic_handler(
        CONTROLLER_SERVICE,
        {
            "Connect": _bidi(replicas.connect, pb.WorkerMessage),
            "RegisterEnvironment": _unary(adapter.register, pb.EnvironmentSpec, pb.EnvironmentRef),
            "Submit": _bidi(adapter.submit, pb.SubmitBatch),
            "Cancel": _unary(adapter.cancel, pb.CancelRequest, pb.CancelReply),
            "GetStatus": _unary(adapter.get_status, pb.StatusRequest, pb.ControllerStatus),
            "GetRunProgress": _unary(
                adapter.get_run_progress, pb.RunProgressRequest, pb.RunProgress
            ),
            "Report": _unary(adapter.report, pb.ReplicaReport, pb.ReportReply),
        },
    )
