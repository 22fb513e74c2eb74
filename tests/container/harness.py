"""A real controller whose replicas are containers, and ways to look at them through the engine."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from reuse_runtime.backends import controller_placement, open_backend
from reuse_runtime.backends.container import ENVIRONMENT_LABEL, ContainerBackend
from reuse_runtime.client import ControllerClient
from reuse_runtime.controller.server import ControllerConfig, ControllerServer
from reuse_runtime.security import Security


@dataclass
class ContainerController:
    server: ControllerServer
    client: ControllerClient
    backend: ContainerBackend
    security: Security

    def containers(self, env: str, *, all: bool = False) -> list[Any]:
        """This controller's containers of an environment, as the engine lists them."""
        from reuse_runtime.backends.container import CONTROLLER_LABEL

        return list(
            self.backend.client.containers.list(
                all=all,
                filters={
                    "label": [
                        f"{CONTROLLER_LABEL}={self.backend.controller_id}",
                        f"{ENVIRONMENT_LABEL}={env}",
                    ]
                },
            )
        )

    async def count(self, env: str) -> int:
        return len(await asyncio.to_thread(self.containers, env))


@contextlib.asynccontextmanager
async def container_controller(
    network: str | None = None, host: str = "127.0.0.1", **config: Any
) -> AsyncIterator[ContainerController]:
    """A controller on this machine whose replicas run as containers (network: bridge)."""
    opened = await open_backend("container", network=network)
    assert isinstance(opened.backend, ContainerBackend)
    security = Security(token=secrets.token_urlsafe(16))
    bind, advertise = controller_placement(opened, host, None, security, embedded=True)
    server = ControllerServer(
        ControllerConfig(host=bind, advertise_address=advertise, security=security, **config),
        opened.backend,
    )
    await server.start()
    client = ControllerClient(server.local_address, security)
    try:
        await client.wait_ready()
        yield ContainerController(server, client, opened.backend, security)
    finally:
        await client.close()
        await server.close()
