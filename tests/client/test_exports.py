"""The client package's public names, pinned: one cannot disappear (or appear) by accident."""

from __future__ import annotations

import reuse_runtime.client as client

EXPORTS = {
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
}


def test_the_exports_are_pinned() -> None:
    assert set(client.__all__) == EXPORTS
    assert all(hasattr(client, name) for name in EXPORTS)
