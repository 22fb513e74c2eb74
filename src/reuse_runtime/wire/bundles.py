"""The controller's code-bundle methods: ``StatBundle``, ``PutBundle``, ``FetchBundle``.

A client sends a project's code bundle once, in chunks (``PutBundle``), after
asking whether the controller has it (``StatBundle``); a replica that cannot see
the client's files reads it back (``FetchBundle``). They are methods of the
Controller service, behind the same token or mTLS as every other call; the
controller's server adds :func:`bundle_handler` beside ``controller_handler``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

import grpc

from reuse_runtime import errors
from reuse_runtime.aio import in_thread
from reuse_runtime.bundles.store import CHUNK_BYTES
from reuse_runtime.wire.services import (
    CONTROLLER_SERVICE,
    Malformed,
    _abort,
    _parsed,
    _parser,
)
from reuse_runtime.wire.v1 import runtime_pb2 as pb


class BundleSink(Protocol):
    """One code bundle arriving in chunks (``reuse_runtime.bundles.store.BundleUpload``)."""

    def write(self, offset: int, data: bytes) -> None: ...
    def finish(self) -> None:
        """Check the whole bundle against its digest and keep it; raises CodeBundleError."""
        ...


class BundleOperations(Protocol):
    """The code bundles a controller keeps (``reuse_runtime.controller.versions``)."""

    def bundle_size(self, digest: str) -> int | None:
        """The bundle's size, or None if the controller does not have it."""
        ...

    def receive_bundle(self, digest: str, size: int, source: str) -> BundleSink: ...
    def read_bundle(self, digest: str) -> bytes:
        """The bundle's bytes (blocking I/O); raises CodeBundleError if it is not here."""
        ...


def bundle_chunks(digest: str, data: bytes) -> Iterator[pb.BundleChunk]:
    """Bundle ``digest`` as the chunks both ``PutBundle`` and ``FetchBundle`` carry (one,
    empty, for an empty bundle)."""
    for offset in range(0, max(1, len(data)), CHUNK_BYTES):
        yield pb.BundleChunk(
            digest=digest, size=len(data), offset=offset, data=data[offset : offset + CHUNK_BYTES]
        )


class _BundleAdapter:
    """A bundle's bytes, in chunks, both ways."""

    def __init__(self, ops: BundleOperations) -> None:
        self._ops = ops

    async def stat(self, request: Any, context: grpc.aio.ServicerContext) -> pb.BundleReceipt:
        request = await _parsed(request, context)
        size = self._ops.bundle_size(request.digest)
        return pb.BundleReceipt(digest=request.digest, present=size is not None, size=size or 0)

    async def put(
        self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> pb.BundleReceipt:
        sink: BundleSink | None = None
        digest, size = "", 0
        try:
            async for request in requests:
                if isinstance(request, Malformed):
                    raise errors.CodeBundleError(request.reason)
                if sink is None:
                    digest, size = request.digest, request.size
                    sink = self._ops.receive_bundle(digest, size, f"the client at {context.peer()}")
                sink.write(request.offset, request.data)
            if sink is None:
                raise errors.CodeBundleError("PutBundle sent no chunk: send the bundle's first")
            await in_thread(sink.finish)  # a checksum and a disk write: off the loop
        except Exception as exc:
            await _abort(context, exc)
            raise
        return pb.BundleReceipt(digest=digest, present=True, size=size)

    async def fetch(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        request = await _parsed(request, context)
        try:
            data = await in_thread(self._ops.read_bundle, request.digest)
        except errors.CodeBundleError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
            raise
        for chunk in bundle_chunks(request.digest, data):
            yield chunk


def bundle_handler(ops: BundleOperations) -> grpc.GenericRpcHandler:
    """StatBundle, PutBundle and FetchBundle of the Controller service."""
    adapter = _BundleAdapter(ops)
    return grpc.method_handlers_generic_handler(
        CONTROLLER_SERVICE,
        {
            "StatBundle": grpc.unary_unary_rpc_method_handler(
                adapter.stat,
                request_deserializer=_parser(pb.BundleRequest),
                response_serializer=pb.BundleReceipt.SerializeToString,
            ),
            "PutBundle": grpc.stream_unary_rpc_method_handler(
                adapter.put,
                request_deserializer=_parser(pb.BundleChunk),
                response_serializer=pb.BundleReceipt.SerializeToString,
            ),
            "FetchBundle": grpc.unary_stream_rpc_method_handler(
                adapter.fetch,
                request_deserializer=_parser(pb.BundleRequest),
                response_serializer=pb.BundleChunk.SerializeToString,
            ),
        },
    )


__all__ = ["BundleOperations", "BundleSink", "bundle_chunks", "bundle_handler"]
