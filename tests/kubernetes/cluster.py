"""A stand-in cluster for tests: the API server stand-in, set up as `k8s manifests` says.

:func:`stand_in_cluster` starts :class:`~tests.kubernetes.apiserver.ApiServer`,
applies the controller's Namespace, ServiceAccount, Role, RoleBinding and token
Secret from :func:`reuse_runtime.manifests.controller_manifests` (so the backend
runs under exactly the Role it ships), and writes a kubeconfig whose user is
that service account.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reuse_runtime.manifests import Deployment, controller_manifests
from tests.kubernetes.apiserver import ADMIN, ApiServer, kubeconfig

NAMESPACE = "rr-test"
NAME = "reuse-runtime"


@dataclass
class StandInCluster:
    api: ApiServer
    namespace: str
    name: str
    #: The controller's service account token (RBAC applies) and the admin's.
    controller_token: str
    admin_token: str
    #: The shared token in the controller's Secret.
    token: str
    kubeconfig: Path
    admin_kubeconfig: Path

    @property
    def service_account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    def controller_calls(self) -> list[tuple[str, str, str]]:
        """(verb, resource[/subresource], namespace) of every request the controller made."""
        return [
            (r.verb, r.resource + (f"/{r.subresource}" if r.subresource else ""), r.namespace)
            for r in self.api.calls(self.service_account)
            if r.verb
        ]

    def pods(self) -> list[dict[str, object]]:
        return self.api.objects("pods", self.namespace)


@contextlib.contextmanager
def stand_in_cluster(
    directory: Path, *, namespace: str = NAMESPACE, name: str = NAME, token: str | None = None
) -> Iterator[StandInCluster]:
    token = token or secrets.token_urlsafe(24)
    deployment = Deployment(namespace=namespace, name=name, image="unused", token=token)
    with ApiServer() as api:
        controller_token, admin_token = secrets.token_hex(16), secrets.token_hex(16)
        api.add_user(controller_token, f"system:serviceaccount:{namespace}:{name}")
        api.add_user(admin_token, ADMIN)
        for doc in controller_manifests(deployment):
            # The controller runs here, not in a pod: no Deployment, Service or state volume.
            if doc["kind"] not in ("Deployment", "Service", "PersistentVolumeClaim"):
                api.apply(doc)
        config = directory / "kubeconfig"
        config.write_text(json.dumps(kubeconfig(api.url, controller_token, namespace)))
        admin = directory / "admin-kubeconfig"
        admin.write_text(json.dumps(kubeconfig(api.url, admin_token, namespace)))
        yield StandInCluster(
            api, namespace, name, controller_token, admin_token, token, config, admin
        )
