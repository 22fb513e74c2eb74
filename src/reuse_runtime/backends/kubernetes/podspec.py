"""The Pod of one replica: :func:`pod_manifest`, its resources, names and labels.

Pure: no API call. The package's docstring says what the Pod holds and why.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from typing import Any

from reuse_runtime.backends.base import FORWARDED_SETTINGS, ReplicaLaunch, worker_arguments
from reuse_runtime.backends.kubernetes.config import KubernetesConfig
from reuse_runtime.images.containerfile import ENTRYPOINT
from reuse_runtime.images.recipe import (
    OWN_ENVIRONMENT_ENV,
    OWN_RECIPE_ENV,
    Env,
    parse_image_field,
)
from reuse_runtime.paths import CODE_DIR_ENV, STORE_SHARED_ENV
from reuse_runtime.resources import Resources
from reuse_runtime.security import TOKEN_FILE_ENV

#: What the pod's init reads: where it keeps its exit record, and where it writes
#: the termination message Kubernetes shows.
INIT_DIR_ENV = "REUSE_RUNTIME_INIT_DIR"
TERMINATION_LOG_ENV = "REUSE_RUNTIME_TERMINATION_LOG"
WORKER_PORT = 50051
WORKER_CONTAINER = "worker"
TOKEN_MOUNT = "/var/run/secrets/reuse-runtime"
TOKEN_KEY = "token"
RECORD_MOUNT = "/run/reuse-runtime"
TERMINATION_LOG = "/dev/termination-log"
#: Where a pod unpacks code bundles: an emptyDir of its own.
CODE_MOUNT = "/var/lib/reuse-runtime/code"

LABEL = "reuse-runtime.io"
CONTROLLER_LABEL = f"{LABEL}/controller"
ENVIRONMENT_LABEL = f"{LABEL}/environment"
ENV_KEY_LABEL = f"{LABEL}/environment-key"
REPLICA_LABEL = f"{LABEL}/replica"
INSTANCE_LABEL = f"{LABEL}/controller-instance"
REPLICA_ID_ANNOTATION = f"{LABEL}/replica-id"
ENV_KEY_ANNOTATION = f"{LABEL}/environment-key"
ENVIRONMENT_ANNOTATION = f"{LABEL}/environment"
MEMORY_LIMIT_ANNOTATION = f"{LABEL}/memory-limit"

_QUANTITY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")


def pod_name(controller: str, replica_id: str) -> str:
    """A DNS-1123 label for a replica's pod: the controller's name and the replica id."""
    raw = re.sub(r"[^a-z0-9-]+", "-", f"{controller}-{replica_id}".lower()).strip("-")
    if len(raw) > 63:
        digest = hashlib.sha256(replica_id.encode()).hexdigest()[:8]
        raw = f"{raw[:54].rstrip('-')}-{digest}"
    return raw


def label_value(text: str) -> str:
    """``text`` as a label value: at most 63 of ``[A-Za-z0-9_.-]``, alphanumeric at the ends."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)
    if len(value) > 63:
        value = value[:54] + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return value.strip("-_.")


def _cpu(cores: float) -> str:
    millis = max(1, round(cores * 1000))
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def _bytes(raw: Any, parsed: int) -> str:
    """A quantity as the user wrote it when Kubernetes reads it the same way, else bytes."""
    if isinstance(raw, str) and _QUANTITY.match(raw.strip()):
        return raw.strip()
    return str(parsed)


def _pair(value: Any) -> tuple[Any, Any]:
    return (value[0], value[1]) if isinstance(value, (tuple, list)) else (value, value)


def pod_resources(resources: Resources) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the container's ``resources``, extra volumes) for ``resources``."""
    limits = resources.limits()
    requests: dict[str, str] = {}
    caps: dict[str, str] = {}
    if limits.cpu_request:
        requests["cpu"] = _cpu(limits.cpu_request)
    if limits.cpu_limit:
        caps["cpu"] = _cpu(limits.cpu_limit)
    if limits.memory_request is not None and limits.memory_limit is not None:
        raw_request, raw_limit = _pair(resources.memory)
        requests["memory"] = _bytes(raw_request, limits.memory_request)
        caps["memory"] = _bytes(raw_limit, limits.memory_limit)
    if limits.gpu:
        caps["nvidia.com/gpu"] = str(limits.gpu)
    if limits.disk is not None:
        requests["ephemeral-storage"] = caps["ephemeral-storage"] = _bytes(
            resources.disk, limits.disk
        )
    volumes: list[dict[str, Any]] = []
    if limits.shm is not None:
        shm: dict[str, Any] = {"medium": "Memory"}
        if limits.shm != "auto":
            shm["sizeLimit"] = _bytes(resources.shm, limits.shm)
        elif limits.memory_limit is not None:
            shm["sizeLimit"] = caps["memory"]
        volumes.append({"name": "dshm", "emptyDir": shm})
    result: dict[str, Any] = {}
    if requests:
        result["requests"] = requests
    if caps:
        result["limits"] = caps
    return result, volumes


def _image_pythonpath(image_field: str) -> str:
    """The image's own ``PYTHONPATH`` (from ``with_env_vars``), which the pod's must keep."""
    parsed = parse_image_field(image_field)
    found = ""
    if not isinstance(parsed, str):
        for layer in parsed._layers:
            if isinstance(layer, Env):
                found = dict(layer.env_vars).get("PYTHONPATH", found)
    return found


def pod_manifest(
    launch: ReplicaLaunch,
    config: KubernetesConfig,
    *,
    namespace: str,
    image: str,
    owner: dict[str, Any] | None = None,
    instance: str = "",
    reconnect: float | None = None,
) -> dict[str, Any]:
    """The Pod of one replica (see the module's docstring). Pure: no API call."""
    spec = launch.environment
    resources = Resources.from_wire(spec.resources)
    container_resources, volumes = pod_resources(resources)
    grace = max(1, math.ceil(launch.grace_period))
    args = worker_arguments(launch, host="0.0.0.0", port=WORKER_PORT)
    args += ["--reconnect", f"{config.adopt_window if reconnect is None else reconnect:g}"]
    env: dict[str, str] = {}
    for name in FORWARDED_SETTINGS:
        if name in os.environ:
            env[name] = os.environ[name]
    env.setdefault("REUSE_RUNTIME_LOG_LEVEL", "warning")
    env["REUSE_RUNTIME_LOG_FORMAT"] = "json"
    env.update(dict(spec.env_vars))
    # Code baked into the image (with_source_folder) is under the working directory.
    own_path = env.get("PYTHONPATH") or _image_pythonpath(spec.image)
    env["PYTHONPATH"] = "." + (f":{own_path}" if own_path else "")
    env[TOKEN_FILE_ENV] = f"{TOKEN_MOUNT}/{TOKEN_KEY}"
    env[INIT_DIR_ENV] = RECORD_MOUNT
    env[TERMINATION_LOG_ENV] = TERMINATION_LOG
    env[STORE_SHARED_ENV] = "0"  # the pod's file store is its own
    if spec.image.lstrip().startswith("{"):  # a recipe: the pod's tasks name their pool by it
        env[OWN_ENVIRONMENT_ENV] = spec.name
        env[OWN_RECIPE_ENV] = spec.image
    mounts = [
        {"name": "token", "mountPath": TOKEN_MOUNT, "readOnly": True},
        {"name": "record", "mountPath": RECORD_MOUNT},
    ]
    if volumes:
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    if launch.fetch_code:
        # The project's code bundle is unpacked here, the pod's own (see worker/project.py).
        env[CODE_DIR_ENV] = CODE_MOUNT
        mounts.append({"name": "code", "mountPath": CODE_MOUNT})
        volumes.append({"name": "code", "emptyDir": {}})
    container: dict[str, Any] = {
        "name": WORKER_CONTAINER,
        "image": image,
        "imagePullPolicy": config.image_pull_policy,
        "command": list(ENTRYPOINT),
        "args": args,
        "ports": [{"name": "grpc", "containerPort": WORKER_PORT, "protocol": "TCP"}],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "volumeMounts": mounts,
        "readinessProbe": {
            "grpc": {"port": WORKER_PORT, "service": _worker_service()},
            "periodSeconds": 5,
            "failureThreshold": 1,
        },
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    if container_resources:
        container["resources"] = container_resources
    labels = {
        **dict(config.labels),
        "app.kubernetes.io/name": "reuse-runtime",
        "app.kubernetes.io/component": "replica",
        "app.kubernetes.io/managed-by": "reuse-runtime",
        CONTROLLER_LABEL: config.name,
        ENVIRONMENT_LABEL: label_value(spec.name),
        ENV_KEY_LABEL: label_value(spec.key()),
        REPLICA_LABEL: label_value(launch.replica_id),
    }
    if instance:
        labels[INSTANCE_LABEL] = instance
    metadata: dict[str, Any] = {
        "name": pod_name(config.name, launch.replica_id),
        "namespace": namespace,
        "labels": labels,
        "annotations": {
            REPLICA_ID_ANNOTATION: launch.replica_id,
            ENV_KEY_ANNOTATION: spec.key(),
            ENVIRONMENT_ANNOTATION: spec.name,
            MEMORY_LIMIT_ANNOTATION: resources.limits().memory_text,
        },
    }
    if owner is not None:
        metadata["ownerReferences"] = [owner]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "restartPolicy": "Never",
            # The worker drains within its grace period; the on-stop hook and the last
            # report get a little more before the kubelet's SIGKILL.
            "terminationGracePeriodSeconds": grace + 5,
            # Replicas never call the Kubernetes API.
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "containers": [container],
            "volumes": [
                {
                    "name": "token",
                    "secret": {
                        "secretName": config.secret_name,
                        "items": [{"key": TOKEN_KEY, "path": TOKEN_KEY}],
                        "defaultMode": 0o400,
                    },
                },
                {"name": "record", "emptyDir": {"sizeLimit": "16Mi"}},
                *volumes,
            ],
        },
    }


def _worker_service() -> str:
    from reuse_runtime.wire import services

    return str(services.WORKER_SERVICE)


__all__ = [
    "CONTROLLER_LABEL",
    "ENVIRONMENT_ANNOTATION",
    "ENVIRONMENT_LABEL",
    "ENV_KEY_ANNOTATION",
    "ENV_KEY_LABEL",
    "INIT_DIR_ENV",
    "INSTANCE_LABEL",
    "LABEL",
    "MEMORY_LIMIT_ANNOTATION",
    "RECORD_MOUNT",
    "REPLICA_ID_ANNOTATION",
    "REPLICA_LABEL",
    "TERMINATION_LOG",
    "TERMINATION_LOG_ENV",
    "TOKEN_KEY",
    "TOKEN_MOUNT",
    "WORKER_CONTAINER",
    "WORKER_PORT",
    "label_value",
    "pod_manifest",
    "pod_name",
    "pod_resources",
]
