"""The client a replica's tasks send their child calls through.

A task running on a replica calls other tasks through its controller (the one the
replica was started with, ``--controller``), or through the in-process client of
``reuse_runtime.testing``. This module hands the call path that client; it
knows nothing of runs or of the driver's runtime.
"""

from __future__ import annotations

from reuse_runtime import context as task_context
from reuse_runtime.client import ControllerClient
from reuse_runtime.errors import ControllerUnavailableError

_replica_client: ControllerClient | None = None


def replica_client() -> task_context.ChildTaskClient:
    """The client a replica's tasks use for their child tasks (created on first use)."""
    global _replica_client
    harness = task_context.in_process_client()
    if harness is not None:
        return harness
    if _replica_client is None:
        endpoint = task_context.controller_endpoint()
        if endpoint is None:
            raise ControllerUnavailableError(
                "this replica has no controller (start it with --controller) so its tasks "
                "cannot call other tasks"
            )
        _replica_client = ControllerClient(endpoint.address, endpoint.security)
    return _replica_client


def cancel_child(client: task_context.ChildTaskClient, task_id: str) -> None:
    """Tell the controller to cancel a child whose parent stopped waiting for it."""
    client.cancel_soon(task_id)
