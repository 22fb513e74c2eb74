"""How the kubernetes backend runs replicas: :class:`KubernetesConfig`, and the
environment variables it is read from."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reuse_runtime.backends.container import parse_labels
from reuse_runtime.errors import PolicyError

NAMESPACE_ENV = "REUSE_RUNTIME_K8S_NAMESPACE"
NAME_ENV = "REUSE_RUNTIME_K8S_NAME"
REGISTRY_ENV = "REUSE_RUNTIME_IMAGE_REGISTRY"
TOKEN_SECRET_ENV = "REUSE_RUNTIME_K8S_TOKEN_SECRET"
POD_LABELS_ENV = "REUSE_RUNTIME_K8S_POD_LABELS"
#: The controller's own pod (the downward API sets it in the controller's Deployment).
POD_NAME_ENV = "REUSE_RUNTIME_POD_NAME"

DEFAULT_NAME = "reuse-runtime"
#: Where the service account's files are, in a pod.
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class KubernetesConfig:
    """How the kubernetes backend runs replicas. ``from_env`` reads the variables."""

    #: The controller's name: its pods' label, its Service and its token Secret's prefix.
    name: str = DEFAULT_NAME
    #: None: the service account's namespace in the cluster, else the kubeconfig context's.
    namespace: str | None = None
    #: Where recipe images are pulled from (``REGISTRY/NAME:r-DIGEST``).
    image_registry: str = ""
    #: The Secret (key ``token``) holding the controller's token; None: ``NAME-token``.
    token_secret: str | None = None
    image_pull_policy: str = "IfNotPresent"
    #: Seconds a pod may stay Pending (unscheduled, pulling, backing off) before it is
    #: deleted and reported.
    start_deadline: float = 300.0
    #: Seconds a predecessor's pods wait to be claimed; also how long a replica dials
    #: a controller it lost.
    adopt_window: float = 300.0
    #: None: in the cluster when ``$KUBERNETES_SERVICE_HOST`` is set, else the kubeconfig.
    in_cluster: bool | None = None
    kubeconfig: str | None = None
    context: str | None = None
    #: The controller's own pod, for ownerReferences (in the cluster).
    pod_name: str | None = None
    #: In the cluster: where the service account's token, CA and namespace are mounted.
    service_account_dir: Path = SERVICE_ACCOUNT_DIR
    #: Extra labels on every pod (``$REUSE_RUNTIME_K8S_POD_LABELS``).
    labels: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not _DNS_LABEL.match(self.name) or len(self.name) > 40:
            raise PolicyError(
                f"controller name {self.name!r} must be a DNS label of at most 40 characters "
                f"(lowercase letters, digits, '-'): it prefixes pod names"
            )
        if self.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            raise PolicyError(
                f"image pull policy must be Always, IfNotPresent or Never, got "
                f"{self.image_pull_policy!r}"
            )
        if self.start_deadline <= 0 or self.adopt_window < 0:
            raise PolicyError("start_deadline must be positive and adopt_window not negative")

    @property
    def secret_name(self) -> str:
        return self.token_secret or f"{self.name}-token"

    @classmethod
    def from_env(cls, **overrides: Any) -> KubernetesConfig:
        """The variables' values, under the non-None ``overrides`` (a CLI's flags)."""
        values: dict[str, Any] = {
            "name": os.environ.get(NAME_ENV) or DEFAULT_NAME,
            "namespace": os.environ.get(NAMESPACE_ENV) or None,
            "image_registry": os.environ.get(REGISTRY_ENV, ""),
            "token_secret": os.environ.get(TOKEN_SECRET_ENV) or None,
            "pod_name": os.environ.get(POD_NAME_ENV) or None,
            "labels": tuple(
                sorted(parse_labels(os.environ.get(POD_LABELS_ENV, ""), POD_LABELS_ENV).items())
            ),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


__all__ = [
    "DEFAULT_NAME",
    "NAMESPACE_ENV",
    "NAME_ENV",
    "POD_LABELS_ENV",
    "POD_NAME_ENV",
    "REGISTRY_ENV",
    "SERVICE_ACCOUNT_DIR",
    "TOKEN_SECRET_ENV",
    "KubernetesConfig",
]
