"""Kubernetes manifests: a standalone controller in a cluster, and workers that join it.

``reuse-runtime k8s manifests`` prints :func:`controller_manifests` as YAML:

* a **Namespace** and a **ServiceAccount** for the controller;
* a **Role** with exactly the API calls the kubernetes backend makes
  (:data:`reuse_runtime.backends.kubernetes.API_CALLS`: pods ``create``,
  ``delete``, ``get``, ``list``, ``watch``), and its **RoleBinding**;
* the **Secret** holding the token every client and replica presents;
* a **PersistentVolumeClaim** for the controller's state dir: its runs store
  (``runs.sqlite``), so a controller restarted, rescheduled or upgraded finishes the
  runs the last one left, and their records stay readable;
* the controller's **Deployment** (one replica, ``Recreate``: the store has one
  writer, and a controller restarted in place adopts its pods) and its **Service**,
  which replicas dial.

``reuse-runtime k8s workers ENV --image IMAGE`` prints :func:`worker_manifests`:
a Deployment of workers that join environment ``ENV`` of that controller
(``--controller``, ``--environment``), for a replica count that Kubernetes'
HorizontalPodAutoscaler or KEDA owns instead of the ReusePolicy.

Every function here is pure: dicts in the Kubernetes API's own shape.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reuse_runtime._version import __version__
from reuse_runtime.backends.kubernetes import (
    API_CALLS,
    CONTROLLER_LABEL,
    DEFAULT_NAME,
    ENVIRONMENT_LABEL,
    NAME_ENV,
    NAMESPACE_ENV,
    POD_NAME_ENV,
    TERMINATION_LOG,
    TERMINATION_LOG_ENV,
    TOKEN_KEY,
    TOKEN_MOUNT,
    WORKER_PORT,
    KubernetesConfig,
    label_value,
)
from reuse_runtime.errors import PolicyError
from reuse_runtime.images.containerfile import ENTRYPOINT
from reuse_runtime.security import TOKEN_FILE_ENV

CONTROLLER_PORT = 50050
RBAC_GROUP = "rbac.authorization.k8s.io"
#: The controller's state directory (its runs store, its result cache) in its pod.
STATE_MOUNT = "/var/lib/reuse-runtime"
#: Where in it the runs store lives (``--state-dir``).
STATE_DIR = f"{STATE_MOUNT}/controller"


@dataclass(frozen=True)
class Deployment:
    """Where and how the controller runs in the cluster."""

    namespace: str = DEFAULT_NAME
    #: The controller's name: its Deployment, Service, ServiceAccount, Role, and pods' label.
    name: str = DEFAULT_NAME
    #: The controller's image: reuse-runtime with the ``kubernetes`` extra (the Dockerfile).
    image: str = ""
    #: Where replicas' images are pulled from (the controller's ``--image-registry``).
    image_registry: str = ""
    port: int = CONTROLLER_PORT
    #: The shared token; empty: a random one.
    token: str = ""
    #: Include the Namespace itself.
    create_namespace: bool = True
    #: The size of the state dir's volume (the runs store keeps under 2 GiB by default).
    state_size: str = "4Gi"
    #: The state volume's StorageClass; "": the cluster's default.
    storage_class: str = ""

    def __post_init__(self) -> None:
        KubernetesConfig(name=self.name)  # the same rules for the name
        if not self.namespace or len(self.namespace) > 63:
            raise PolicyError(f"namespace {self.namespace!r} must be a DNS label")
        if not 0 < self.port < 65536:
            raise PolicyError(f"port must be in 1..65535, got {self.port}")

    @property
    def service_address(self) -> str:
        """What replicas and in-cluster clients dial: the Service's DNS name and port."""
        return f"{self.name}.{self.namespace}.svc:{self.port}"

    @property
    def secret_name(self) -> str:
        return KubernetesConfig(name=self.name).secret_name

    @property
    def state_claim(self) -> str:
        """The PersistentVolumeClaim of the controller's state dir."""
        return f"{self.name}-state"

    def controller_image(self) -> str:
        if self.image:
            return self.image
        return f"reuse-runtime:{__version__}"


def role_rules(calls: Iterable[tuple[str, str]] = API_CALLS) -> list[dict[str, Any]]:
    """RBAC rules granting exactly ``calls`` ((verb, resource) in the core group)."""
    verbs: dict[str, list[str]] = {}
    for verb, resource in calls:
        verbs.setdefault(resource, [])
        if verb not in verbs[resource]:
            verbs[resource].append(verb)
    return [
        {"apiGroups": [""], "resources": [resource], "verbs": sorted(found)}
        for resource, found in sorted(verbs.items())
    ]


def _labels(d: Deployment, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "reuse-runtime",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "reuse-runtime",
        CONTROLLER_LABEL: d.name,
    }


def _meta(d: Deployment, name: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": d.namespace, "labels": _labels(d, component)}


def _token_volume(d: Deployment) -> dict[str, Any]:
    return {
        "name": "token",
        "secret": {
            "secretName": d.secret_name,
            "items": [{"key": TOKEN_KEY, "path": TOKEN_KEY}],
            "defaultMode": 0o400,
        },
    }


def _grpc_probe(port: int | str, service: str, **extra: int) -> dict[str, Any]:
    return {"grpc": {"port": port, "service": service}, **extra}


def _state_claim(d: Deployment) -> dict[str, Any]:
    """The controller's state dir, kept across restarts (one pod writes it: ReadWriteOnce).

    Back it up with a VolumeSnapshot, or copy the store while the controller runs:
    ``kubectl exec deploy/NAME -- sqlite3 /var/lib/reuse-runtime/controller/runs.sqlite
    ".backup /tmp/runs.sqlite"`` then ``kubectl cp`` (SQLite's online backup reads a
    consistent copy while the controller writes).
    """
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": d.state_size}},
    }
    if d.storage_class:
        spec["storageClassName"] = d.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(d, d.state_claim, "controller"),
        "spec": spec,
    }


def controller_manifests(d: Deployment) -> list[dict[str, Any]]:
    """Everything a standalone controller needs in a cluster, in the order to apply it."""
    from reuse_runtime.wire import services

    token = d.token or secrets.token_urlsafe(32)
    labels = _labels(d, "controller")
    args = [
        "--backend", "kubernetes",
        "--host", "0.0.0.0",
        "--port", str(d.port),
        "--advertise-address", d.service_address,
        "--state-dir", STATE_DIR,
    ]  # fmt: skip
    if d.image_registry:
        args += ["--image-registry", d.image_registry]
    env = [
        {"name": TOKEN_FILE_ENV, "value": f"{TOKEN_MOUNT}/{TOKEN_KEY}"},
        {"name": NAME_ENV, "value": d.name},
        {"name": NAMESPACE_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": POD_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "REUSE_RUNTIME_HOME", "value": STATE_MOUNT},
        {"name": "REUSE_RUNTIME_LOG_FORMAT", "value": "json"},
    ]
    controller_service = str(services.CONTROLLER_SERVICE)
    docs: list[dict[str, Any]] = []
    if d.create_namespace:
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": d.namespace,
                    "labels": {"app.kubernetes.io/name": "reuse-runtime"},
                },
            }
        )
    docs += [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(d, d.name, "controller")},
        {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "Role",
            "metadata": _meta(d, d.name, "controller"),
            "rules": role_rules(),
        },
        {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "RoleBinding",
            "metadata": _meta(d, d.name, "controller"),
            "subjects": [{"kind": "ServiceAccount", "name": d.name, "namespace": d.namespace}],
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": d.name},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta(d, d.secret_name, "controller"),
            "type": "Opaque",
            "stringData": {TOKEN_KEY: token},
        },
        _state_claim(d),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(d, d.name, "controller"),
            "spec": {
                "replicas": 1,
                # Never two controllers of one name at once: they would share the pods, and
                # the runs store has one writer (a second one is refused, by a lock).
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": d.name,
                        # It drains its replicas on SIGTERM before it goes.
                        "terminationGracePeriodSeconds": 60,
                        "containers": [
                            {
                                "name": "controller",
                                "image": d.controller_image(),
                                "command": ["reuse-runtime", "controller"],
                                "args": args,
                                "env": env,
                                "ports": [
                                    {"name": "grpc", "containerPort": d.port, "protocol": "TCP"}
                                ],
                                "readinessProbe": _grpc_probe(
                                    d.port, controller_service, periodSeconds=5
                                ),
                                "livenessProbe": _grpc_probe(
                                    d.port,
                                    controller_service,
                                    periodSeconds=10,
                                    failureThreshold=6,
                                ),
                                "resources": {
                                    "requests": {"cpu": "250m", "memory": "256Mi"},
                                    "limits": {"memory": "2Gi"},
                                },
                                "volumeMounts": [
                                    {"name": "token", "mountPath": TOKEN_MOUNT, "readOnly": True},
                                    {"name": "state", "mountPath": STATE_MOUNT},
                                ],
                                "securityContext": {"allowPrivilegeEscalation": False},
                            }
                        ],
                        "volumes": [
                            _token_volume(d),
                            {
                                "name": "state",
                                "persistentVolumeClaim": {"claimName": d.state_claim},
                            },
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(d, d.name, "controller"),
            "spec": {
                "selector": labels,
                "ports": [
                    {
                        "name": "grpc",
                        "port": d.port,
                        "targetPort": "grpc",
                        "protocol": "TCP",
                        "appProtocol": "grpc",
                    }
                ],
            },
        },
    ]
    return docs


@dataclass(frozen=True)
class Workers:
    """A Deployment of workers that join one environment of a controller."""

    environment: str
    image: str
    replicas: int = 1
    concurrency: int = 1
    cpu: str = ""
    memory: str = ""
    grace_period: float = 30.0
    #: Seconds a worker keeps dialling a controller it lost (a restart), warm.
    reconnect: float = 300.0

    def __post_init__(self) -> None:
        if not self.environment:
            raise PolicyError("give the environment the workers join (its name or key)")
        if not self.image:
            raise PolicyError(
                "give the workers' image (--image): one with reuse-runtime and your code"
            )
        if self.replicas < 0 or self.concurrency < 1:
            raise PolicyError("replicas must be >= 0 and concurrency >= 1")


def worker_manifests(d: Deployment, w: Workers) -> list[dict[str, Any]]:
    """A Deployment of workers joining environment ``w.environment`` (no HPA: add your own)."""
    from reuse_runtime.wire import services

    labels = {**_labels(d, "worker"), ENVIRONMENT_LABEL: label_value(w.environment)}
    name = f"{d.name}-workers-{label_value(w.environment).lower().replace('_', '-')}"[:63]
    args = [
        "--host", "0.0.0.0",
        "--port", str(WORKER_PORT),
        "--controller", d.service_address,
        "--environment", w.environment,
        "--replica-id", "$(POD_NAME)",
        "--concurrency", str(w.concurrency),
        "--grace-period", f"{w.grace_period:g}",
        "--reconnect", f"{w.reconnect:g}",
    ]  # fmt: skip
    container: dict[str, Any] = {
        "name": "worker",
        "image": w.image,
        "command": list(ENTRYPOINT),
        "args": args,
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": TOKEN_FILE_ENV, "value": f"{TOKEN_MOUNT}/{TOKEN_KEY}"},
            {"name": TERMINATION_LOG_ENV, "value": TERMINATION_LOG},
            {"name": "PYTHONPATH", "value": "."},
            {"name": "REUSE_RUNTIME_LOG_FORMAT", "value": "json"},
        ],
        "ports": [{"name": "grpc", "containerPort": WORKER_PORT, "protocol": "TCP"}],
        "readinessProbe": _grpc_probe(WORKER_PORT, str(services.WORKER_SERVICE), periodSeconds=5),
        "volumeMounts": [{"name": "token", "mountPath": TOKEN_MOUNT, "readOnly": True}],
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    requests = {k: v for k, v in (("cpu", w.cpu), ("memory", w.memory)) if v}
    if requests:
        # An HPA on CPU needs a request; the memory request is its limit too.
        container["resources"] = {"requests": requests}
        if w.memory:
            container["resources"]["limits"] = {"memory": w.memory}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(d, name, "worker") | {"labels": labels},
            "spec": {
                "replicas": w.replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "enableServiceLinks": False,
                        "terminationGracePeriodSeconds": int(w.grace_period) + 5,
                        "containers": [container],
                        "volumes": [_token_volume(d)],
                    },
                },
            },
        }
    ]


def to_yaml(docs: Iterable[dict[str, Any]], header: str = "") -> str:
    """Documents as one YAML stream (``kubectl apply -f -`` reads it)."""
    try:
        import yaml
    except ImportError:
        raise PolicyError(
            "printing manifests needs PyYAML: pip install 'reuse-runtime[kubernetes]'"
        ) from None

    class _Plain(yaml.SafeDumper):
        """No anchors and aliases: a shared dict (a selector's labels) is written out twice."""

        def ignore_aliases(self, data: Any) -> bool:
            return True

    comment = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    body = "---\n".join(yaml.dump(doc, Dumper=_Plain, sort_keys=False) for doc in docs)
    return comment + "---\n" + body


__all__ = [
    "CONTROLLER_PORT",
    "Deployment",
    "Workers",
    "controller_manifests",
    "role_rules",
    "to_yaml",
    "worker_manifests",
]
