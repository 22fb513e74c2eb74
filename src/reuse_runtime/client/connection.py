"""A replica's stream to its controller: reports and results up, commands down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from reuse_runtime import model
from reuse_runtime.bundles.archive import max_bundle_bytes
from reuse_runtime.client.channel import call_metadata, open_channel
from reuse_runtime.errors import CodeBundleError
from reuse_runtime.security import Security
from reuse_runtime.wire import stubs
from reuse_runtime.wire.batching import in_batches, result_size
from reuse_runtime.wire.stubs import ControllerCommand

__all__ = ["LINK_PATIENCE", "ControllerCommand", "ControllerConnection"]

#: Seconds a replica's stream to its controller may go unanswered before the replica
#: drops it. Longer than the controller's report deadline (5 s by default): a replica
#: cut off for less is declared lost by its controller first, and told so when the
#: network heals (its late results are counted there, and it dials again or exits).
LINK_PATIENCE = 20.0

#: Seconds a replica waits for its code bundle to arrive from the controller.
FETCH_TIMEOUT = 300.0


class ControllerConnection:
    """A replica's stream to its controller: reports and results up, work down.

    Call-order contract: create inside the running loop, iterate :meth:`commands`
    (the first one is normally a :class:`~reuse_runtime.model.ReplicaInit`), and
    :meth:`close` to half-close once the last results are queued.
    """

    def __init__(
        self,
        address: str,
        security: Security,
        hello: model.ReplicaHello,
        *,
        own_connection: bool = False,
    ) -> None:
        self.address = address
        # A process holds one connection per address, which its channels share, unless
        # one asks for its own (many replicas in one process: a benchmark's).
        extra = (("grpc.use_local_subchannel_pool", 1),) if own_connection else ()
        self._channel = open_channel(address, security, extra, keepalive_timeout=LINK_PATIENCE)
        self._outbox: list[Any] = [stubs.hello_message(hello)]
        self._wakeup = asyncio.Event()
        self._closing = False
        connect = stubs.connect_method(self._channel)
        self._metadata = call_metadata(security)
        self._call = connect(self._requests(), metadata=self._metadata)

    def send_report(self, report: model.ReplicaReport) -> None:
        self._outbox.append(stubs.report_message(report))
        self._wakeup.set()

    def send_results(self, results: list[model.TaskResult], logs: list[model.LogLine]) -> None:
        for items, last in in_batches(results, result_size):
            self._outbox.append(stubs.results_message(items, logs if last else []))
        self._wakeup.set()

    async def fetch_bundle(self, digest: str) -> bytes:
        """Code bundle ``digest`` from the controller, over this replica's authenticated
        channel (the caller checks it against its digest). Raises CodeBundleError."""
        calls = stubs.ControllerCalls(self._channel)
        try:
            return await calls.fetch_bundle(
                digest, self._metadata, max_bytes=max_bundle_bytes(), timeout=FETCH_TIMEOUT
            )
        except grpc.aio.AioRpcError as exc:
            raise CodeBundleError(
                f"code bundle {digest[:12]} could not be fetched from the controller at "
                f"{self.address}: {exc.code().name}: {exc.details()}"
            ) from None

    async def commands(self) -> AsyncIterator[ControllerCommand]:
        """The controller's messages, until it ends the stream. Raises on a broken stream."""
        async for message, big in self._call:
            command = stubs.command_from_message(message, big)
            if command is not None:
                yield command

    async def close(self) -> None:
        """Flush what is queued, half-close, and close the channel."""
        self._closing = True
        self._wakeup.set()
        # Grace lets the last messages out and the controller end the stream.
        await self._channel.close(grace=2.0)

    def abort(self) -> None:
        self._call.cancel()

    async def discard(self) -> None:
        """Close the channel at once (the stream ended or broke: nothing is left to send)."""
        self._call.cancel()
        await self._channel.close()

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
