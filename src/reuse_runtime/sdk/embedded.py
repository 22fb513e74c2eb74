"""The embedded controller: the one a driver starts in its own process when no endpoint is set.

:func:`start_controller` runs it on the runtime's loop, with the backend the
config names (local subprocesses by default), and always with a token: loopback
is no boundary on a shared machine. Its address and token are written to
``controller.json`` in the state directory (mode 0600), where
``reuse-runtime status`` and :func:`embedded_controller` find them. Each run
started on it is noted there too (:func:`note_embedded_run`), and when it stops
the record says so: ``status`` can then say which run's controller it was, that
it ended with its process, and where that run's record is (:func:`embedded_record`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reuse_runtime import logs
from reuse_runtime.envvars import env_port
from reuse_runtime.errors import ConfigError
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
    from reuse_runtime.store.settings import recording_wanted

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
    options.update(_ui_options())
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
                # The user's scripts share one runs store, so past local runs can be read.
                state_dir=directory,
                record_runs=recording_wanted(),
                shared_store=True,
                **options,
            ),
            opened.backend,
        )
        await server.start()
        if server.store_notice:
            print(f"reuse-runtime: {server.store_notice}", file=sys.stderr, flush=True)
    except BaseException:
        await opened.backend.close()
        if server is not None:
            with contextlib.suppress(Exception):
                await server.close()  # what it started before it failed (a metrics port)
        raise
    _write_embedded_address(directory, server.local_address, security.token)
    return server, security


#: ``0``/``off`` turns the embedded controller's web UI off; else it serves on a free
#: loopback port (``$REUSE_RUNTIME_UI_PORT`` chooses one) while the process runs.
UI_ENV = "REUSE_RUNTIME_UI"
UI_PORT_ENV = "REUSE_RUNTIME_UI_PORT"


def _ui_options() -> dict[str, Any]:
    """The embedded controller's web UI: on, on a free loopback port, unless told."""
    if os.environ.get(UI_ENV, "").strip().lower() in ("0", "off", "false", "no"):
        return {"ui_port": None}
    port = env_port(UI_PORT_ENV, 0, error=ConfigError)
    # Loopback, whatever the gRPC server binds (the container backend's replicas dial it).
    return {"ui_port": port, "ui_port_fallback": True, "ui_host": "127.0.0.1"}


async def stop_controller(server: ControllerServer, directory: Path) -> None:
    """Stop the embedded controller (and its replicas); its record says it ended.

    The record says so first: ``status --watch`` then names the run as soon as
    the controller stops answering.
    """
    _mark_ended(directory, server.local_address)
    await server.close()


# One writer of controller.json at a time in this process: runs start from any thread.
_record_lock = threading.Lock()


def _write_embedded_address(directory: Path, address: str, token: str | None) -> None:
    info = {"address": address, "pid": os.getpid(), "started": time.time(), "token": token}
    with _record_lock:
        write_private(directory / "controller.json", json.dumps(info))


def _update_record(directory: Path, address: str, **changes: Any) -> None:
    """Change this controller's record, if ``controller.json`` is still its."""
    path = directory / "controller.json"
    with _record_lock:
        try:
            info = json.loads(path.read_text())
            if info.get("address") != address or info.get("pid") != os.getpid():
                return  # a later embedded controller's (another process's) now
            info.update(changes)
            write_private(path, json.dumps(info))
        except (OSError, ValueError, AttributeError):
            pass


def note_embedded_run(directory: Path, address: str, run: str, record: Path) -> None:
    """Record that ``run`` started on the embedded controller at ``address``, and its record.

    ``reuse-runtime status`` names it after the controller has ended.
    """
    _update_record(directory, address, run=run, record=str(record))


def _mark_ended(directory: Path, address: str) -> None:
    _update_record(directory, address, ended=time.time(), token=None)


@dataclass(frozen=True)
class EmbeddedController:
    """Where this user's most recent embedded controller listens, and its token."""

    address: str
    token: str | None

    def __repr__(self) -> str:  # never show the token
        return f"EmbeddedController(address={self.address!r})"


@dataclass(frozen=True)
class EmbeddedRecord:
    """This user's most recent embedded controller, running or ended (``controller.json``).

    ``run`` is the last run started on it and ``record`` where that run's log is;
    ``ended`` is when it stopped (None while it runs, or when its process died
    without saying); ``alive`` is whether its process still runs.
    """

    address: str
    pid: int
    started: float
    run: str | None
    record: str | None
    ended: float | None
    alive: bool

    @property
    def serving(self) -> bool:
        return self.alive and self.ended is None


def embedded_record() -> EmbeddedRecord | None:
    """The record of this user's most recent embedded controller, if there is one."""
    found = _read_record()
    return found[0] if found is not None else None


def embedded_controller() -> EmbeddedController | None:
    """The most recent live embedded controller of this user, if any.

    Read from ``controller.json`` in the state directory (mode 0600, so other
    users cannot read its token).
    """
    found = _read_record()
    if found is None or not found[0].serving:
        return None
    record, token = found
    return EmbeddedController(record.address, token)


def _read_record() -> tuple[EmbeddedRecord, str | None] | None:
    try:
        info = json.loads((state_dir() / "controller.json").read_text())
        pid = int(info["pid"])
        run, record, ended, token = (info.get(k) for k in ("run", "record", "ended", "token"))
        return EmbeddedRecord(
            address=str(info["address"]),
            pid=pid,
            started=float(info.get("started") or 0.0),
            run=str(run) if run else None,
            record=str(record) if record else None,
            ended=float(ended) if ended is not None else None,
            alive=_alive(pid),
        ), (str(token) if token else None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:  # gone (or, with EPERM, another user's process has its pid now)
        return False
    return True
