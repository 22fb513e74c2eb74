"""The gRPC clients: the SDK's controller client, a replica's controller stream, the
worker client, and the batched result stream they share.

Only :mod:`reuse_runtime.wire` knows the protobuf messages; this package keeps the
channels, streams, flow control and reconnection.
"""

from reuse_runtime.client.admission import (
    MAX_OUTSTANDING,
    MAX_OUTSTANDING_BYTES,
    SEND_AHEAD,
    default_max_outstanding,
    default_max_outstanding_bytes,
)
from reuse_runtime.client.channel import (
    call_metadata,
    check_health,
    describe_rpc_error,
    open_channel,
    refused,
    rpc_failure,
)
from reuse_runtime.client.connection import ControllerCommand, ControllerConnection
from reuse_runtime.client.controller import (
    FAILED_STREAMS,
    RECONNECT_TIMEOUT,
    ControllerClient,
    default_reconnect_timeout,
)
from reuse_runtime.client.reports import ReportSender
from reuse_runtime.client.results import ResultStream
from reuse_runtime.client.worker import WorkerClient

__all__ = [
    "FAILED_STREAMS",
    "MAX_OUTSTANDING",
    "MAX_OUTSTANDING_BYTES",
    "RECONNECT_TIMEOUT",
    "SEND_AHEAD",
    "ControllerClient",
    "ControllerCommand",
    "ControllerConnection",
    "ReportSender",
    "ResultStream",
    "WorkerClient",
    "call_metadata",
    "check_health",
    "default_max_outstanding",
    "default_max_outstanding_bytes",
    "default_reconnect_timeout",
    "describe_rpc_error",
    "open_channel",
    "refused",
    "rpc_failure",
]
