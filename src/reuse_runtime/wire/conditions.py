"""The ``Runs`` service's condition messages: conversion, and their client calls.

The server side is in :mod:`reuse_runtime.wire.run_service`, with the other
``Runs`` methods.
"""

from __future__ import annotations

import grpc

from reuse_runtime.conditions import ConditionInfo, ConditionValue
from reuse_runtime.runinfo import PHASE_CODES
from reuse_runtime.wire.runs import Metadata, phase_from_proto
from reuse_runtime.wire.v1 import runtime_pb2 as pb
from reuse_runtime.wire.v1 import runtime_pb2_grpc as pb_grpc


def value_to_proto(value: ConditionValue, msg: pb.ConditionValue) -> None:
    # bool before int: a bool is an int too.
    if isinstance(value, bool):
        msg.bool_value = value
    elif isinstance(value, int):
        msg.int_value = value
    elif isinstance(value, float):
        msg.float_value = value
    else:
        msg.string_value = value


def value_from_proto(msg: pb.ConditionValue) -> ConditionValue | None:
    which = msg.WhichOneof("value")
    if which is None:
        return None
    found: ConditionValue = getattr(msg, which)
    return found


def condition_to_proto(info: ConditionInfo) -> pb.ConditionInfo:
    msg = pb.ConditionInfo(
        run=info.run,
        parent_action_id=info.parent_action_id,
        name=info.name,
        action_id=info.action_id,
        prompt=info.prompt,
        prompt_type=info.prompt_type,
        data_type=info.data_type,
        description=info.description,
        timeout=info.timeout or 0.0,
        phase=PHASE_CODES[info.phase],  # type: ignore[arg-type]
        created=info.created,
        ended=info.ended or 0.0,
        reason=info.reason,
        webhook_url=info.webhook_url,
        webhook_payload=info.webhook_payload,
    )
    if info.value is not None:
        value_to_proto(info.value, msg.value)
    return msg


def condition_from_proto(msg: pb.ConditionInfo) -> ConditionInfo:
    return ConditionInfo(
        run=msg.run,
        parent_action_id=msg.parent_action_id,
        name=msg.name,
        prompt=msg.prompt,
        prompt_type=msg.prompt_type or "text",
        data_type=msg.data_type or "bool",
        description=msg.description,
        timeout=msg.timeout or None,
        phase=phase_from_proto(msg.phase),
        created=msg.created,
        ended=msg.ended or None,
        value=value_from_proto(msg.value) if msg.HasField("value") else None,
        reason=msg.reason,
        webhook_url=msg.webhook_url,
        webhook_payload=msg.webhook_payload,
    )


class ConditionCalls:
    """The condition methods of a controller's ``Runs`` service over ``channel``, in model
    terms. Failures raise what gRPC raises (``grpc.aio.AioRpcError``)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = pb_grpc.RunsStub(channel)

    async def create(
        self, info: ConditionInfo, metadata: Metadata, timeout: float
    ) -> ConditionInfo:
        reply = await self._stub.CreateCondition(
            condition_to_proto(info), metadata=metadata, timeout=timeout
        )
        return condition_from_proto(reply)

    async def list(
        self, run: str, parent: str | None, metadata: Metadata, timeout: float
    ) -> list[ConditionInfo]:
        request = pb.ListConditionsRequest(run=run)
        if parent is not None:
            request.parent = parent
        reply = await self._stub.ListConditions(request, metadata=metadata, timeout=timeout)
        return [condition_from_proto(c) for c in reply.conditions]

    async def signal(
        self, run: str, name: str, value: ConditionValue, metadata: Metadata, timeout: float
    ) -> ConditionInfo:
        request = pb.SignalConditionRequest(run=run, name=name)
        value_to_proto(value, request.value)
        reply = await self._stub.SignalCondition(request, metadata=metadata, timeout=timeout)
        return condition_from_proto(reply)

    async def wait(
        self, run: str, action_id: str, max_wait: float, metadata: Metadata
    ) -> ConditionInfo:
        """The condition once it ends, or as it is after ``max_wait`` seconds."""
        reply = await self._stub.WaitCondition(
            pb.WaitConditionRequest(run=run, action_id=action_id, max_wait=max_wait),
            metadata=metadata,
            timeout=max_wait + 30.0,
        )
        return condition_from_proto(reply)
