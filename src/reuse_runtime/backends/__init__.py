"""Backends start and stop replicas: local subprocesses, containers, or Kubernetes pods.

:func:`open_backend` is the one place a backend is chosen, from
``init(backend=...)``, ``reuse-runtime controller --backend``, ``[controller]
backend`` in the config file, or ``$REUSE_RUNTIME_BACKEND`` (in that order of
precedence; the default is ``local``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reuse_runtime.backends.base import Backend, ExitStatus, ReplicaHandle, ReplicaLaunch
from reuse_runtime.backends.local import LocalBackend
from reuse_runtime.errors import AuthConfigError, PolicyError
from reuse_runtime.security import Security, is_loopback

if TYPE_CHECKING:
    from reuse_runtime.backends.kubernetes import KubernetesConfig

BACKEND_ENV = "REUSE_RUNTIME_BACKEND"
BACKENDS = ("local", "container", "kubernetes")
_WILDCARDS = ("0.0.0.0", "::", "")


def backend_name(explicit: str | None = None) -> str:
    """The backend to use: ``explicit``, else ``$REUSE_RUNTIME_BACKEND``, else ``local``."""
    name = (explicit or os.environ.get(BACKEND_ENV) or "local").strip().lower()
    if name not in BACKENDS:
        raise PolicyError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    return name


@dataclass(frozen=True)
class OpenBackend:
    backend: Backend
    #: The address replicas dial to reach a controller on this machine; None: loopback.
    replica_host: str | None = None


async def open_backend(
    name: str,
    *,
    log_dir: Path | None = None,
    network: str | None = None,
    kubernetes: KubernetesConfig | None = None,
    security: Security | None = None,
) -> OpenBackend:
    """Make and open the backend ``name`` (connecting to its engine or API server)."""
    if network and name != "container":
        raise PolicyError("a container network applies to the container backend only")
    if name == "local":
        local = LocalBackend(log_dir)
        await local.open()
        return OpenBackend(local)
    if name == "kubernetes":
        from reuse_runtime.backends.kubernetes import KubernetesBackend

        pods = KubernetesBackend(kubernetes, security=security)
        await pods.open()
        return OpenBackend(pods)
    from reuse_runtime.backends.container import ContainerBackend, ContainerConfig

    backend = ContainerBackend(ContainerConfig.from_env(network=network), log_dir=log_dir)
    await backend.open()
    return OpenBackend(backend, backend.replica_host())


def controller_placement(
    opened: OpenBackend,
    host: str,
    advertise: str | None,
    security: Security,
    *,
    embedded: bool = False,
) -> tuple[str, str | None]:
    """(the host a controller binds, the address it gives replicas) for this backend.

    Replicas in containers on a bridge network cannot reach loopback: an
    embedded controller then listens on every interface (it always has a
    token) and hands out the bridge's gateway; a standalone one must be told to.
    """
    backend = opened.backend.name
    if backend == "local":
        return host, advertise
    if not security.authenticated:
        raise AuthConfigError(
            f"the {backend} backend needs auth, since replicas reach the controller over a "
            f"network: set a shared token (--token or $REUSE_RUNTIME_TOKEN) or mTLS"
        )
    if backend == "kubernetes":
        return _kubernetes_placement(host, advertise, embedded=embedded)
    if opened.replica_host is None or advertise:
        return host, advertise  # host networking (loopback works), or told explicitly
    if embedded and is_loopback(host):
        return "0.0.0.0", opened.replica_host
    if is_loopback(host):
        raise PolicyError(
            f"replicas in containers on a bridge network cannot reach a controller on {host}: "
            f"listen with --host 0.0.0.0 (replicas then dial the bridge gateway "
            f"{opened.replica_host}), or give --advertise-address, or use --network host"
        )
    return host, (opened.replica_host if host in _WILDCARDS else host)


def _kubernetes_placement(host: str, advertise: str | None, *, embedded: bool) -> tuple[str, str]:
    """Pods dial the controller through its Service: the advertised address."""
    if embedded:
        raise PolicyError(
            "the kubernetes backend needs a standalone controller that pods can reach: run "
            "`reuse-runtime controller --backend kubernetes` in the cluster (`reuse-runtime k8s "
            "manifests`), and point init(endpoint=...) at it"
        )
    if not advertise:
        raise PolicyError(
            "with the kubernetes backend, give --advertise-address: the address pods dial, "
            "the controller's Service (NAME.NAMESPACE.svc:PORT)"
        )
    if is_loopback(host) or is_loopback(advertise.rsplit(":", 1)[0].strip("[]")):
        raise PolicyError(
            f"pods cannot reach a controller on {host if is_loopback(host) else advertise}: "
            f"listen with --host 0.0.0.0 and advertise its Service (NAME.NAMESPACE.svc:PORT)"
        )
    return host, advertise


__all__ = [
    "BACKENDS",
    "BACKEND_ENV",
    "Backend",
    "ExitStatus",
    "LocalBackend",
    "OpenBackend",
    "ReplicaHandle",
    "ReplicaLaunch",
    "backend_name",
    "controller_placement",
    "open_backend",
]
