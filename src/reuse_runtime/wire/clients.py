"""gRPC clients: a replica's direct callers, and the shared batched result stream.

:class:`ResultStream` carries many tasks over one bidi stream, batched in both
directions, with one future per task. It backs both :class:`WorkerClient`
(straight to a replica) and the controller client.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import threading
import types
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterable
from dataclasses import replace
from typing import Any, Generic, TypeVar

import grpc
import structlog

from reuse_runtime import model
from reuse_runtime.aio import TaskSet, wait_within
from reuse_runtime.envvars import env_number, env_size
from reuse_runtime.errors import (
    AuthError,
    BadInputError,
    ClosedError,
    ControllerUnavailableError,
    PolicyError,
    ReuseRuntimeError,
)
from reuse_runtime.security import Security
from reuse_runtime.tokens import with_local_token
from reuse_runtime.wire import convert, splice
from reuse_runtime.wire.batching import (
    MAX_MESSAGE_BYTES,
    MAX_PAYLOAD_BYTES,
    in_batches,
    result_size,
    task_size,
)
from reuse_runtime.wire.services import CLIENT_ID_HEADER, CONTROLLER_SERVICE, WORKER_SERVICE
from reuse_runtime.wire.v1 import runtime_pb2 as pb
from reuse_runtime.wire.v1 import runtime_pb2_grpc as pb_grpc

Item = TypeVar("Item")
#: Futures of tasks still waiting for their results, by task id.
Pending = dict[str, "asyncio.Future[model.TaskResult]"]

#: Unfinished tasks one controller client keeps at the controller; the rest wait in
#: the client. Override with ``$REUSE_RUNTIME_MAX_OUTSTANDING``.
MAX_OUTSTANDING = 10_000
#: Submit streams in a row that a controller may fail (with a status of its own, before
#: any answer) before the tasks on them fail instead of being sent again.
FAILED_STREAMS = 3
#: Bytes of task arguments one client keeps at the controller, and holds serialized
#: while they wait to be sent; a caller serializing past it waits its turn. One task
#: larger than this still goes, alone. Override with ``$REUSE_RUNTIME_MAX_OUTSTANDING_BYTES``.
MAX_OUTSTANDING_BYTES = 64 * 2**20
MAX_OUTSTANDING_BYTES_ENV = "REUSE_RUNTIME_MAX_OUTSTANDING_BYTES"
#: Calls a client lets wait for the stream's writer at once; the next callers wait to
#: serialize until it takes them. A parent gathering 10k children starts them a batch
#: at a time instead of making all 10k before the first is sent. Measured on 2 cores
#: (10 ms children, 10k, capacity 200): 300 came closest to the ideal makespan, with
#: noop throughput no lower than at 1000; 100 or 200 were as close but cost more CPU.
SEND_AHEAD = 300
#: Seconds a client waits for a lost controller to come back before its unfinished
#: tasks fail. Override with ``$REUSE_RUNTIME_RECONNECT_TIMEOUT``.
RECONNECT_TIMEOUT = 300.0
RECONNECT_ENV = "REUSE_RUNTIME_RECONNECT_TIMEOUT"

log = structlog.get_logger("reuse_runtime.client")


def open_channel(address: str, security: Security) -> grpc.aio.Channel:
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 10_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # A restarted controller is found within a couple of seconds.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.min_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2_000),
    ]
    if security.tls is not None:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=security.tls.ca,
            private_key=security.tls.key,
            certificate_chain=security.tls.cert,
        )
        return grpc.aio.secure_channel(address, credentials, options=options)
    return grpc.aio.insecure_channel(address, options=options)


def _stream_method(channel: grpc.aio.Channel, method: str, response: Any) -> Any:
    """A bidi method whose messages may carry spliced payloads (see ``splice``)."""
    return channel.stream_stream(
        method, request_serializer=splice.serialize, response_deserializer=splice.parser(response)
    )


def call_metadata(security: Security) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {security.token}"),) if security.token else ()


async def check_health(address: str, security: Security, timeout: float = 5.0) -> str:
    """The standard gRPC health status of a worker or controller, e.g. ``"SERVING"``.

    Health checks need no token, so this works wherever the port is reachable.
    """
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with open_channel(address, security) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def describe_rpc_error(exc: BaseException, target: str) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{target}: {exc.code().name}: {exc.details()}"
    return f"{target}: {type(exc).__name__}: {exc}"


def refused(exc: BaseException) -> bool:
    """Whether the server refused our credentials (no retry can help)."""
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() is grpc.StatusCode.UNAUTHENTICATED


def rpc_failure(exc: BaseException, target: str) -> ReuseRuntimeError:
    """The error a caller sees for a failed call to ``target`` ("controller at ADDR").

    The one place that turns a refused token into :class:`AuthError`.
    """
    if isinstance(exc, ReuseRuntimeError):
        return exc
    if refused(exc):
        assert isinstance(exc, grpc.aio.AioRpcError)
        sent = not (exc.details() or "").startswith("missing")
        return AuthError(
            f"the {target} refused the token ({'it does not match' if sent else 'none was sent'})"
            f": set REUSE_RUNTIME_TOKEN (or --token, or token in the config file) to that "
            f"server's token"
        )
    return ControllerUnavailableError(describe_rpc_error(exc, target))


class ResultStream(Generic[Item]):
    """Submit items over one bidi stream and get a future per item's task result.

    Call-order contract: create inside the running loop; :meth:`close` half-closes
    the stream and waits for outstanding results; :meth:`abort` fails them.

    With ``on_ended``, a stream that ends or breaks fails nothing: it hands the
    futures still pending to ``on_ended`` (with the error, or None), once, so its
    owner can send those tasks again. ``on_returned`` receives the futures of tasks
    the server handed back unfinished (a controller shutting down).
    """

    def __init__(
        self,
        open_call: Callable[[], Any],
        make_batch: Callable[[list[Item], list[str]], Any],
        task_id: Callable[[Item], str],
        size: Callable[[Item], int],
        *,
        target: str,
        on_logs: Callable[[list[model.LogLine]], None] | None = None,
        on_settled: Callable[[str], None] | None = None,
        on_returned: Callable[[Pending], None] | None = None,
        on_ended: Callable[[Pending, BaseException | None], None] | None = None,
        on_flushed: Callable[[], None] | None = None,
    ) -> None:
        self._make_batch = make_batch
        self._on_flushed = on_flushed
        self._on_settled = on_settled
        self._on_returned = on_returned
        self._on_ended = on_ended
        self._task_id = task_id
        self._size = size
        self._target = target
        self._on_logs = on_logs
        self._outbox: list[Item] = []
        self._cancels: list[str] = []
        self._pending: dict[str, asyncio.Future[model.TaskResult]] = {}
        self._wakeup = asyncio.Event()
        self._closing = False
        self._failure: BaseException | None = None
        #: Messages received: a stream that broke before any did made no progress.
        self.received = 0
        # The write in flight (one at a time, as gRPC allows), or None.
        self._writing: asyncio.Future[None] | None = None
        self._call = open_call()
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read(), name=f"result-stream:{target}")
        self._writer = loop.create_task(self._write_loop(), name=f"result-writer:{target}")

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def broken(self) -> bool:
        return self._failure is not None or self._reader.done()

    @property
    def unsent(self) -> int:
        """Items submitted and not yet taken by the stream's writer."""
        return len(self._outbox)

    def submit(
        self, item: Item, future: asyncio.Future[model.TaskResult] | None = None
    ) -> asyncio.Future[model.TaskResult]:
        """Send ``item``; ``future`` (or a new one) resolves to its result."""
        if self._failure is not None:
            raise rpc_failure(self._failure, self._target)
        if self._closing:
            raise ClosedError(f"the stream to {self._target} is closing")
        task_id = self._task_id(item)
        if future is None:
            future = asyncio.get_running_loop().create_future()
        self._pending[task_id] = future
        self._outbox.append(item)
        self._wakeup.set()
        return future

    def cancel(self, task_id: str) -> None:
        if task_id in self._pending:
            self._cancels.append(task_id)
            self._wakeup.set()

    async def close(self) -> None:
        """Send nothing more; wait for the results already asked for."""
        self._closing = True
        self._wakeup.set()
        await asyncio.gather(self._reader, return_exceptions=True)

    def abort(self, reason: str) -> None:
        self._closing = True
        self._call.cancel()
        self._writer.cancel()
        self._fail_pending(ClosedError(reason))

    def write_now(self) -> bool:
        """Start writing what waits, here, in the caller's own step, if no write is in
        flight. The message is on its way before this returns: a gather of 10k calls
        queues 10k first steps on the loop, and the writer task's turn comes after them
        all (about 25 ms later, in which the replicas would have nothing to run)."""
        if self._writing is not None or not (self._outbox or self._cancels):
            return False
        if self._failure is not None or self._call.done():
            return False
        self._start_write(_started)
        return True

    def _start_write(
        self, start: Callable[[Coroutine[Any, Any, None]], asyncio.Future[None]]
    ) -> asyncio.Future[None]:
        """The one write in flight, begun by ``start`` (a task, or :func:`_started`)."""
        writing = self._writing = start(self._write_out())
        writing.add_done_callback(self._written)
        return writing

    async def _write_out(self) -> None:
        """Write what waits, cut into messages of at most about BATCH_BYTES of payload."""
        batch, self._outbox = self._outbox, []
        cancels, self._cancels = self._cancels, []
        if self._on_flushed is not None:
            self._on_flushed()
        try:
            for items, last in in_batches(batch, self._size):
                await self._call.write(self._make_batch(items, cancels if last else []))
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            raise  # the stream ended or broke: the reader sees it and says why
        except Exception:
            self._call.cancel()  # as gRPC does when a request iterator fails
            raise

    def _written(self, writing: asyncio.Future[None]) -> None:
        # The writer loop waits for every write, and submits woke it: only the slot frees.
        self._writing = None
        if not writing.cancelled():
            writing.exception()  # retrieved here too: a broken stream is the reader's to report

    async def _write_loop(self) -> None:
        """The stream's writer: one write at a time, its own or one a caller started."""
        while True:
            writing = self._writing
            if writing is None and (self._outbox or self._cancels):
                writing = self._start_write(asyncio.ensure_future)
            if writing is not None:
                await asyncio.wait([writing])
                if writing.cancelled() or writing.exception() is not None:
                    return
                continue
            if self._closing and (not self._pending or self._failure is not None):
                break
            self._wakeup.clear()
            await self._wakeup.wait()
        if self._failure is None:
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                await self._call.done_writing()

    async def _read(self) -> None:
        error: BaseException | None = None
        try:
            async for message, big in self._call:
                self.received += 1
                results, logs = convert.results_from_batch(message, big)
                if logs and self._on_logs is not None:
                    self._on_logs(logs)
                for result in results:
                    future = self._pending.pop(result.task_id, None)
                    if future is None:
                        continue
                    if not future.done():
                        future.set_result(result)
                    if self._on_settled is not None:
                        self._on_settled(result.task_id)
                if self._on_returned is not None and message.returned:
                    self._on_returned(self._take(message.returned))
                if self._closing and not self._pending:
                    self._wakeup.set()
            if self._pending and self._on_ended is None:
                raise ControllerUnavailableError(
                    f"{self._target} ended the stream with {len(self._pending)} results outstanding"
                )
        except BaseException as exc:
            error = self._failure = exc
            if self._on_ended is None:
                self._fail_pending(rpc_failure(exc, self._target))
            self._wakeup.set()
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._closing = True
            self._wakeup.set()
            if self._on_ended is not None:
                pending, self._pending = self._pending, {}
                self._on_ended(pending, error)

    def _take(self, task_ids: Iterable[str]) -> Pending:
        taken = {}
        for task_id in task_ids:
            future = self._pending.pop(task_id, None)
            if future is not None:
                taken[task_id] = future
        return taken

    def _fail_pending(self, exc: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for task_id, future in pending.items():
            if not future.done():
                future.set_exception(exc)
            if self._on_settled is not None:
                self._on_settled(task_id)


class WorkerClient:
    """Dispatch tasks straight to one replica.

    Example::

        async with WorkerClient("127.0.0.1:50051") as client:
            result = await client.run(TaskSpec(task_id="t1", name="f", args=dumps_args((2,), {}),
                                               ref=FunctionRef("mymodule", "f")))
            print(result.unwrap())

    :meth:`run` uses one long-lived, batched stream; :meth:`execute` is one
    unary call per task.
    """

    def __init__(
        self,
        address: str,
        security: Security | None = None,
        *,
        on_logs: Callable[[list[model.LogLine]], None] | None = None,
    ) -> None:
        self.address = address
        self._target = f"worker at {address}"
        self._security = with_local_token(security or Security(), address)
        self._metadata = call_metadata(self._security)
        self._channel = open_channel(address, self._security)
        self._stub = pb_grpc.WorkerStub(self._channel)
        self._dispatch = _stream_method(
            self._channel, f"/{WORKER_SERVICE}/Dispatch", pb.ResultBatch
        )
        self._on_logs = on_logs
        self._stream: ResultStream[model.TaskSpec] | None = None

    async def __aenter__(self) -> WorkerClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def wait_ready(self, timeout: float = 10.0) -> None:
        await wait_within(self._channel.channel_ready(), timeout)

    async def execute(self, spec: model.TaskSpec, timeout: float | None = None) -> model.TaskResult:
        """Run one task with a unary call."""
        reply = await self._unary(
            self._stub.Execute(
                convert.task_to_proto(spec), metadata=self._metadata, timeout=timeout
            )
        )
        return convert.result_from_proto(reply)

    async def _unary(self, call: Any) -> Any:
        """Await a unary call; a refused token becomes :class:`AuthError`, the rest stays."""
        try:
            return await call
        except grpc.aio.AioRpcError as exc:
            if refused(exc):
                raise rpc_failure(exc, self._target) from None
            raise

    def submit(self, spec: model.TaskSpec) -> asyncio.Future[model.TaskResult]:
        """Send a task on the shared stream; the future resolves to its result."""
        _checked_size(spec)
        if self._stream is None or self._stream.broken:
            self._stream = ResultStream(
                lambda: self._dispatch(metadata=self._metadata),
                convert.dispatch_message,
                lambda spec: spec.task_id,
                task_size,
                target=self._target,
                on_logs=self._on_logs,
            )
        return self._stream.submit(spec)

    async def run(self, spec: model.TaskSpec) -> model.TaskResult:
        return await self.submit(spec)

    def cancel_on_stream(self, task_id: str) -> None:
        if self._stream is not None:
            self._stream.cancel(task_id)

    async def cancel(self, task_id: str) -> int:
        reply = await self._unary(
            self._stub.Cancel(pb.CancelRequest(task_id=task_id), metadata=self._metadata)
        )
        return int(reply.cancelled)

    async def status(self) -> model.ReplicaReport:
        reply = await self._unary(self._stub.GetStatus(pb.StatusRequest(), metadata=self._metadata))
        return convert.report_from_proto(reply)

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.close()
        await self._channel.close()


ControllerCommand = model.ReplicaInit | model.DispatchCommand | model.DrainCommand


class ControllerConnection:
    """A replica's stream to its controller: reports and results up, work down.

    Call-order contract: create inside the running loop, iterate :meth:`commands`
    (the first one is normally a :class:`~reuse_runtime.model.ReplicaInit`), and
    :meth:`close` to half-close once the last results are queued.
    """

    def __init__(self, address: str, security: Security, hello: model.ReplicaHello) -> None:
        self.address = address
        self._channel = open_channel(address, security)
        self._outbox: list[Any] = [pb.WorkerMessage(hello=convert.hello_to_proto(hello))]
        self._wakeup = asyncio.Event()
        self._closing = False
        connect = _stream_method(
            self._channel, f"/{CONTROLLER_SERVICE}/Connect", pb.ControllerMessage
        )
        self._call = connect(self._requests(), metadata=call_metadata(security))

    def send_report(self, report: model.ReplicaReport) -> None:
        self._outbox.append(pb.WorkerMessage(report=convert.report_to_proto(report)))
        self._wakeup.set()

    def send_results(self, results: list[model.TaskResult], logs: list[model.LogLine]) -> None:
        for items, last in in_batches(results, result_size):
            message = pb.WorkerMessage()
            message.results.SetInParent()  # the oneof is set even with nothing in it
            big = convert.result_batch(items, logs if last else [], message.results)
            self._outbox.append(splice.outgoing(message, big))
        self._wakeup.set()

    async def commands(self) -> AsyncIterator[ControllerCommand]:
        """The controller's messages, until it ends the stream. Raises on a broken stream."""
        async for message, big in self._call:
            kind = message.WhichOneof("kind")
            if kind == "dispatch":
                yield model.DispatchCommand(
                    convert.tasks_from_batch(message.dispatch, big), list(message.dispatch.cancel)
                )
            elif kind == "init":
                yield convert.init_from_proto(message.init)
            elif kind == "drain":
                yield model.DrainCommand(message.drain.reason)

    async def close(self) -> None:
        """Flush what is queued, half-close, and close the channel."""
        self._closing = True
        self._wakeup.set()
        # Grace lets the last messages out and the controller end the stream.
        await self._channel.close(grace=2.0)

    def abort(self) -> None:
        self._call.cancel()

    async def _requests(self) -> AsyncIterator[Any]:
        while True:
            while self._outbox:
                batch, self._outbox = self._outbox, []
                for message in batch:
                    yield message
            if self._closing:
                return
            self._wakeup.clear()
            await self._wakeup.wait()


def _failed_by_server(error: BaseException | None) -> bool:
    """Whether a stream broke with a status of the server's own, not a lost connection."""
    return isinstance(error, grpc.aio.AioRpcError) and error.code() not in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
    )


def _checked_size(task: model.TaskSpec) -> int:
    """The task's :func:`task_size`; a task no message can carry is refused here, before
    it is queued with others."""
    size = task_size(task)
    if size > MAX_PAYLOAD_BYTES:
        raise BadInputError(
            f"task {task.name or task.task_id} carries {size} bytes of arguments, function and "
            f"code; one task can carry at most {MAX_PAYLOAD_BYTES} (one gRPC message): pass "
            f"large data as a file",
            type_name="PayloadTooLarge",
        )
    return size


def _submission_size(sub: model.Submission) -> int:
    return task_size(sub.task)


class ControllerClient:
    """Submit tasks to a controller and follow their results and output.

    One long-lived, batched ``Submit`` stream carries every task of this client.
    Output lines of runs submitted with ``stream_logs`` go to ``on_logs``.

    **A controller restart loses nothing this client submitted.** The client keeps
    every task it sent until that task's result arrives. When the stream breaks (the
    controller died) or the controller hands tasks back (it is shutting down), the
    client waits for a controller at the same address, with backoff, for up to
    ``reconnect_timeout`` seconds, and says so through ``on_event``; then it
    registers the environments again and sends every unfinished task again, with
    the same id, in order. Each future resolves once: a task may run twice (at
    least once in execution), its caller hears of it once.
    """

    def __init__(
        self,
        address: str,
        security: Security | None = None,
        *,
        on_logs: Callable[[list[model.LogLine]], None] | None = None,
        max_outstanding: int | None = None,
        max_outstanding_bytes: int | None = None,
        reconnect_timeout: float | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.address = address
        self._target = f"controller at {address}"
        self._configured = security or Security()
        self._security = with_local_token(self._configured, address)
        self._admission = _Admission(
            max_outstanding if max_outstanding is not None else default_max_outstanding(),
            max_outstanding_bytes
            if max_outstanding_bytes is not None
            else default_max_outstanding_bytes(),
        )
        # Callers waiting to serialize a task while the held bytes are over the limit,
        # per parent ("" for top-level calls), parents in arrival order.
        self._room_waiters: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()
        # Callers waiting for the writer to take the SEND_AHEAD tasks before theirs.
        self._send_waiters: deque[asyncio.Future[None]] = deque()
        self._metadata = call_metadata(self._security)
        self._channel = open_channel(address, self._security)
        self._stub = pb_grpc.ControllerStub(self._channel)
        self._submit = _stream_method(
            self._channel, f"/{CONTROLLER_SERVICE}/Submit", pb.SubmitEvents
        )
        self._on_logs = on_logs
        self._on_event = on_event or _log_event
        self.reconnect_timeout = (
            reconnect_timeout if reconnect_timeout is not None else default_reconnect_timeout()
        )
        self._stream: ResultStream[model.Submission] | None = None
        self._environments: dict[model.EnvironmentSpec, str] = {}
        self._specs: dict[str, model.EnvironmentSpec] = {}  # every key ever given, to renew
        self._registering: dict[model.EnvironmentSpec, asyncio.Future[str]] = {}
        self._closed = False
        self._sent_bundles: set[str] = set()
        # Every task at the controller as first submitted (with its bundle): what is resent.
        self._sent: dict[str, model.Submission] = {}
        # Tasks to send again once a controller is back, in order.
        self._limbo: dict[str, _Held] = {}
        # Tasks (and runs) cancelled while at a controller that may be gone: never resent.
        self._abandoned: set[str] = set()
        self._abandoned_runs: set[str] = set()
        self._reconnect: asyncio.Task[None] | None = None
        self._tasks = TaskSet(f"client:{address}")
        # Names this client's streams: its tasks still at the controller after a broken
        # stream are taken over by the next one, not run twice.
        self._id = secrets.token_hex(8)

    async def __aenter__(self) -> ControllerClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def wait_ready(self, timeout: float = 10.0) -> None:
        try:
            await wait_within(self._channel.channel_ready(), timeout)
        except asyncio.TimeoutError:
            raise ControllerUnavailableError(
                f"no controller answered at {self.address} within {timeout:g} s"
            ) from None

    @property
    def peak_outstanding_bytes(self) -> int:
        """The most argument bytes this client has had at the controller at once."""
        return self._admission.peak_bytes

    @property
    def reconnecting(self) -> bool:
        """Whether the client is waiting for its controller to come back."""
        return self._reconnect is not None

    async def register(self, env: model.EnvironmentSpec) -> str:
        """The environment's pool key, registering it on first use.

        Concurrent first calls for one environment share a single RPC (10k children
        started at once must not send 10k registrations); a failed one is retried
        by the next call. While the controller is away, it waits for it.
        """
        key = self._environments.get(env)
        if key is not None:
            return key
        pending = self._registering.get(env)
        if pending is None:
            pending = asyncio.ensure_future(self._register(env))
            self._registering[env] = pending
            pending.add_done_callback(functools.partial(self._registered, env))
        return await asyncio.shield(pending)

    async def _register(self, env: model.EnvironmentSpec) -> str:
        while True:
            try:
                return await self._register_once(env)
            except ControllerUnavailableError as exc:
                if self._closed:
                    raise
                reconnect = self._reconnecting(f"registering {env.name!r} failed: {exc}")
                await asyncio.wait({reconnect})  # a cancellation of this caller propagates
                if self._closed:
                    raise ClosedError("the client closed while its controller was away") from None
                if self._reconnect_failure is not None:
                    raise self._reconnect_failure from None

    async def _register_once(self, env: model.EnvironmentSpec) -> str:
        try:
            reply = await self._stub.RegisterEnvironment(
                convert.environment_to_proto(env), metadata=self._metadata, timeout=30
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.INVALID_ARGUMENT:
                raise PolicyError(exc.details() or "invalid environment") from None
            raise rpc_failure(exc, self._target) from None
        key: str = reply.key
        self._environments[env] = key
        self._specs[key] = env
        return key

    def _registered(self, env: model.EnvironmentSpec, done: asyncio.Future[str]) -> None:
        del self._registering[env]
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every caller was cancelled

    def submit(self, submission: model.Submission) -> asyncio.Future[model.TaskResult]:
        """Send a task; the future resolves to its single terminal result.

        At most ``max_outstanding`` tasks, and ``max_outstanding_bytes`` of their
        arguments, of this client are at the controller at once; the rest wait here,
        in order (see :class:`_Admission`).
        """
        size = _checked_size(submission.task)
        admission = self._admission
        if admission.admits(submission, size):
            future = self._send(submission, size=size)
        else:
            future = asyncio.get_running_loop().create_future()
            admission.hold(submission, future, size)
        if self._room_waiters:
            self._wake_room()
        return future

    async def room(self, parent_task_id: str = "") -> None:
        """Wait until a task's arguments may be serialized, in order with other callers:

        * while :data:`SEND_AHEAD` tasks wait for the stream's writer, until it takes
          them: many calls made at once go out in batches as they are made, not all
          after the last one;
        * while this client holds more serialized arguments than its byte limit:
          memory stays bounded by bytes. A child whose parent has no other child here
          or at the controller never waits (nested fan-out cannot deadlock).
        """
        if self._send_waiters or self._backlogged():
            stream = self._stream
            if self._send_waiters or stream is None or not stream.write_now():
                await _take_turn(self._send_waiters, self._flushed)
        if not self._admission.over_bytes() and not self._room_waiters:
            return
        if not self._admission.has_children(parent_task_id):
            return
        waiting = self._room_waiters.get(parent_task_id)
        if waiting is None:
            waiting = self._room_waiters[parent_task_id] = deque()
        try:
            await _take_turn(waiting, self._wake_room)
        finally:
            if not waiting and self._room_waiters.get(parent_task_id) is waiting:
                del self._room_waiters[parent_task_id]

    def _backlogged(self) -> bool:
        stream = self._stream
        return stream is not None and stream.unsent >= SEND_AHEAD

    def _flushed(self, everyone: bool = False) -> None:
        """The writer took what waited (or there is no stream): let callers serialize
        again, as many as fit in :data:`SEND_AHEAD` (``everyone``: all)."""
        waiters = self._send_waiters
        stream = self._stream
        room = len(waiters) if everyone else SEND_AHEAD - (stream.unsent if stream else 0)
        while waiters and room > 0:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                room -= 1

    def _wake_room(self, parent_task_id: str | None = None) -> None:
        """Let the next waiting caller serialize its task, if the held bytes allow; or
        the next of ``parent_task_id``'s, whatever the bytes, when it has nothing out.

        One at a time: it submits at once (which wakes the next), so the bytes it adds
        are counted before another caller serializes.
        """
        if parent_task_id is not None:
            if parent_task_id not in self._room_waiters or self._admission.has_children(
                parent_task_id
            ):
                return
            parent = parent_task_id
        elif self._room_waiters and not self._admission.over_bytes():
            parent = next(iter(self._room_waiters))
        else:
            return
        waiting = self._room_waiters[parent]
        while waiting:
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
        if not waiting:
            del self._room_waiters[parent]

    def _send(
        self,
        submission: model.Submission,
        future: asyncio.Future[model.TaskResult] | None = None,
        size: int | None = None,
    ) -> asyncio.Future[model.TaskResult]:
        if future is None:
            future = asyncio.get_running_loop().create_future()
        task_id = submission.task.task_id
        self._sent[task_id] = submission
        self._admission.sent(submission.task, size)
        if self._reconnect is not None:
            # Between controllers: it goes with the others once one is back.
            self._limbo[task_id] = (submission, future)
            return future
        if self._stream is None:
            self._stream = self._open_stream()
        return self._stream.submit(self._shipped(submission), future)

    def _open_stream(self) -> ResultStream[model.Submission]:
        self._sent_bundles = set()
        self._admission.resend_held_counts()  # a new stream may reach a new controller
        return ResultStream(
            lambda: self._submit(metadata=(*self._metadata, (CLIENT_ID_HEADER, self._id))),
            self._submit_batch,
            lambda sub: sub.task.task_id,
            _submission_size,
            target=self._target,
            on_logs=self._on_logs,
            on_settled=self._settled,
            on_returned=self._returned,
            on_ended=self._ended,
            on_flushed=self._flushed,
        )

    def _submit_batch(self, items: list[model.Submission], cancels: list[str]) -> Any:
        batch = pb.SubmitBatch()
        big = convert.submission_batch(items, batch)
        if cancels:
            batch.cancel.extend(cancels)
        for run_id, count in self._admission.held_changes():
            batch.held.add(run_id=run_id, count=count)
        return splice.outgoing(batch, big)

    def _shipped(self, submission: model.Submission) -> model.Submission:
        """The submission as it goes on this stream: a version's source travels once."""
        bundle = submission.task.bundle
        if bundle is not None:
            if bundle.digest in self._sent_bundles:
                return replace(submission, task=replace(submission.task, bundle=None))
            self._sent_bundles.add(bundle.digest)
        return submission

    def _settled(self, task_id: str) -> None:
        submission = self._sent.pop(task_id, None)
        self._abandoned.discard(task_id)
        released = self._admission.settled(task_id)
        if self._room_waiters:
            if submission is not None:  # a parent with nothing out must not wait on bytes
                self._wake_room(submission.task.parent_task_id)
            self._wake_room()
        for submission, future in released:
            if self._closed:  # close() fails what is still held
                self._admission.unsent(submission.task.task_id)
                future.set_exception(ClosedError("the client closed before the task was sent"))
                continue
            try:
                self._send(submission, future)
            except Exception as exc:
                future.set_exception(exc)

    # ------------------------------------------------------------ a controller goes away

    def _returned(self, pending: Pending) -> None:
        """The controller handed these back unfinished: send them again once one is back."""
        for task_id, future in pending.items():
            self._limbo[task_id] = (self._sent[task_id], future)

    def _ended(self, pending: Pending, error: BaseException | None) -> None:
        """The stream ended or broke; its unfinished tasks wait for the next controller.

        Unless the controller itself failed the stream (a status other than
        UNAVAILABLE) before it answered anything, :data:`FAILED_STREAMS` times in a
        row: sending the same tasks again would fail the same way, without end, so
        they fail, with the controller's reason.
        """
        stream, self._stream = self._stream, None
        if _failed_by_server(error) and (stream is None or stream.received == 0):
            self._failed_streams += 1
        else:
            self._failed_streams = 0
        self._flushed(everyone=True)  # nothing waits for this writer any more
        if self._closed or isinstance(error, asyncio.CancelledError):
            # The client closed, or its loop is shutting down: nobody waits any more.
            for future in pending.values():
                future.cancel()
            return
        if error is not None and refused(error):
            failure = rpc_failure(error, self._target)
            for task_id, future in pending.items():
                self._resolve(task_id, future, failure)
            for task_id, (_, future) in list(self._limbo.items()):
                self._resolve(task_id, future, failure)
            self._limbo.clear()
            return
        for task_id, future in pending.items():
            self._limbo[task_id] = (self._sent[task_id], future)
        # Whatever it held is gone with it: register again before the next task.
        self._environments.clear()
        why = "it shut down" if error is None else describe_rpc_error(error, "")[2:]
        if self._failed_streams >= FAILED_STREAMS and self._limbo:
            self._failed_streams = 0
            self._fail_limbo(
                ControllerUnavailableError(
                    f"the controller at {self.address} failed the submit stream "
                    f"{FAILED_STREAMS} times in a row before answering ({why}); "
                    f"{_tasks(len(self._limbo))} failed here instead of being sent again"
                )
            )
        elif self._limbo:
            self._reconnecting(why)

    _reconnect_failure: ReuseRuntimeError | None = None
    #: Streams in a row the controller failed before answering (see ``_ended``).
    _failed_streams = 0

    def _reconnecting(self, reason: str) -> asyncio.Task[None]:
        if self._reconnect is None:
            self._reconnect_failure = None
            self._reconnect = self._tasks.spawn(self._come_back(reason), "reconnect")
        return self._reconnect

    async def _come_back(self, reason: str) -> None:
        """Wait for a controller at the address, register again, and resend the unfinished."""
        loop = asyncio.get_running_loop()
        timeout = self.reconnect_timeout
        deadline = loop.time() + timeout
        self._on_event(
            f"lost the controller at {self.address} ({reason}); waiting for it to come back, up "
            f"to {timeout:g} s; {_tasks(len(self._limbo))} will be sent again"
        )
        delay = 0.2
        try:
            while True:
                local = False
                try:
                    local = self._refresh_credentials()
                    await wait_within(
                        self._channel.channel_ready(), max(0.1, min(5.0, deadline - loop.time()))
                    )
                    keys = await self._register_limbo()
                    break
                except (asyncio.TimeoutError, ReuseRuntimeError) as exc:
                    if isinstance(exc, PolicyError) or (isinstance(exc, AuthError) and not local):
                        self._fail_limbo(exc)
                        return
                    if loop.time() >= deadline:
                        self._fail_limbo(
                            ControllerUnavailableError(
                                f"the controller at {self.address} did not come back within "
                                f"{timeout:g} s ({reason})"
                            )
                        )
                        return
                    await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
                    delay = min(2 * delay, 2.0)
        finally:
            self._reconnect = None
        self._resend(keys)

    def _refresh_credentials(self) -> bool:
        """Take a restarted local controller's new token from the state directory.

        Returns whether the token comes from there (rather than from the caller): then a
        refusal may only mean the new controller has not recorded its token yet.
        """
        if self._configured.authenticated:
            return False
        security = with_local_token(self._configured, self.address)
        if security.token and security != self._security:
            self._security = security
            self._metadata = call_metadata(security)
        return True

    async def _register_limbo(self) -> dict[str, str]:
        """Register the environments of the tasks to resend; returns old key -> new key."""
        keys = {}
        for old in {submission.env_key for submission, _ in self._limbo.values()}:
            spec = self._specs.get(old)
            keys[old] = await self._register_once(spec) if spec is not None else old
        return keys

    def _resend(self, keys: dict[str, str]) -> None:
        limbo, self._limbo = self._limbo, {}
        stream = self._stream = self._open_stream()
        resent = 0
        for task_id, (submission, future) in limbo.items():
            if (
                future.done()
                or task_id in self._abandoned
                or submission.task.run_id in self._abandoned_runs
            ):
                self._resolve(task_id, future, None)
                continue
            key = keys.get(submission.env_key, submission.env_key)
            if key != submission.env_key:
                submission = replace(submission, env_key=key)
                self._sent[task_id] = submission
            stream.submit(self._shipped(submission), future)
            resent += 1
        self._abandoned_runs.clear()
        self._on_event(f"the controller at {self.address} is back; sent {_tasks(resent)} again")

    def _fail_limbo(self, failure: ReuseRuntimeError) -> None:
        self._reconnect_failure = failure
        limbo, self._limbo = self._limbo, {}
        for task_id, (_, future) in limbo.items():
            self._resolve(task_id, future, failure)

    def _resolve(
        self,
        task_id: str,
        future: asyncio.Future[model.TaskResult],
        failure: BaseException | None,
    ) -> None:
        """Settle a task here, without the controller: failed, or (no failure) cancelled."""
        if not future.done():
            if failure is not None:
                future.set_exception(failure)
            else:
                future.set_result(_cancelled_here(task_id, "while the controller was away"))
        self._settled(task_id)

    # ------------------------------------------------------------ cancel, status, close

    def cancel_soon(self, task_id: str) -> None:
        """Cancel one task of this client without waiting for the controller.

        A task still held here is dropped at once; a sent one is cancelled on the
        stream, batched with the rest: a parent cancelled with 100k children pending
        costs no call per child.
        """
        if self._drop_local(task_id, ""):
            return
        if task_id in self._sent:
            self._abandoned.add(task_id)
            if self._stream is not None and not self._stream.broken:
                self._stream.cancel(task_id)

    def _drop_local(self, task_id: str, run_id: str) -> int:
        """Cancel, here, the tasks not at a controller: held ones and those in limbo."""
        held = self._admission.drop(task_id, run_id)
        for submission, future in held:
            if not future.done():
                future.set_result(
                    _cancelled_here(submission.task.task_id, "before it was sent to the controller")
                )
        limbo = [
            task_id_
            for task_id_, (submission, _) in self._limbo.items()
            if task_id_ == task_id or (run_id and submission.task.run_id == run_id)
        ]
        for dropped in limbo:
            _, future = self._limbo.pop(dropped)
            self._resolve(dropped, future, None)
        return len(held) + len(limbo)

    async def cancel(self, *, task_id: str = "", run_id: str = "") -> int:
        """Cancel a task, or every task of a run; returns how many were cancelled."""
        local = self._drop_local(task_id, run_id)
        if task_id and local:
            return local
        if self._reconnect is None:
            try:
                reply = await self._unary(
                    self._stub.Cancel(
                        pb.CancelRequest(task_id=task_id, run_id=run_id), metadata=self._metadata
                    )
                )
                return int(reply.cancelled) + local
            except ControllerUnavailableError:
                pass
        # No controller to tell: whatever of it comes back to this client is not resent.
        if task_id:
            self._abandoned.add(task_id)
        if run_id:
            self._abandoned_runs.add(run_id)
        return local

    async def status(self) -> model.ControllerStatus:
        reply = await self._unary(self._stub.GetStatus(pb.StatusRequest(), metadata=self._metadata))
        return convert.status_from_proto(reply)

    async def _unary(self, call: Any) -> Any:
        try:
            return await call
        except grpc.aio.AioRpcError as exc:
            raise rpc_failure(exc, self._target) from None

    async def run_progress(self, run_id: str, timeout: float | None = None) -> model.RunProgress:
        """How far a run has got (its children done, failed, running; see RunProgress)."""
        reply = await self._unary(
            self._stub.GetRunProgress(
                pb.RunProgressRequest(run_id=run_id), metadata=self._metadata, timeout=timeout
            )
        )
        return convert.progress_from_proto(reply)

    async def close(self) -> None:
        self._closed = True
        self._flushed(everyone=True)
        closed = ClosedError("the client closed before the task was sent")
        for _, future in self._admission.drop_all():
            if not future.done():
                future.set_exception(closed)
        limbo, self._limbo = self._limbo, {}
        for _, future in limbo.values():
            if not future.done():
                future.set_exception(ClosedError("the client closed while its controller was away"))
        await self._tasks.cancel_all("the client closed")
        if self._stream is not None:
            self._stream.abort("the client closed")
        await self._channel.close()


def _started(coro: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
    """``coro`` as a task whose first step has already run, here, in the caller's step
    (a new task's first step would wait its turn on the loop)."""
    loop = asyncio.get_running_loop()
    try:
        pending = coro.send(None)
    except StopIteration:
        done = loop.create_future()
        done.set_result(None)
        return done
    except Exception as exc:
        failed = loop.create_future()
        failed.set_exception(exc)
        return failed
    return loop.create_task(_resume(coro, pending))


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], pending: Any) -> Generator[Any, None, None]:
    """Drive ``coro`` on from where its first step left it (waiting for ``pending``), as
    the task running this does: resumed once ``pending`` is done, or thrown into."""
    while True:
        try:
            yield pending
        except BaseException as exc:  # what the awaited future ended with, or a cancel
            step = functools.partial(coro.throw, exc)
        else:
            step = functools.partial(coro.send, None)
        try:
            pending = step()
        except StopIteration:
            return


async def _take_turn(queue: deque[asyncio.Future[None]], pass_on: Callable[[], None]) -> None:
    """Wait in ``queue`` until whoever serves it resolves this caller's future. A caller
    cancelled just as its turn came passes the turn on (``pass_on``); one cancelled
    before leaves the queue."""
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    queue.append(waiter)
    try:
        await waiter
    except asyncio.CancelledError:
        if waiter.done() and not waiter.cancelled():
            pass_on()
        else:
            with contextlib.suppress(ValueError):
                queue.remove(waiter)
        raise


def _cancelled_here(task_id: str, when: str) -> model.TaskResult:
    return model.TaskResult.failure(
        task_id,
        model.ErrorKind.CANCELLED,
        "CancelledError",
        f"task cancelled {when}",
        state=model.TaskState.CANCELLED,
    )


def _tasks(count: int) -> str:
    return f"{count} unfinished task{'' if count == 1 else 's'}"


def _log_event(line: str) -> None:
    log.warning(line)


def default_reconnect_timeout() -> float:
    """``$REUSE_RUNTIME_RECONNECT_TIMEOUT``, or :data:`RECONNECT_TIMEOUT` seconds."""
    return env_number(
        RECONNECT_ENV,
        RECONNECT_TIMEOUT,
        float,
        valid=lambda seconds: seconds >= 0,
        needs="a number of seconds, at least 0",
    )


def default_max_outstanding_bytes() -> int:
    """``$REUSE_RUNTIME_MAX_OUTSTANDING_BYTES`` (bytes, or a size like ``64Mi``), or
    :data:`MAX_OUTSTANDING_BYTES`."""
    return env_size(
        MAX_OUTSTANDING_BYTES_ENV,
        MAX_OUTSTANDING_BYTES,
        least=1,
        needs="a size of at least 1 byte, like 67108864 or 64Mi",
    )


def default_max_outstanding() -> int:
    """``$REUSE_RUNTIME_MAX_OUTSTANDING``, or :data:`MAX_OUTSTANDING`."""
    return env_number(
        "REUSE_RUNTIME_MAX_OUTSTANDING",
        MAX_OUTSTANDING,
        int,
        valid=lambda tasks: tasks >= 1,
        needs="a whole number of tasks, at least 1",
    )


_Held = tuple[model.Submission, "asyncio.Future[Any]"]


class _Admission:
    """How many of a client's tasks the controller holds at once: flow control.

    A task is sent while fewer than ``limit`` of this client's tasks are
    unfinished and their arguments with its own stay within ``max_bytes`` (or
    nothing else is out: one task larger than that still goes, alone); the rest
    wait here (as plain objects, in order), so a parent that gathers 100k children
    costs the shared controller at most ``limit`` records and ``max_bytes`` of
    arguments. The bytes held here are bounded too, by :meth:`ControllerClient.room`.

    One exception keeps nested fan-out from deadlocking: a child is always sent
    when its parent has no other child at the controller. The controller lends a
    waiting parent's slot only while it knows one of its children; without the
    exception, parents whose children wait here would hold every slot, and the
    tasks at the controller could never run to make room.
    """

    def __init__(self, limit: int, max_bytes: int = MAX_OUTSTANDING_BYTES) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self.outstanding = 0
        self.outstanding_bytes = 0  # arguments of the tasks at the controller
        self.held_bytes = 0  # arguments of the tasks held here
        self.peak_bytes = 0  # most outstanding_bytes ever: for tests and benchmarks
        self._sizes: dict[str, int] = {}  # task id -> its argument bytes, while counted
        self._children: dict[str, int] = {}  # parent id -> its children at the controller
        self._parent_of: dict[str, str] = {}  # child id -> parent id, while at the controller
        # Held tasks, per parent ("" for top-level tasks), parents in arrival order.
        # OrderedDicts: popping the first of a plain dict again and again is quadratic.
        self._held: OrderedDict[str, OrderedDict[str, _Held]] = OrderedDict()
        self._held_under: dict[str, str] = {}  # held task id -> its parent's key
        # Held children per run, for the run's progress; runs changed since the last batch.
        self._held_runs: dict[str, int] = {}
        self._held_changed: set[str] = set()

    def admits(self, submission: model.Submission, size: int) -> bool:
        """Whether ``submission`` (of :func:`task_size` ``size``) goes now, not held."""
        if self.outstanding < self.limit and not self._held and self._fits(size):
            return True
        parent = submission.task.parent_task_id
        return bool(parent) and not self._children.get(parent)

    def _fits(self, size: int) -> bool:
        """Whether ``size`` more bytes (of tasks about to go) stay within the limit."""
        return not self.outstanding or self.outstanding_bytes + size <= self.max_bytes

    def over_bytes(self) -> bool:
        """Whether the arguments held here are at the byte limit."""
        return self.held_bytes >= self.max_bytes

    def has_children(self, parent_task_id: str) -> bool:
        """Whether ``parent_task_id`` (``""``: top level) has a task here or out."""
        if not parent_task_id:
            return bool(self.outstanding or self._held)
        return bool(self._children.get(parent_task_id)) or parent_task_id in self._held

    def hold(self, submission: model.Submission, future: asyncio.Future[Any], size: int) -> None:
        task = submission.task
        task_id = task.task_id
        self.held_bytes += size
        self._sizes[task_id] = size
        parent = task.parent_task_id
        held = self._held.get(parent)
        if held is None:
            held = self._held[parent] = OrderedDict()
        held[task_id] = (submission, future)
        self._held_under[task_id] = parent
        if parent:
            self._count_held(task.run_id, 1)

    def sent(self, task: model.TaskSpec, size: int | None = None) -> None:
        """``task`` went to the controller; ``size`` is its :func:`task_size` when known
        (a task that was held has its size here already)."""
        self.outstanding += 1
        if size is None:
            size = self._sizes[task.task_id]  # counted when it was held
        if size:
            self._sizes[task.task_id] = size
            self.outstanding_bytes += size
            if self.outstanding_bytes > self.peak_bytes:
                self.peak_bytes = self.outstanding_bytes
        parent = task.parent_task_id
        if parent:
            self._parent_of[task.task_id] = parent
            self._children[parent] = self._children.get(parent, 0) + 1

    def settled(self, task_id: str) -> list[_Held]:
        """A sent task finished: the held tasks to send now, in order."""
        self.outstanding -= 1
        sizes = self._sizes
        self.outstanding_bytes -= sizes.pop(task_id, 0)
        parent = self._parent_of.pop(task_id, "")
        release = []
        extra = 0  # bytes of the tasks released so far
        if parent:
            left = self._children[parent] - 1
            if left:
                self._children[parent] = left
            else:
                del self._children[parent]
                # The parent must keep one child out.
                child = self._first_waiting(parent)
                if child is not None:
                    release.append(self._take(parent))
                    extra = sizes[child]
        all_held = self._held
        room = self.limit - self.outstanding - len(release)
        while room > 0 and all_held:
            first = next(iter(all_held))  # O(1) on an OrderedDict
            child = self._first_waiting(first)
            if child is None:
                continue  # every one of that parent's held tasks was given up
            if not self._fits(extra + sizes[child]):
                break
            release.append(self._take(first))
            extra += sizes[child]
            room -= 1
        return release

    def _first_waiting(self, parent: str) -> str | None:
        """The first of ``parent``'s held tasks whose caller still waits for it. Those
        before it whose callers stopped waiting are dropped: never sent, they take no
        turn from the next (with nothing else out, the rest would wait forever)."""
        held = self._held.get(parent)
        while held:
            task_id, (_, future) = next(iter(held.items()))
            if not future.done():
                return task_id
            self._remove(parent, task_id)
            held = self._held.get(parent)
        return None

    def unsent(self, task_id: str) -> None:
        """A task :meth:`settled` released is not sent after all (the client closed)."""
        self._sizes.pop(task_id, None)

    def drop(self, task_id: str, run_id: str) -> list[_Held]:
        """Forget held tasks being cancelled (by id, or every one of a run)."""
        dropped = []
        parent = self._held_under.get(task_id)
        if parent is not None:
            dropped.append(self._remove(parent, task_id))
        if run_id:
            for parent, held in list(self._held.items()):
                for held_id, (submission, _) in list(held.items()):
                    if submission.task.run_id == run_id:
                        dropped.append(self._remove(parent, held_id))
        return dropped

    def _remove(self, parent: str, task_id: str) -> _Held:
        held = self._held[parent]
        entry = held.pop(task_id)
        del self._held_under[task_id]
        self.held_bytes -= self._sizes.pop(task_id, 0)
        if not held:
            del self._held[parent]
        if parent:
            self._count_held(entry[0].task.run_id, -1)
        return entry

    def resend_held_counts(self) -> None:
        """Report every run's held count again with the next batch."""
        self._held_changed.update(self._held_runs)

    def drop_all(self) -> list[_Held]:
        held = [entry for entries in self._held.values() for entry in entries.values()]
        for task_id in self._held_under:
            self._sizes.pop(task_id, None)
        self.held_bytes = 0
        self._held.clear()
        self._held_under.clear()
        self._held_changed.update(self._held_runs)
        self._held_runs.clear()
        return held

    def _take(self, parent: str) -> _Held:
        held = self._held[parent]
        task_id, entry = held.popitem(last=False)
        del self._held_under[task_id]
        self.held_bytes -= self._sizes.get(task_id, 0)  # kept: sent() counts it out
        if not held:
            del self._held[parent]
        if parent:
            self._count_held(entry[0].task.run_id, -1)
        return entry

    def _count_held(self, run_id: str, change: int) -> None:
        if not run_id:
            return
        count = self._held_runs.get(run_id, 0) + change
        if count > 0:
            self._held_runs[run_id] = count
        else:
            self._held_runs.pop(run_id, None)
        self._held_changed.add(run_id)

    def held_changes(self) -> list[tuple[str, int]]:
        """Runs whose held count changed since the last call, with the count now."""
        if not self._held_changed:
            return []
        changes = [(run_id, self._held_runs.get(run_id, 0)) for run_id in self._held_changed]
        self._held_changed.clear()
        return changes


class ReportSender:
    """Sends a replica's report from a plain thread, over a blocking channel of its own.

    The replica's watchdog uses it while the event loop is blocked (the Connect
    stream lives on that loop), so ``status`` shows the blocked loop as it
    happens. Thread-safe; a failed send is dropped (the next heartbeat follows).
    """

    def __init__(self, address: str, security: Security) -> None:
        self._address = address
        self._security = security
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None

    def send(self, report: model.ReplicaReport, timeout: float = 2.0) -> bool:
        """Send ``report``; returns whether the controller knew the replica."""
        with self._lock:
            if self._channel is None:
                if self._security.tls is not None:
                    credentials = grpc.ssl_channel_credentials(
                        root_certificates=self._security.tls.ca,
                        private_key=self._security.tls.key,
                        certificate_chain=self._security.tls.cert,
                    )
                    self._channel = grpc.secure_channel(self._address, credentials)
                else:
                    self._channel = grpc.insecure_channel(self._address)
            stub = pb_grpc.ControllerStub(self._channel)
            try:
                reply = stub.Report(
                    convert.report_to_proto(report),
                    timeout=timeout,
                    metadata=call_metadata(self._security),
                )
            except grpc.RpcError:
                return False
            return bool(reply.known)

    def close(self) -> None:
        with self._lock:
            channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()
