"""A kubelet's steps, one at a time, for tests that run no pods (test code, not product).

The API server stand-in (:mod:`tests.kubernetes.apiserver`) leaves a pod as it
was created; what a kubelet would report about it is patched in with these.
The kubelet that runs pods for real is :mod:`tests.kubernetes.kubelet`.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

from tests.kubernetes.apiserver import ApiError, ApiServer, now


def finish_deletions(api: ApiServer) -> threading.Thread:
    """A kubelet's last step alone, for tests that run no pods: a pod marked for deletion
    ends (exit 0) and goes at once. Ends with the server."""

    def finish(kind: str, obj: dict[str, Any]) -> None:
        metadata = obj.get("metadata", {})
        if kind == "MODIFIED" and obj.get("kind") == "Pod" and metadata.get("deletionTimestamp"):
            with contextlib.suppress(ApiError):
                api.patch_status(metadata["namespace"], metadata["name"], {"phase": "Succeeded"})
            api.remove_pod(metadata["namespace"], metadata["name"])

    return _follow(api, "finish-deletions", finish)


def run_pod(api: ApiServer, namespace: str, name: str, ip: str = "10.0.0.5") -> None:
    """What a kubelet does for a pod it starts: bind, then report it running."""
    api.patch_spec(namespace, name, {"nodeName": "node-1"})
    api.patch_status(
        namespace,
        name,
        {
            "phase": "Running",
            "podIP": ip,
            "containerStatuses": [
                {
                    "name": "worker",
                    "ready": True,
                    "restartCount": 0,
                    "image": "busybox:1",
                    "imageID": "",
                    "state": {"running": {"startedAt": now()}},
                }
            ],
        },
    )


def end_pod(
    api: ApiServer, namespace: str, name: str, phase: str = "Failed", **terminated: Any
) -> None:
    status: dict[str, Any] = {"phase": phase}
    if terminated:
        status["containerStatuses"] = [
            {
                "name": "worker",
                "ready": False,
                "restartCount": 0,
                "image": "busybox:1",
                "imageID": "",
                "state": {"terminated": terminated},
            }
        ]
    api.patch_status(namespace, name, status)


def fail_image_pulls(api: ApiServer) -> threading.Thread:
    """A kubelet that cannot pull any image, for tests that run no pods: every pod is
    bound, then waits in ``ImagePullBackOff``. Ends with the server."""

    def fail(kind: str, obj: dict[str, Any]) -> None:
        if kind != "ADDED" or obj.get("kind") != "Pod":
            return
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        image = obj["spec"]["containers"][0]["image"]
        waiting = {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
        with contextlib.suppress(ApiError):
            api.patch_spec(namespace, name, {"nodeName": "node-1"})
            api.patch_status(namespace, name, {"containerStatuses": [
                {"name": "worker", "ready": False, "restartCount": 0, "image": image,
                 "imageID": "", "state": {"waiting": waiting}},
            ]})  # fmt: skip

    return _follow(api, "fail-image-pulls", fail)


def _follow(
    api: ApiServer, name: str, handle: Callable[[str, dict[str, Any]], None]
) -> threading.Thread:
    """``handle(kind, object)`` for every event of the API server, in a thread of its own
    that ends with the server."""
    feed = api.subscribe()

    def follow() -> None:
        while not api.closing:
            try:
                kind, obj = feed.get(timeout=0.5)
            except queue.Empty:
                continue
            handle(kind, obj)

    thread = threading.Thread(target=follow, name=name, daemon=True)
    thread.start()
    return thread
