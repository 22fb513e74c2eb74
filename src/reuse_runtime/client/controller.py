"""The controller client: the SDK's one stream of tasks to a controller.

It keeps every task it sent until that task's result arrives, so a controller that
restarts loses nothing (see :class:`ControllerClient`). Flow control lives in
:mod:`reuse_runtime.client.admission`; the stream itself in
:mod:`reuse_runtime.client.results`.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import grpc
import structlog

from reuse_runtime import model
from reuse_runtime.address import parse_address
from reuse_runtime.aio import TaskSet, wait_within
from reuse_runtime.client.admission import (
    SEND_AHEAD,
    Admission,
    CallerTurns,
    Held,
    default_max_outstanding,
    default_max_outstanding_bytes,
)
from reuse_runtime.client.bundles import BundleOutbox
from reuse_runtime.client.channel import (
    CONNECTION_REFUSED,
    call_metadata,
    describe_rpc_error,
    failed_by_server,
    open_channel,
    refused,
    rpc_failure,
    tcp_failure,
)
from reuse_runtime.client.results import Pending, ResultStream, checked_size
from reuse_runtime.envvars import env_number
from reuse_runtime.errors import (
    AuthError,
    ClosedError,
    CodeBundleError,
    ControllerUnavailableError,
    PolicyError,
    ReuseRuntimeError,
)
from reuse_runtime.security import Security
from reuse_runtime.tokens import with_local_token
from reuse_runtime.wire import stubs
from reuse_runtime.wire.batching import task_size
from reuse_runtime.wire.services import CLIENT_ID_HEADER

Reply = TypeVar("Reply")

#: Submit streams in a row that a controller may fail (with a status of its own, before
#: any answer) before the tasks on them fail instead of being sent again.
FAILED_STREAMS = 3
#: Seconds a client waits for a lost controller to come back before its unfinished
#: tasks fail. Override with ``$REUSE_RUNTIME_RECONNECT_TIMEOUT``.
RECONNECT_TIMEOUT = 300.0
RECONNECT_ENV = "REUSE_RUNTIME_RECONNECT_TIMEOUT"
#: Seconds a new client's first connection may be refused (nothing listens at the
#: address) before :meth:`ControllerClient.wait_ready` fails, saying so: a controller
#: that is starting gets that long to listen, a missing one costs no more.
REFUSED_GRACE = 1.0
#: Seconds between looks at why a new client's channel is not ready yet.
_LOOK_EVERY = 0.25
#: Seconds a code bundle may take to reach the controller.
BUNDLE_TIMEOUT = 300.0

log = structlog.get_logger("reuse_runtime.client")


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
        self._where = parse_address(address, "controller address")
        self.address = address = str(self._where)
        self._target = f"controller at {address}"
        self._configured = security or Security()
        self._security = with_local_token(self._configured, address)
        self._admission = admission = Admission(
            max_outstanding if max_outstanding is not None else default_max_outstanding(),
            max_outstanding_bytes
            if max_outstanding_bytes is not None
            else default_max_outstanding_bytes(),
        )
        self._turns = turns = CallerTurns(admission, self._unsent)
        # The turn queues themselves, read on every call: nobody waiting costs no call.
        self._room_waiters = turns.room_waiters
        self._send_waiters = turns.send_waiters
        self._metadata = call_metadata(self._security)
        self._channel = open_channel(address, self._security)
        self._calls = stubs.ControllerCalls(self._channel)
        self._submit = stubs.submit_method(self._channel)
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
        # Code bundles this client made, sent before what names one.
        self._code = BundleOutbox(self._put_bundle)
        self._sent_bundles: set[str] = set()
        # Every task at the controller as first submitted (with its bundle): what is resent.
        self._sent: dict[str, model.Submission] = {}
        # Tasks to send again once a controller is back, in order.
        self._limbo: dict[str, Held] = {}
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
        """Wait for this new client's first connection, for up to ``timeout`` seconds.

        When nothing listens at the address (the connection is refused for
        :data:`REFUSED_GRACE` seconds in a row), this fails then, saying so, instead
        of after ``timeout``; a host that does not answer at all has ``timeout``.
        (A lost controller is waited for by the reconnection instead, for which a
        refused connection only means that it is restarting.)
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        ready = asyncio.ensure_future(self._channel.channel_ready())
        refused_since: float | None = loop.time()
        why = ""
        try:
            while True:
                left = deadline - loop.time()
                done, _ = await asyncio.wait({ready}, timeout=max(0.0, min(_LOOK_EVERY, left)))
                if done:
                    ready.result()
                    return
                if loop.time() >= deadline:
                    break
                # Not ready yet: ask the kernel why (refused, timed out, no such name).
                why = await tcp_failure(self._where, min(1.0, deadline - loop.time()))
                now = loop.time()
                if why != CONNECTION_REFUSED:
                    refused_since = None
                elif refused_since is None:
                    refused_since = now
                elif now - refused_since >= REFUSED_GRACE:
                    raise ControllerUnavailableError(
                        f"nothing listens on {self.address} (connection refused): is the "
                        f"controller running? (`reuse-runtime controller --port "
                        f"{self._where.port}` starts one)"
                    )
        finally:
            ready.cancel()
            ready.add_done_callback(lambda task: task.cancelled() or task.exception())
        if not why:
            why = "a connection opens, but no controller answers on it: is it a controller, "
            why += "and does its TLS setting match this client's?"
        raise ControllerUnavailableError(
            f"no controller answered at {self.address} within {timeout:g} s ({why})"
        )

    @property
    def client_id(self) -> str:
        """This client's name on its streams (and on the runs it creates)."""
        return self._id

    @property
    def channel(self) -> grpc.aio.Channel:
        """The channel to the controller (the runs client shares it)."""
        return self._channel

    def call_metadata(self, *, refresh: bool = False) -> stubs.Metadata:
        """What every call carries (the token); ``refresh`` first takes a restarted local
        controller's new token from the state directory."""
        if refresh:
            self._refresh_credentials()
        return self._metadata

    @property
    def peak_outstanding_bytes(self) -> int:
        """The most argument bytes this client has had at the controller at once."""
        return self._admission.peak_bytes

    @property
    def duplicate_results(self) -> int:
        """Results that reached this client for a task it had already resolved (or never
        sent): a result delivered twice. The runtime promises this stays 0."""
        stream = self._stream
        return self._duplicates + (stream.duplicates if stream is not None else 0)

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

    def add_bundle(self, digest: str, data: bytes) -> None:
        """Keep a code bundle: it goes to the controller, once, before what names it."""
        self._code.add(digest, data)

    async def send_bundle(self, digest: str, data: bytes) -> None:
        """Keep code bundle ``digest``; the controller has it once this returns."""
        self._code.add(digest, data)
        await self._code.send(digest)

    async def _put_bundle(self, digest: str, data: bytes) -> None:
        try:
            if await self._calls.bundle_size(digest, self._metadata, timeout=30) is None:
                await self._calls.put_bundle(digest, data, self._metadata, timeout=BUNDLE_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.INVALID_ARGUMENT:
                raise CodeBundleError(exc.details() or "the code bundle was refused") from None
            raise rpc_failure(exc, self._target) from None

    async def _register_once(self, env: model.EnvironmentSpec) -> str:
        await self._code.send(env.code_bundle)
        try:
            key = await self._calls.register_environment(env, self._metadata, timeout=30)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.INVALID_ARGUMENT:
                raise PolicyError(exc.details() or "invalid environment") from None
            raise rpc_failure(exc, self._target) from None
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
        in order (see :class:`~reuse_runtime.client.admission.Admission`).
        """
        size = checked_size(submission.task)
        admission = self._admission
        if admission.admits(submission, size):
            future = self._send(submission, size=size)
        else:
            future = asyncio.get_running_loop().create_future()
            admission.hold(submission, future, size)
        if self._room_waiters:
            self._turns.wake()
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
            await self._turns.send_turn(self._stream)
        if self._room_waiters or self._admission.over_bytes():
            await self._turns.room_turn(parent_task_id)

    def _backlogged(self) -> bool:
        stream = self._stream
        return stream is not None and stream.unsent >= SEND_AHEAD

    def _unsent(self) -> int:
        stream = self._stream
        return stream.unsent if stream is not None else 0

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
            stubs.read_submit_events,
            lambda sub: sub.task.task_id,
            _submission_size,
            target=self._target,
            on_logs=self._on_logs,
            on_settled=self._settled,
            on_returned=self._returned,
            on_ended=self._ended,
            on_flushed=self._turns.flushed,
        )

    def _submit_batch(self, items: list[model.Submission], cancels: list[str]) -> Any:
        return stubs.submit_message(items, cancels, self._admission.held_changes())

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
                self._turns.wake(submission.task.parent_task_id)
            self._turns.wake()
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
        if stream is not None:
            self._duplicates += stream.duplicates
        if failed_by_server(error) and (stream is None or stream.received == 0):
            self._failed_streams += 1
        else:
            self._failed_streams = 0
        self._turns.flushed(everyone=True)  # nothing waits for this writer any more
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
        self._code.controller_lost()
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
    #: Results received twice on this client's streams that have ended.
    _duplicates = 0
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
                cancelled = await self._unary(self._calls.cancel(task_id, run_id, self._metadata))
                return cancelled + local
            except ControllerUnavailableError:
                pass
        # No controller to tell: whatever of it comes back to this client is not resent.
        if task_id:
            self._abandoned.add(task_id)
        if run_id:
            self._abandoned_runs.add(run_id)
        return local

    async def status(self) -> model.ControllerStatus:
        return await self._unary(self._calls.status(self._metadata))

    async def _unary(self, call: Awaitable[Reply]) -> Reply:
        try:
            return await call
        except grpc.aio.AioRpcError as exc:
            raise rpc_failure(exc, self._target) from None

    async def run_progress(self, run_id: str, timeout: float | None = None) -> model.RunProgress:
        """How far a run has got (its children done, failed, running; see RunProgress)."""
        return await self._unary(self._calls.run_progress(run_id, self._metadata, timeout))

    async def close(self) -> None:
        self._closed = True
        self._turns.flushed(everyone=True)
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
