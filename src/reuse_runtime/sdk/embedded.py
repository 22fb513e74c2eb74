"""The embedded controller: the one a driver starts in its own process when no endpoint is set.

:func:`start_controller` runs it on the runtime's loop, with the backend the
config names (local subprocesses by default), and always with a token: loopback
is no boundary on a shared machine. Its address and token are written to
``controller.json`` in the state directory (mode 0600), where
``reuse-runtime status`` and :func:`embedded_controller` find them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reuse_runtime import logs
from reuse_runtime.paths import private_dir, state_dir, write_private
from reuse_runtime.sdk.config import RuntimeConfig
from reuse_runtime.security import Security

if TYPE_CHECKING:
    from reuse_runtime.controller.server import ControllerServer


async def start_controller(
    config: RuntimeConfig, security: Security, directory: Path
) -> tuple[ControllerServer, Security]:
    """Start the embedded controller; returns it and the security its clients use.

    ``directory`` is the state directory: the replicas' logs go under it, and
    ``controller.json``. The backends and the controller are imported here, by a
    driver that starts one, not by every ``import reuse_runtime``.
    """
    from reuse_runtime.backends import backend_name, controller_placement, open_backend
    from reuse_runtime.controller.server import ControllerConfig, ControllerServer

    logs.configure(sys.stderr, level=os.environ.get(logs.LEVEL_ENV, "warning"))
    if not security.authenticated:
        # Loopback is no boundary on a shared machine: the embedded controller and
        # its replicas always require a token, made here when none is configured.
        security = dataclasses.replace(security, token=secrets.token_urlsafe(32))
    log_dir = private_dir(directory / "replicas")
    options: dict[str, Any] = {}
    if config.max_backlog is not None:
        options["max_backlog"] = config.max_backlog
    if config.replica_loss_budget is not None:
        options["replica_loss_budget"] = config.replica_loss_budget
    if config.metrics_port is not None:
        options["metrics_port"] = config.metrics_port
    opened = await open_backend(
        backend_name(config.backend), log_dir=log_dir, network=config.container_network
    )
    server: ControllerServer | None = None
    try:
        host, advertise = controller_placement(opened, "127.0.0.1", None, security, embedded=True)
        server = ControllerServer(
            ControllerConfig(
                host=host,
                advertise_address=advertise,
                security=security,
                log_dir=log_dir,
                **options,
            ),
            opened.backend,
        )
        await server.start()
    except BaseException:
        await opened.backend.close()
        if server is not None:
            with contextlib.suppress(Exception):
                await server.close()  # what it started before it failed (a metrics port)
        raise
    _write_embedded_address(directory, server.local_address, security.token)
    return server, security


async def stop_controller(server: ControllerServer, directory: Path) -> None:
    """Stop the embedded controller (and its replicas); forget its address."""
    await server.close()
    _remove_embedded_address(directory, server.local_address)


def _write_embedded_address(directory: Path, address: str, token: str | None) -> None:
    info = {"address": address, "pid": os.getpid(), "started": time.time(), "token": token}
    write_private(directory / "controller.json", json.dumps(info))


def _remove_embedded_address(directory: Path, address: str) -> None:
    path = directory / "controller.json"
    try:
        if json.loads(path.read_text()).get("address") == address:
            path.unlink()
    except (OSError, ValueError):
        pass


@dataclass(frozen=True)
class EmbeddedController:
    """Where this user's most recent embedded controller listens, and its token."""

    address: str
    token: str | None

    def __repr__(self) -> str:  # never show the token
        return f"EmbeddedController(address={self.address!r})"


def embedded_controller() -> EmbeddedController | None:
    """The most recent live embedded controller of this user, if any.

    Read from ``controller.json`` in the state directory (mode 0600, so other
    users cannot read its token).
    """
    try:
        info = json.loads((state_dir() / "controller.json").read_text())
        os.kill(int(info["pid"]), 0)
        token = info.get("token")
        return EmbeddedController(str(info["address"]), str(token) if token else None)
    except (OSError, ValueError, KeyError, TypeError):
        return None
