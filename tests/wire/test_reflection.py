"""Server reflection answers both ``grpc.reflection.v1`` and ``v1alpha`` (grpcurl asks v1)."""

from __future__ import annotations

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2

from tests.helpers import spawn_worker


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
async def test_reflection_lists_the_services(version: str) -> None:
    async with spawn_worker() as worker:
        async with grpc.aio.insecure_channel(worker.address) as channel:
            call = channel.stream_stream(
                f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            replies = [reply async for reply in call(iter([request]))]
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"reuse_runtime.v1.Worker", "grpc.reflection.v1.ServerReflection"} <= names
