"""The worker client: dispatch tasks straight to one replica, without a controller."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from reuse_runtime import model
from reuse_runtime.aio import wait_within
from reuse_runtime.client.channel import call_metadata, open_channel, refused, rpc_failure
from reuse_runtime.client.results import ResultStream, checked_size
from reuse_runtime.security import Security
from reuse_runtime.tokens import with_local_token
from reuse_runtime.wire import convert, stubs
from reuse_runtime.wire.batching import task_size

Reply = TypeVar("Reply")


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
        self._calls = stubs.WorkerCalls(self._channel)
        self._dispatch = stubs.dispatch_method(self._channel)
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
        return await self._unary(self._calls.execute(spec, self._metadata, timeout))

    async def _unary(self, call: Awaitable[Reply]) -> Reply:
        """Await a unary call; a refused token becomes :class:`AuthError`, the rest stays."""
        try:
            return await call
        except grpc.aio.AioRpcError as exc:
            if refused(exc):
                raise rpc_failure(exc, self._target) from None
            raise

    def submit(self, spec: model.TaskSpec) -> asyncio.Future[model.TaskResult]:
        """Send a task on the shared stream; the future resolves to its result."""
        checked_size(spec)
        if self._stream is None or self._stream.broken:
            self._stream = ResultStream(
                lambda: self._dispatch(metadata=self._metadata),
                convert.dispatch_message,
                stubs.read_results,
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
        return await self._unary(self._calls.cancel(task_id, self._metadata))

    async def status(self) -> model.ReplicaReport:
        return await self._unary(self._calls.status(self._metadata))

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.close()
        await self._channel.close()
