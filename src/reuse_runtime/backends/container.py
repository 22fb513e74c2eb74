"""`ContainerBackend`: replicas as containers, through the Docker Engine API.

It drives Docker, or Podman's Docker-compatible service, with the ``docker``
client (found by :func:`reuse_runtime.engine.connect`). Each replica is one
container of its environment's image (built from its ``Image`` recipe by
:class:`~reuse_runtime.images.builder.ImageBuilder`, once per recipe), with:

* **the entrypoint** ``reuse-runtime-init reuse-runtime worker --controller
  ADDR ...``; the token and TLS paths go in its environment, never its
  command line;
* **your code**: with an engine on this machine, the caller's working
  directory and the directories of its ``sys.path`` that hold your own modules
  (not Python's, not site-packages) are mounted read-only at the same paths,
  with the same ``PYTHONPATH``, so a task imports what the caller imports; a
  ``__main__`` script travels with its tasks as it does locally. The store
  directory (``$REUSE_RUNTIME_STORE``, default ``STATE_DIR/store``) is mounted
  read-write at the same path, so file paths mean the same inside and out.
  With a **remote engine** (``DOCKER_HOST`` naming another host, or
  ``$REUSE_RUNTIME_CONTAINER_REMOTE=1``) nothing of this machine is mounted:
  each replica fetches the project's code bundle from the controller and
  unpacks it in the container (``/tmp/reuse-runtime-code``), and the store
  and record directories are the container's own.
* **limits** from ``Resources`` (CPU, memory, ``/dev/shm``), ulimits this host
  can grant, ``env_vars``, and labels naming the controller, environment and
  replica. ``auto_remove`` makes the engine delete it once it exits.
* **a record directory** (``REPLICA_DIR/<replica>``) mounted at
  ``/run/reuse-runtime``, where the init copies the worker's stderr and writes
  how it ended, out-of-memory kills included (which Podman 4.3 misreports).

Exits are followed on one event stream per backend, not a thread per replica.
Network: ``bridge`` (the default; replicas dial the controller at the bridge's
gateway, so the controller listens beyond loopback, always with a token),
``host`` (everything stays on loopback), or the name of another network.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import functools
import hashlib
import json
import math
import os
import secrets
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import psutil
import structlog

from reuse_runtime import engine
from reuse_runtime.aio import in_executor, stop_within, wait_within
from reuse_runtime.backends.base import (
    FORWARDED_SETTINGS,
    ExitStatus,
    ReplicaHandle,
    ReplicaLaunch,
    follow_in_thread,
    own_handle,
    worker_arguments,
)
from reuse_runtime.backends.files import REMOTE_ENV, code_paths, remote_engine
from reuse_runtime.errors import PolicyError
from reuse_runtime.images.builder import ImageBuilder
from reuse_runtime.images.containerfile import ENTRYPOINT
from reuse_runtime.images.recipe import parse_image_field
from reuse_runtime.paths import CODE_DIR_ENV, STORE_ENV, STORE_SHARED_ENV, state_dir, store_dir
from reuse_runtime.resources import Resources
from reuse_runtime.security import TLS_CA_ENV, TLS_CERT_ENV, TLS_KEY_ENV

if TYPE_CHECKING:
    import docker

log = structlog.get_logger("reuse_runtime.backends")

T = TypeVar("T")

NETWORK_ENV = "REUSE_RUNTIME_CONTAINER_NETWORK"
LABELS_ENV = "REUSE_RUNTIME_CONTAINER_LABELS"
#: Where a replica of a remote engine unpacks code bundles, inside its container.
CONTAINER_CODE_DIR = "/tmp/reuse-runtime-code"
INIT_DIR_ENV = "REUSE_RUNTIME_INIT_DIR"
#: Where a replica's record directory is mounted inside its container.
RECORD_MOUNT = "/run/reuse-runtime"

# Labels on every container (and image) of ours.
LABEL = "io.reuse-runtime"
OWNER_LABEL = f"{LABEL}.owner"
CONTROLLER_LABEL = f"{LABEL}.controller"
CONTROLLER_PID_LABEL = f"{LABEL}.controller-pid"
CONTROLLER_STARTED_LABEL = f"{LABEL}.controller-started"
ENVIRONMENT_LABEL = f"{LABEL}.environment"
ENV_KEY_LABEL = f"{LABEL}.environment-key"
REPLICA_LABEL = f"{LABEL}.replica"


def parse_labels(text: str, source: str = LABELS_ENV) -> dict[str, str]:
    """``"k=v,k2=v2"`` (``$REUSE_RUNTIME_CONTAINER_LABELS``, or ``source``) as a dict."""
    labels = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise PolicyError(f"{source} must look like key=value,key2=value2; got {item!r}")
        labels[key.strip()] = value.strip()
    return labels


@dataclass(frozen=True)
class ContainerConfig:
    """How the container backend runs replicas. ``from_env`` reads the variables."""

    #: "bridge", "host", or the name of a network.
    network: str = "bridge"
    #: The engine's address (DOCKER_HOST form); None finds it the usual way.
    engine_host: str | None = None
    #: Extra labels on every container and image (``$REUSE_RUNTIME_CONTAINER_LABELS``).
    labels: tuple[tuple[str, str], ...] = ()
    #: Replica record directories and the build cache live here.
    work_dir: Path | None = None
    #: The engine runs on another host: it cannot see this machine's files, so nothing
    #: is mounted, and replicas fetch the code bundle from the controller.
    remote: bool = False

    @classmethod
    def from_env(cls, network: str | None = None, work_dir: Path | None = None) -> ContainerConfig:
        labels = parse_labels(os.environ.get(LABELS_ENV, ""))
        return cls(
            network=network or os.environ.get(NETWORK_ENV) or "bridge",
            engine_host=None,
            labels=tuple(sorted(labels.items())),
            work_dir=work_dir,
            remote=remote_engine(
                os.environ.get(engine.DOCKER_HOST_ENV, ""), os.environ.get(REMOTE_ENV, "")
            ),
        )


@dataclass(eq=False)
class ContainerReplica:
    """One replica's container, and how it ended."""

    replica_id: str
    container_id: str
    name: str
    record_dir: Path
    memory_limit: str
    exited: asyncio.Future[int | None]
    killed: bool = False
    engine_oom: bool = False
    _tail: deque[str] = field(default_factory=lambda: deque(maxlen=40))

    def describe(self) -> str:
        return f"container {self.container_id[:12]} ({self.name})"

    def stderr_tail(self) -> str:
        try:
            with (self.record_dir / "stderr.log").open(errors="replace") as log_file:
                lines = deque(log_file, maxlen=40)
        except OSError:
            return ""
        return "".join(lines).strip()


class ContainerBackend:
    """Start replicas as containers. ``open()`` connects (``start`` does it on first use)."""

    name = "container"

    def __init__(
        self,
        config: ContainerConfig | None = None,
        *,
        log_dir: Path | None = None,
        client: docker.DockerClient | None = None,
    ) -> None:
        self.config = config or ContainerConfig.from_env()
        self._work_dir = self.config.work_dir or state_dir()
        self._replica_dir = log_dir or self._work_dir / "replicas"
        self._client = client
        self.controller_id = secrets.token_hex(8)
        self._owner = _owner_id(self._work_dir)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=32, thread_name_prefix="engine"
        )
        self._builder: ImageBuilder | None = None
        self._replicas: dict[str, ContainerReplica] = {}
        self._by_container: dict[str, ContainerReplica] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open_lock = asyncio.Lock()
        self._opened = False
        self._closed = False
        self._events: Any = None
        self._events_thread: threading.Thread | None = None
        self._warned: set[str] = set()
        self._gateway: str | None = None
        self._user: str | None = None

    # -------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        """Connect to the engine, follow its events, and remove a crashed predecessor's
        containers. Idempotent; raises EngineUnavailableError with how to start one."""
        async with self._open_lock:
            if self._opened:
                return
            self._loop = asyncio.get_running_loop()
            if self._client is None:
                self._client = await self._call(engine.connect, self.config.engine_host)
            self._events_thread = await follow_in_thread(
                self._follow_events, "engine-events", self._executor
            )
            self._gateway, self._user = await self._call(self._inspect_engine)
            removed = await self._call(self._remove_orphans)
            if removed:
                log.warning("removed containers of a controller that is gone", count=len(removed))
            self._builder = ImageBuilder(
                self.client, cache_dir=self._work_dir / "build", labels=dict(self.config.labels)
            )
            self._opened = True
            log.info(
                "container backend ready",
                engine=await self._call(engine.engine_name, self.client),
                network=self.config.network,
                gateway=self._gateway,
            )

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            raise RuntimeError("the container backend is not open")
        return self._client

    @property
    def builder(self) -> ImageBuilder:
        if self._builder is None:
            raise RuntimeError("the container backend is not open")
        return self._builder

    @property
    def shares_files(self) -> bool:
        """Whether replicas see this machine's files: not with a remote engine."""
        return not self.config.remote

    def replica_host(self) -> str | None:
        """The address replicas dial for a controller on this machine (None: loopback)."""
        if self.config.network == "host":
            return None
        return self._gateway or "host.containers.internal"

    async def close(self) -> None:
        """Stop every replica this backend started, then stop following events."""
        if self._closed:
            return
        replicas = list(self._replicas.values())
        await asyncio.gather(*(self.stop(r, 5.0) for r in replicas), return_exceptions=True)
        self._closed = True
        if self._events is not None:
            with contextlib.suppress(Exception):
                self._events.close()
        if self._events_thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._events_thread.join, 5.0)
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -------------------------------------------------------------- the Backend protocol

    async def start(self, launch: ReplicaLaunch) -> ContainerReplica:
        await self.open()
        spec = launch.environment
        image = parse_image_field(spec.image)
        code = None
        if spec.code_bundle and launch.read_code is not None:
            code = (spec.code_bundle, functools.partial(launch.read_code, spec.code_bundle))
        built = await self._call(self.builder.ensure, image, self._progress(spec.name), code)
        resources = Resources.from_wire(spec.resources)
        record_dir = self._replica_dir / launch.replica_id
        options = self._create_options(launch, resources, record_dir)
        options["host_config"] = self.client.api.create_host_config(**options["host_config"])
        created = await self._call(
            functools.partial(self.client.api.create_container, built.tag, **options)
        )
        container_id = str(created["Id"])
        loop = asyncio.get_running_loop()
        replica = ContainerReplica(
            launch.replica_id,
            container_id,
            str(options["name"]),
            record_dir,
            resources.limits().memory_text,
            loop.create_future(),
        )
        self._replicas[launch.replica_id] = replica
        self._by_container[replica.container_id] = replica
        try:
            await self._call(self.client.api.start, container_id)
        except Exception:
            self._forget(replica)
            with contextlib.suppress(Exception):
                await self._call(self.client.api.remove_container, container_id, force=True)
            raise
        return replica

    async def stop(self, handle: ReplicaHandle, grace: float) -> None:
        """``stop`` with the grace period: SIGTERM (the worker drains), SIGKILL past it."""
        import docker.errors

        replica = _container(handle)
        if not replica.exited.done():
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                await self._call(
                    self.client.api.stop, replica.container_id, timeout=max(1, math.ceil(grace))
                )
        await stop_within(asyncio.shield(replica.exited), grace + 10.0, lambda: self.kill(replica))

    async def kill(self, handle: ReplicaHandle) -> None:
        import docker.errors

        replica = _container(handle)
        if not replica.exited.done():
            replica.killed = True
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                await self._call(self.client.api.kill, replica.container_id)
        try:
            await wait_within(asyncio.shield(replica.exited), 30.0)
        except asyncio.TimeoutError:
            # The event was lost: ask the engine directly.
            await self._call(self._reconcile)
            await asyncio.shield(replica.exited)

    async def wait(self, handle: ReplicaHandle) -> ExitStatus:
        replica = _container(handle)
        code = await asyncio.shield(replica.exited)
        self._forget(replica)
        return _exit_status(replica, code)

    def list(self) -> list[ReplicaHandle]:
        return [r for r in self._replicas.values() if not r.exited.done()]

    async def healthy(self, handle: ReplicaHandle) -> bool:
        import docker.errors

        replica = _container(handle)
        if replica.exited.done():
            return False
        try:
            attrs = await self._call(self.client.api.inspect_container, replica.container_id)
        except docker.errors.NotFound:
            return False
        return bool(attrs.get("State", {}).get("Running"))

    # -------------------------------------------------------------- container settings

    def _create_options(
        self, launch: ReplicaLaunch, resources: Resources, record_dir: Path
    ) -> dict[str, Any]:
        """``create_container`` arguments; ``host_config`` still a dict of its arguments."""
        from docker.types import Mount, Ulimit

        spec = launch.environment
        limits = resources.limits()
        if limits.gpu:
            raise PolicyError(
                f"environment {spec.name!r}: Resources(gpu={resources.gpu!r}): the container "
                f"backend does not provide GPUs"
            )
        if limits.disk is not None:
            self._warn_once(
                f"Resources(disk={resources.disk!r}) is not enforced by the container backend: "
                f"the engine's storage driver cannot cap a container's disk here",
                env=spec.name,
            )
        record_dir.mkdir(parents=True, exist_ok=True)
        mounts: list[Mount] = []
        env: dict[str, str] = {}
        python_path: list[str] = []
        if launch.fetch_code:
            # The replica fetches the code bundle and unpacks it in its own filesystem.
            env[CODE_DIR_ENV] = CONTAINER_CODE_DIR
        else:
            code_mounts, python_path = code_paths(spec.working_dir, spec.python_path)
            mounts += [Mount(p, p, type="bind", read_only=True) for p in code_mounts]
            if python_path:
                env["PYTHONPATH"] = os.pathsep.join(python_path)
        store = store_dir()
        if not self.config.remote:  # the engine's host is this one: share the store and record
            store.mkdir(parents=True, exist_ok=True)
            mounts.append(Mount(str(store), str(store), type="bind"))
            mounts.append(Mount(RECORD_MOUNT, str(record_dir), type="bind"))
        env.update(dict(spec.env_vars))
        security = launch.security.environment()
        for name in (TLS_CERT_ENV, TLS_KEY_ENV, TLS_CA_ENV):
            if name in security:
                mounts.append(Mount(security[name], security[name], type="bind", read_only=True))
        env.update(security)
        for name in FORWARDED_SETTINGS:
            if name in os.environ:
                env.setdefault(name, os.environ[name])
        env.setdefault("REUSE_RUNTIME_LOG_LEVEL", "warning")
        # The worker's stderr goes to the record's log file (and the engine's log): JSON lines.
        env.setdefault("REUSE_RUNTIME_LOG_FORMAT", "json")
        if not self.config.remote:
            env[INIT_DIR_ENV] = RECORD_MOUNT
            env[STORE_ENV] = str(store)
        else:
            env[STORE_SHARED_ENV] = "0"
        labels = {
            **dict(self.config.labels),
            OWNER_LABEL: self._owner,
            CONTROLLER_LABEL: self.controller_id,
            CONTROLLER_PID_LABEL: str(os.getpid()),
            CONTROLLER_STARTED_LABEL: str(_process_started(os.getpid())),
            ENVIRONMENT_LABEL: spec.name,
            ENV_KEY_LABEL: spec.key(),
            REPLICA_LABEL: launch.replica_id,
        }
        host: dict[str, Any] = {
            "mounts": mounts,
            "network_mode": self.config.network,
            "ulimits": [
                Ulimit(name=u.name, soft=u.soft, hard=u.hard) for u in engine.container_ulimits()
            ],
            "auto_remove": True,
        }
        if limits.memory_limit is not None:
            host["mem_limit"] = limits.memory_limit
            host["memswap_limit"] = limits.memory_limit  # no swap past the limit
        if limits.memory_request is not None and limits.memory_request != limits.memory_limit:
            host["mem_reservation"] = limits.memory_request
        if limits.cpu_limit is not None:
            host["nano_cpus"] = int(limits.cpu_limit * 1e9)
        if limits.cpu_request is not None:
            host["cpu_shares"] = max(2, int(limits.cpu_request * 1024))
        if limits.shm == "auto":
            host["shm_size"] = limits.memory_limit or psutil.virtual_memory().total // 2
        elif limits.shm is not None:
            host["shm_size"] = limits.shm
        options: dict[str, Any] = {
            "name": f"{launch.replica_id}-{self.controller_id[:6]}",
            "entrypoint": ENTRYPOINT,
            "command": worker_arguments(launch),
            "environment": env,
            "labels": labels,
            "stop_signal": "SIGTERM",
            # `podman stop` / `docker stop` by hand gets the drain's grace too.
            "stop_timeout": max(1, math.ceil(launch.grace_period + 5.0)),
            # The controller follows each replica's heartbeats; an engine health check
            # would only add noise (and, under Podman without systemd, errors).
            "healthcheck": {"test": ["NONE"]},
            "host_config": host,
        }
        if spec.working_dir and os.path.normpath(spec.working_dir) in python_path:
            options["working_dir"] = spec.working_dir
        if self._user is not None:
            options["user"] = self._user
        return options

    # -------------------------------------------------------------- engine events

    def _follow_events(self, subscribed: threading.Event) -> None:
        """Thread: turn the engine's die/remove/oom events into replicas' exits."""
        while not self._closed:
            try:
                self._events = self.client.events(
                    decode=True,
                    filters={
                        "label": f"{CONTROLLER_LABEL}={self.controller_id}",
                        "type": "container",
                    },
                )
                subscribed.set()
                self._reconcile()
                for event in self._events:
                    self._on_event(event)
            except Exception as exc:
                if self._closed:
                    return
                log.warning("engine event stream broke; following it again", error=str(exc)[:200])
                threading.Event().wait(1.0)

    def _on_event(self, event: dict[str, Any]) -> None:
        action = str(event.get("Action") or event.get("status") or "")
        container_id = str(event.get("id") or event.get("Actor", {}).get("ID") or "")
        replica = self._by_container.get(container_id)
        if replica is None:
            return
        attributes = event.get("Actor", {}).get("Attributes", {}) or {}
        if action == "oom":
            replica.engine_oom = True
        elif action == "die":
            raw = str(attributes.get("exitCode"))
            self._resolve(replica, int(raw) if raw.lstrip("-").isdigit() else None)
        elif action in ("remove", "destroy"):
            self._resolve(replica, None)

    def _reconcile(self) -> None:
        """Resolve replicas whose containers ended while no event could tell us."""
        import docker.errors

        # A copy: the loop's thread adds and removes replicas meanwhile.
        for replica in self._by_container.copy().values():
            if replica.exited.done():
                continue
            try:
                state = self.client.api.inspect_container(replica.container_id).get("State", {})
            except docker.errors.NotFound:
                self._resolve(replica, None)
                continue
            except Exception:
                continue
            if state.get("Status") in ("exited", "dead", "stopped") and not state.get("Running"):
                self._resolve(replica, int(state.get("ExitCode") or 0))

    def _resolve(self, replica: ContainerReplica, code: int | None) -> None:
        loop = self._loop
        if loop is None:
            return

        def settle() -> None:
            if not replica.exited.done():
                replica.exited.set_result(code)

        loop.call_soon_threadsafe(settle)

    def _forget(self, replica: ContainerReplica) -> None:
        self._replicas.pop(replica.replica_id, None)
        self._by_container.pop(replica.container_id, None)

    # -------------------------------------------------------------- engine facts

    def _inspect_engine(self) -> tuple[str | None, str | None]:
        """(the network's gateway, the user containers run as)."""
        gateway = None
        if self.config.network != "host":
            try:
                network = self.client.networks.get(self.config.network)
                for config in network.attrs.get("IPAM", {}).get("Config") or []:
                    if config.get("Gateway"):
                        gateway = str(config["Gateway"])
                        break
            except Exception as exc:
                raise PolicyError(
                    f"container network {self.config.network!r} is not known to the engine "
                    f"({str(exc)[:200]}); use 'bridge', 'host', or a network `podman network ls` "
                    f"lists"
                ) from None
        info = self.client.info()
        rootless = any("rootless" in str(o) for o in info.get("SecurityOptions") or [])
        # A rootful engine would write the store's files as root; run as the caller instead.
        user = None if rootless or os.geteuid() == 0 else f"{os.getuid()}:{os.getgid()}"
        return gateway, user

    def _remove_orphans(self) -> builtins.list[str]:
        """Remove containers of this owner whose controller process is gone."""
        removed = []
        for container in self.client.containers.list(
            all=True, filters={"label": f"{OWNER_LABEL}={self._owner}"}
        ):
            labels = container.labels or {}
            if labels.get(CONTROLLER_LABEL) == self.controller_id:
                continue
            try:
                pid = int(labels.get(CONTROLLER_PID_LABEL, "0"))
                started = float(labels.get(CONTROLLER_STARTED_LABEL, "0"))
            except ValueError:
                pid, started = 0, 0.0
            if _process_alive(pid, started):
                continue
            with contextlib.suppress(Exception):
                container.remove(force=True)
                removed.append(str(container.id))
        return removed

    # -------------------------------------------------------------- helpers

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await in_executor(self._executor, fn, *args, **kwargs)

    def _progress(self, env_name: str) -> Callable[[str], None]:
        def progress(line: str) -> None:
            if line.startswith("building "):
                log.warning(
                    f"{line} (first use of this image; `reuse-runtime image build FILE.py` builds "
                    f"it ahead of time)",
                    env=env_name,
                )
            elif line.startswith("notice: "):
                log.warning(line.removeprefix("notice: "), env=env_name)
            else:
                log.info(line, env=env_name)

        return progress

    def _warn_once(self, message: str, **context: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning(message, **context)


def _container(handle: ReplicaHandle) -> ContainerReplica:
    return own_handle(handle, ContainerReplica, "container")


def _exit_status(replica: ContainerReplica, code: int | None) -> ExitStatus:
    """How a replica ended: the init's record first, then the engine's exit code."""
    record: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        record = json.loads((replica.record_dir / "exit.json").read_text())
    if record.get("oom") or replica.engine_oom:
        limit = replica.memory_limit
        if not limit and isinstance(record.get("memory_limit"), int):
            limit = f"{record['memory_limit']} bytes"
        return ExitStatus(code=137, signal=9, oom=True, memory_limit=limit)
    if isinstance(record.get("signal"), int):
        return ExitStatus(signal=record["signal"], by_runtime=replica.killed)
    if isinstance(record.get("code"), int):
        return ExitStatus(code=record["code"])
    if code is None:
        return ExitStatus(detail="its container was removed before its exit status was read")
    if code > 128 and code - 128 < 65:
        # The init itself was killed (podman kill, a stop past its grace): 128 + signal.
        return ExitStatus(signal=code - 128, by_runtime=replica.killed)
    return ExitStatus(code=code)


def _owner_id(work_dir: Path) -> str:
    """Whose containers these are: this user, on this host, with this state directory."""
    raw = f"{socket.gethostname()}\0{os.getuid()}\0{work_dir.resolve()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _process_started(pid: int) -> float:
    try:
        return round(psutil.Process(pid).create_time(), 2)
    except psutil.Error:
        return 0.0


def _process_alive(pid: int, started: float) -> bool:
    if pid <= 0:
        return False
    try:
        return abs(psutil.Process(pid).create_time() - started) < 1.0
    except psutil.Error:
        return False


__all__ = [
    "ContainerBackend",
    "ContainerConfig",
    "ContainerReplica",
    "code_paths",
    "remote_engine",
]
