"""Backends start and stop replicas: local subprocesses, containers, or pods.

:func:`open_backend` is the one place a backend is chosen, from
``init(backend=...)``, ``reuse-runtime controller --backend``, ``[controller]
backend`` in the config file, or ``$REUSE_RUNTIME_BACKEND`` (in that order of
precedence; the default is ``local``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from reuse_runtime.backends.base import Backend, ExitStatus, ReplicaHandle, ReplicaLaunch
from reuse_runtime.backends.local import LocalBackend
from reuse_runtime.errors import AuthConfigError, PolicyError
from reuse_runtime.security import Security, is_loopback

BACKEND_ENV = "REUSE_RUNTIME_BACKEND"
BACKENDS = ("local", "container")
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
    name: str, *, log_dir: Path | None = None, network: str | None = None
) -> OpenBackend:
    """Make and open the backend ``name`` (connecting to its engine, for containers)."""
    if name == "local":
        if network:
            raise PolicyError("a container network applies to the container backend only")
        return OpenBackend(LocalBackend(log_dir))
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
    if opened.backend.name == "local":
        return host, advertise
    if not security.authenticated:
        raise AuthConfigError(
            "the container backend needs auth, since replicas reach the controller over a "
            "network: set a shared token (--token or $REUSE_RUNTIME_TOKEN) or mTLS"
        )
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
