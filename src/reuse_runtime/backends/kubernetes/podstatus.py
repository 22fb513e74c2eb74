"""Reading a pod's status: how its replica ended (:func:`exit_status`), or why it
has not started yet (:func:`pending_reason`). Pure: dicts in the API's shape."""

from __future__ import annotations

import json
from typing import Any

from reuse_runtime.backends.base import ExitStatus
from reuse_runtime.backends.kubernetes.podspec import MEMORY_LIMIT_ANNOTATION, WORKER_CONTAINER


def container_status(pod: dict[str, Any]) -> dict[str, Any]:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == WORKER_CONTAINER:
            return dict(status)
    return {}


def init_record(message: str) -> tuple[dict[str, Any], str]:
    """(the init's exit record, the worker's last stderr lines) from a termination message."""
    first, _, rest = message.partition("\n")
    try:
        record = json.loads(first)
    except ValueError:
        return {}, message.strip()
    return (record if isinstance(record, dict) else {}), rest.strip()


def exit_status(pod: dict[str, Any], *, killed: bool = False) -> ExitStatus | None:
    """How a pod's replica ended, or None while it has not.

    ``OOMKilled`` (or the init's record of an OOM kill) is an out-of-memory
    loss with the pod's memory limit; ``Evicted`` and other pod-level failures
    are named with Kubernetes' reason and message.
    """
    status = pod.get("status") or {}
    phase = status.get("phase", "")
    terminated = (container_status(pod).get("state") or {}).get("terminated")
    if terminated is None:
        terminated = (container_status(pod).get("lastState") or {}).get("terminated")
    limit = ((pod.get("metadata") or {}).get("annotations") or {}).get(MEMORY_LIMIT_ANNOTATION, "")
    if phase == "Failed" and status.get("reason") == "Evicted":
        # The kubelet killed the container for it: the eviction is what counts.
        message = str(status.get("message") or "")
        return ExitStatus(
            detail=f"was evicted by Kubernetes (Evicted): {message}".rstrip(": "),
            reason="Evicted",
        )
    if terminated:
        reason = str(terminated.get("reason") or "")
        record, _ = init_record(str(terminated.get("message") or ""))
        code = terminated.get("exitCode")
        if reason == "OOMKilled" or record.get("oom"):
            return ExitStatus(
                code=137, signal=9, oom=True, memory_limit=limit, reason=reason or "OOMKilled"
            )
        signum = terminated.get("signal") or record.get("signal")
        if isinstance(code, int) and code > 128 and not signum:
            signum = code - 128
        if signum:
            return ExitStatus(signal=int(signum), by_runtime=killed, reason=reason)
        if isinstance(code, int):
            return ExitStatus(code=code, reason=reason)
    if phase in ("Failed", "Succeeded"):
        reason = str(status.get("reason") or "")
        message = str(status.get("message") or "")
        what = f"its pod {phase.lower()}" + (f" ({reason})" if reason else "")
        return ExitStatus(detail=f"{what}: {message}".rstrip(": "), reason=reason)
    return None


def pending_reason(pod: dict[str, Any]) -> tuple[str, str]:
    """(Kubernetes' reason, its message) for a pod that is not running yet."""
    waiting = (container_status(pod).get("state") or {}).get("waiting") or {}
    if waiting.get("reason"):
        return str(waiting["reason"]), str(waiting.get("message") or "")
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return str(condition.get("reason") or "Unschedulable"), str(
                condition.get("message") or ""
            )
    return "Pending", ""


__all__ = ["container_status", "exit_status", "init_record", "pending_reason"]
