"""`init`, `run` and `Run`: start tasks from ordinary (sync) Python.

With no endpoint configured, the first :func:`run` starts an embedded
controller with the local backend, in a background thread of this process.
Its replicas are subprocesses; they stop when this process exits.

Example::

    import reuse_runtime as flyte

    flyte.init_from_config()          # no config: the embedded default
    r = flyte.run(main, n=500)
    print(r.name, r.url)
    r.wait()                          # streams the tasks' output
    print(r.outputs()[0])
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import os
import queue
import secrets
import signal
import sys
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

from reuse_runtime import code, gctune, logs, malloctune, runlog
from reuse_runtime import context as task_context
from reuse_runtime.envvars import env_number
from reuse_runtime.errors import (
    ClosedError,
    ConfigError,
    ControllerUnavailableError,
    RuntimeUserError,
    ScriptImportError,
)
from reuse_runtime.model import (
    EnvironmentSpec,
    LogLine,
    RunProgress,
    Submission,
    TaskResult,
    TaskState,
)
from reuse_runtime.paths import private_dir, state_dir, write_private
from reuse_runtime.sdk.aio import BlockingMethod, blocking
from reuse_runtime.sdk.ignored import note_ignored
from reuse_runtime.sdk.outputs import ActionOutputs, declares_no_output
from reuse_runtime.sdk.runcontext import RunSettings
from reuse_runtime.security import Security
from reuse_runtime.wire.clients import ControllerClient

T = TypeVar("T")

ENDPOINT_ENV = "REUSE_RUNTIME_ENDPOINT"
CONFIG_ENV = "REUSE_RUNTIME_CONFIG"
METRICS_PORT_ENV = "REUSE_RUNTIME_METRICS_PORT"


@dataclass(frozen=True)
class RuntimeConfig:
    """Where tasks go. ``endpoint=None`` means an embedded controller in this process."""

    endpoint: str | None = None
    token: str | None = None
    max_backlog: int | None = None
    replica_loss_budget: int | None = None
    #: Where the embedded controller runs replicas: "local" or "container".
    backend: str | None = None
    #: The container backend's network: "bridge", "host", or a network's name.
    container_network: str | None = None
    # The embedded controller serves Prometheus metrics on this port (0 picks one).
    metrics_port: int | None = None


# ---------------------------------------------------------------- the runtime


class Runtime:
    """A background event loop holding the controller client (and the embedded controller)."""

    def __init__(self, config: RuntimeConfig) -> None:
        gctune.tune(respect_caller=True)  # this process moves tasks: see gctune
        malloctune.tune()
        self.config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="reuse-runtime", daemon=True)
        self._thread.start()
        self._controller: Any = None
        self._runs: dict[str, Run] = {}
        self._unreported: dict[str, Run] = {}
        self._runs_lock = threading.Lock()
        self._closed = False
        self.state_dir = state_dir()
        try:
            self.client: ControllerClient = self.call(self._connect())
        except BaseException:
            self.close()
            raise

    def _serve(self) -> None:
        # Ctrl-C and SIGTERM are the caller's: blocked here (and in the threads started
        # from here: gRPC's, asyncio's), the kernel delivers them to the main thread. One
        # that landed here instead would leave a main thread blocked in Run.wait() deaf.
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        self._loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the runtime's loop and wait for it (waking for signals)."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = WAKE_SECONDS if deadline is None else deadline - time.monotonic()
            try:
                return future.result(max(0.0, min(left, WAKE_SECONDS)))
            except concurrent.futures.TimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    async def _connect(self) -> ControllerClient:
        security = Security.from_env(self.config.token)
        endpoint = self.config.endpoint
        if endpoint is None:
            from reuse_runtime import logs
            from reuse_runtime.backends import backend_name, controller_placement, open_backend
            from reuse_runtime.controller.server import ControllerConfig, ControllerServer

            logs.configure(sys.stderr, level=os.environ.get(logs.LEVEL_ENV, "warning"))
            if not security.authenticated:
                # Loopback is no boundary on a shared machine: the embedded controller and
                # its replicas always require a token, made here when none is configured.
                security = dataclasses.replace(security, token=secrets.token_urlsafe(32))
            log_dir = private_dir(self.state_dir / "replicas")
            options: dict[str, Any] = {}
            if self.config.max_backlog is not None:
                options["max_backlog"] = self.config.max_backlog
            if self.config.replica_loss_budget is not None:
                options["replica_loss_budget"] = self.config.replica_loss_budget
            if self.config.metrics_port is not None:
                options["metrics_port"] = self.config.metrics_port
            opened = await open_backend(
                backend_name(self.config.backend),
                log_dir=log_dir,
                network=self.config.container_network,
            )
            try:
                host, advertise = controller_placement(
                    opened, "127.0.0.1", None, security, embedded=True
                )
                self._controller = ControllerServer(
                    ControllerConfig(
                        host=host,
                        advertise_address=advertise,
                        security=security,
                        log_dir=log_dir,
                        **options,
                    ),
                    opened.backend,
                )
                await self._controller.start()
            except BaseException:
                await opened.backend.close()
                raise
            endpoint = self._controller.local_address
            _write_embedded_address(self.state_dir, endpoint, security.token)
        client = ControllerClient(endpoint, security, on_logs=self._route_logs, on_event=_say)
        await client.wait_ready()
        return client

    @property
    def endpoint(self) -> str:
        return self.client.address

    @property
    def embedded(self) -> bool:
        return self._controller is not None

    @property
    def metrics_url(self) -> str:
        """Where the embedded controller serves ``/metrics``; empty when it does not."""
        return str(self._controller.metrics_url) if self._controller is not None else ""

    def start_run(
        self,
        task: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        settings: RunSettings | None = None,
    ) -> Run:
        from reuse_runtime.sdk.environment import CallContext
        from reuse_runtime.sdk.task_context import note_run_started

        settings = settings or RunSettings()
        name = settings.name or f"r{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        with self._runs_lock:
            if name in self._runs:
                raise RuntimeUserError(
                    "RunAlreadyExistsError", f"a run named {name!r} is still running"
                )
        where = CallContext(
            run_id=name,
            custom_context=tuple(sorted(settings.custom_context.items())),
            run_options=settings.run_options(),
        )
        # Everything the task needs is taken now, in the caller's thread: a script
        # that ends right after run() has lost its __main__ module by the time the
        # runtime's thread would look.
        env_spec = task.environment_spec(where)
        submission = task.submission("", args, kwargs, where, stream_logs=True)
        log_path = self.state_dir / "runs" / f"{name}.log"
        run = Run(self, name, task, log_path, settings)
        note_run_started(name, settings.run_start_time)
        with self._runs_lock:
            self._runs[name] = run
            self._unreported[name] = run
        future = asyncio.run_coroutine_threadsafe(
            self._submit(task, env_spec, submission), self._loop
        )
        future.add_done_callback(run._settle)
        return run

    async def _submit(
        self, task: Any, env_spec: EnvironmentSpec, submission: Submission
    ) -> TaskResult:
        env_key = await self.client.register(env_spec)
        submitted = self.client.submit(dataclasses.replace(submission, env_key=env_key))
        deadline = task._deadline_s
        if deadline is None:
            return await submitted
        try:
            result: TaskResult = await task._within_deadline(submitted, deadline)
            return result
        except Exception:
            with contextlib.suppress(Exception):
                await self.client.cancel(task_id=submission.task.task_id)
            raise

    def unreported_runs(self) -> list[Run]:
        """Runs whose outcome was not shown yet (nobody waited for them)."""
        with self._runs_lock:
            return list(self._unreported.values())

    def reported(self, run: Run) -> None:
        with self._runs_lock:
            self._unreported.pop(run.name, None)

    def _route_logs(self, lines: list[LogLine]) -> None:
        touched = {}
        for line in lines:
            run = self._runs.get(line.run_id)
            if run is not None:
                run._log(line)
                touched[run.name] = run
        for run in touched.values():
            run._flush()  # once per batch: `reuse-runtime logs --follow` sees it now

    def forget(self, run: Run) -> None:
        with self._runs_lock:
            self._runs.pop(run.name, None)

    def close(self) -> None:
        """Stop the embedded controller (and its replicas) and the loop. Idempotent."""
        if self._closed:
            return
        self._closed = True

        async def shutdown() -> None:
            client = getattr(self, "client", None)
            if client is not None:
                await client.close()
            if self._controller is not None:
                await self._controller.close()
                _remove_embedded_address(self.state_dir, self._controller.local_address)

        if self._loop.is_running():
            with contextlib.suppress(Exception):
                self.call(shutdown(), timeout=60)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)


def _say(line: str) -> None:
    """Tell the person running the driver what the client is doing (a lost controller)."""
    print(f"reuse-runtime: {line}", file=sys.stderr, flush=True)


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


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()
_config = RuntimeConfig()


# init()'s arguments that only mean something to a Flyte backend, and why.
_FLYTE_ONLY_INIT = {
    "org": "there are no organizations here",
    "headless": "there is no login",
    "insecure": "use REUSE_RUNTIME_TLS_* for TLS",
    "insecure_skip_verify": "use REUSE_RUNTIME_TLS_* for TLS",
    "ca_cert_file_path": "use REUSE_RUNTIME_TLS_CA",
    "command": "there is no login",
    "proxy_command": "there is no proxy",
    "api_key": "use a token ($REUSE_RUNTIME_TOKEN)",
    "client_id": "use a token ($REUSE_RUNTIME_TOKEN)",
    "client_credentials_secret": "use a token ($REUSE_RUNTIME_TOKEN)",
    "auth_client_config": "use a token ($REUSE_RUNTIME_TOKEN)",
    "http_proxy_url": "connections go straight to the controller",
    "storage": "files live in the local store (REUSE_RUNTIME_STORE)",
    "images": "images are built by `reuse-runtime` backends",
    "image_registry": "images are built by `reuse-runtime` backends",
    "local_persistence": "runs are kept as log files in the state directory",
    "local_tracked": "there is no Flyte control plane to report to",
    "local_tracked_strict": "there is no Flyte control plane to report to",
}


def _flyte_endpoint(endpoint: str) -> bool:
    """A Flyte/Union endpoint (``dns:///host``, ``https://host``), not a controller's host:port."""
    return "://" in endpoint


@blocking
def init(
    org: str | None = None,
    project: str | None = None,
    domain: str | None = None,
    root_dir: Path | None = None,
    log_level: int | None = None,
    log_format: str | None = None,
    reset_root_logger: bool = False,
    user_log_level: int | None = None,
    endpoint: str | None = None,
    headless: bool = False,
    insecure: bool = False,
    insecure_skip_verify: bool = False,
    ca_cert_file_path: str | None = None,
    auth_type: str = "Pkce",
    command: list[str] | None = None,
    proxy_command: list[str] | None = None,
    api_key: str | None = None,
    client_id: str | None = None,
    client_credentials_secret: str | None = None,
    auth_client_config: Any = None,
    rpc_retries: int = 3,
    http_proxy_url: str | None = None,
    disable_keyring: bool = False,
    storage: Any = None,
    batch_size: int = 1000,
    image_builder: str = "local",
    images: Any = None,
    image_registry: str | None = None,
    source_config_path: Path | None = None,
    sync_local_sys_paths: bool = True,
    load_plugin_type_transformers: bool = True,
    local_persistence: bool = False,
    local_tracked: bool = False,
    local_tracked_strict: bool = False,
    *,
    token: str | None = None,
    max_backlog: int | None = None,
    replica_loss_budget: int | None = None,
    backend: str | None = None,
    container_network: str | None = None,
    metrics_port: int | None = None,
) -> None:
    """Choose where tasks run: Flyte's ``init``, with reuse-runtime's own settings.

    ``endpoint="host:port"`` (or ``$REUSE_RUNTIME_ENDPOINT``) names a standalone
    controller; without one, runs start an embedded controller in this process.
    ``token``, ``max_backlog`` and ``replica_loss_budget`` are reuse-runtime's,
    as are ``backend``, where the embedded controller runs replicas: ``"local"``
    subprocesses (the default) or ``"container"`` (Docker or Podman; default
    ``$REUSE_RUNTIME_BACKEND``), and ``container_network``: ``"bridge"``
    (default), ``"host"``, or a network's name.
    ``project`` and ``domain`` show in ``flyte.ctx()``; ``log_level`` sets the
    runtime's log level. Flyte's login, storage and image settings have no
    meaning here: they are accepted with a one-line warning. A Flyte endpoint
    (``dns:///...``) is warned about too, and tasks run on the embedded pool.

    ``metrics_port`` (or ``$REUSE_RUNTIME_METRICS_PORT``): the embedded controller
    serves Prometheus metrics at ``http://127.0.0.1:PORT/metrics`` (0 picks a port;
    ``runtime().metrics_url`` says which).

    Inside a replica this does nothing: tasks there already know their controller.
    """
    global _config
    from reuse_runtime.sdk.task_context import set_project_domain

    given = {name: value for name, value in locals().items() if name in _FLYTE_ONLY_INIT}
    for name, value in given.items():
        if value:
            note_ignored(f"init({name}=...)", _FLYTE_ONLY_INIT[name])
    set_project_domain(project, domain)
    if task_context.controller_endpoint() is not None:
        return
    if log_level is not None:
        _set_log_level(log_level)
    if endpoint and _flyte_endpoint(endpoint):
        note_ignored(
            f"init(endpoint={endpoint!r})",
            "it names a Flyte backend; tasks run on reuse-runtime's pool "
            "(give a controller as host:port, or none for the embedded one)",
        )
        endpoint = None
    endpoint = endpoint or os.environ.get(ENDPOINT_ENV) or None
    if endpoint is not None:
        from reuse_runtime.sdk.config import check_endpoint

        check_endpoint(endpoint)
    if backend is not None:
        from reuse_runtime.backends import backend_name

        backend = backend_name(backend)  # a typo fails here, not at the first run()
    if metrics_port is None:
        metrics_port = _metrics_port_from_env()
    elif isinstance(metrics_port, bool) or not isinstance(metrics_port, int):
        raise ConfigError(f"metrics_port must be a port number (0 picks one), got {metrics_port!r}")
    elif not 0 <= metrics_port <= 65535:
        raise ConfigError(f"metrics_port must be in 0..65535, got {metrics_port}")
    new = RuntimeConfig(
        endpoint,
        token,
        max_backlog,
        replica_loss_budget,
        backend,
        container_network,
        metrics_port=metrics_port,
    )
    with _runtime_lock:
        if _runtime is not None and _runtime.config != new:
            shutdown()
        _config = new


def _set_log_level(level: int | str) -> None:
    name = logging.getLevelName(level) if isinstance(level, int) else str(level).upper()
    os.environ[logs.LEVEL_ENV] = str(name).lower()


@blocking
def init_from_config(
    path_or_config: str | os.PathLike[str] | None = None,
    root_dir: Path | None = None,
    log_level: int | None = None,
    log_format: str = "console",
    user_log_level: int | None = None,
    org: str | None = None,
    project: str | None = None,
    domain: str | None = None,
    storage: Any = None,
    batch_size: int = 1000,
    image_builder: str | None = None,
    images: tuple[str, ...] | None = None,
    sync_local_sys_paths: bool = True,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    max_backlog: int | None = None,
    replica_loss_budget: int | None = None,
    backend: str | None = None,
    container_network: str | None = None,
    metrics_port: int | None = None,
) -> None:
    """Read ``[controller]`` settings from a TOML file, or use the embedded default.

    Without a path: ``$REUSE_RUNTIME_CONFIG``, then ``./.reuse-runtime.toml``, then
    ``~/.config/reuse-runtime/config.toml``; none of them means the embedded
    default. An unknown section or setting is an error naming the file and line::

        [controller]
        endpoint = "10.0.0.5:50050"   # omit for the embedded controller
        token = "..."                 # or set $REUSE_RUNTIME_TOKEN
        max_backlog = 100000
        backend = "container"         # the embedded controller's replicas as containers
        metrics_port = 9100           # the embedded controller serves /metrics

    A Flyte config (``config.yaml``) names a Flyte backend: it is not read, and
    this says so once; tasks run on the embedded pool (or ``endpoint=``).
    """
    from reuse_runtime.sdk.config import is_flyte_config, read_config

    if path_or_config is not None and not isinstance(path_or_config, (str, os.PathLike)):
        note_ignored(
            f"init_from_config({type(path_or_config).__name__})",
            "Flyte config objects name a Flyte backend; pass a reuse-runtime TOML path",
        )
        path_or_config = None
    settings: dict[str, Any] = {}
    if path_or_config is not None:
        path = Path(path_or_config).expanduser()
        if root_dir is not None and not path.is_absolute():
            path = Path(root_dir).expanduser() / path
        if is_flyte_config(path):
            note_ignored(
                f"Flyte config {str(path_or_config)!r}",
                "it names a Flyte backend; tasks run on reuse-runtime's pool, set in "
                "./.reuse-runtime.toml or $REUSE_RUNTIME_CONFIG",
            )
        elif not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        else:
            settings = read_config(path)
    else:
        for candidate in [Path(p) for p in (os.environ.get(CONFIG_ENV),) if p] + [
            Path(".reuse-runtime.toml"),
            Path.home() / ".config" / "reuse-runtime" / "config.toml",
        ]:
            if candidate.is_file():
                settings = read_config(candidate)
                break
    for name, value in (
        ("endpoint", endpoint),
        ("token", token),
        ("max_backlog", max_backlog),
        ("replica_loss_budget", replica_loss_budget),
        ("backend", backend),
        ("container_network", container_network),
        ("metrics_port", metrics_port),
    ):
        if value is not None:
            settings[name] = value
    if storage is not None:
        note_ignored("init_from_config(storage=...)", _FLYTE_ONLY_INIT["storage"])
    if images:
        note_ignored("init_from_config(images=...)", _FLYTE_ONLY_INIT["images"])
    init(org=org, project=project, domain=domain, log_level=log_level, **settings)


def _metrics_port_from_env() -> int | None:
    port = env_number(
        METRICS_PORT_ENV,
        -1,
        int,
        valid=lambda port: 0 <= port <= 65535,
        needs="a port number (0 picks one)",
        error=ConfigError,
    )
    return None if port == -1 else port


def runtime() -> Runtime:
    """The process's runtime, started on first use."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            config = _config
            endpoint = task_context.controller_endpoint()
            if endpoint is not None and config.endpoint is None:
                # A run started inside a task goes to the replica's own controller.
                config = dataclasses.replace(config, endpoint=endpoint.address)
            _runtime = Runtime(config)
            atexit.register(shutdown)
            # Registered last, so it runs first: runs finish before the runtime stops.
            atexit.register(finish_runs_at_exit)
        return _runtime


def shutdown() -> None:
    """Stop the runtime: the embedded controller and its replicas. Safe to call twice."""
    global _runtime
    current, _runtime = _runtime, None
    if current is not None:
        current.close()


def start(
    task: Any, args: tuple[Any, ...], kwargs: dict[str, Any], settings: RunSettings | None = None
) -> Run:
    """Start ``task(*args, **kwargs)`` as a run with ``settings``; returns at once."""
    from reuse_runtime.sdk.environment import TaskTemplate

    script = code.script_import()
    if script:
        raise ScriptImportError(
            f"{Path(script).name} started a run while a replica was importing it to run its "
            f'tasks: put the code that starts runs under `if __name__ == "__main__":`'
        )
    if not isinstance(task, TaskTemplate):
        raise TypeError(
            f"run() takes a task, got {type(task).__name__}: decorate the function with @env.task"
        )
    return runtime().start_run(task, args, kwargs, settings)


@blocking
def run(task: Any, *args: Any, **kwargs: Any) -> Run:
    """Start ``task(*args, **kwargs)`` on its environment's replicas; returns a :class:`Run`.

    It returns at once; ``Run.wait()`` streams the tasks' output, ``Run.outputs()``
    gives the result. A script that ends without waiting still gets its runs
    finished (and their output shown) before it exits. ``await flyte.run.aio(...)``
    is the same, for async code.
    """
    return start(task, args, kwargs)


# ---------------------------------------------------------------- replicas' client

_replica_client: ControllerClient | None = None


def replica_client() -> task_context.ChildTaskClient:
    """The client a replica's tasks use for their child tasks (created on first use)."""
    global _replica_client
    harness = task_context.in_process_client()
    if harness is not None:
        return harness
    if _replica_client is None:
        endpoint = task_context.controller_endpoint()
        if endpoint is None:
            raise ControllerUnavailableError(
                "this replica has no controller (start it with --controller) so its tasks "
                "cannot call other tasks"
            )
        _replica_client = ControllerClient(endpoint.address, endpoint.security)
    return _replica_client


def cancel_child(client: task_context.ChildTaskClient, task_id: str) -> None:
    """Tell the controller to cancel a child whose parent stopped waiting for it."""
    client.cancel_soon(task_id)


# ---------------------------------------------------------------- runs

_DONE = object()
#: The longest the caller's thread blocks at a time. Python runs a signal's handler in
#: the main thread only once that thread wakes: a Ctrl-C the kernel hands to another
#: thread must not leave a wait with no end deaf to it.
WAKE_SECONDS = 0.5
#: Streams shown in the run's log file only (not on the terminal).
_LOG_ONLY = frozenset({"cache", "trace"})


class Run:
    """A started run: its name, where to see it, and its outcome.

    ``wait()`` and ``outputs()`` block; ``await r.wait.aio()`` and
    ``await r.outputs.aio()`` are their async forms, as in Flyte.
    """

    def __init__(
        self, runtime: Runtime, name: str, task: Any, log_path: Path, settings: RunSettings
    ) -> None:
        self.name = name
        self.task_name = task.short_name
        self._task = task
        self._runtime = runtime
        self._log_path = log_path
        self._lines: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._result: concurrent.futures.Future[TaskResult] = concurrent.futures.Future()
        self._started = time.monotonic()
        self._ended = 0.0
        self._cache_hits = 0
        self._reported = False
        private_dir(log_path.parent)
        self._log_file: TextIO | None = log_path.open("w", encoding="utf-8")
        self._log_file.write(runlog.header(name, task.name, runtime.endpoint, runtime.embedded))
        self._log_file.write("\n")
        for label, values in (("labels", settings.labels), ("annotations", settings.annotations)):
            if values:
                shown = ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
                self._log_file.write(f"{label}: {shown}\n")
        self._log_file.flush()

    @property
    def url(self) -> str:
        """Where to follow the run: its log file (status and every task's output)."""
        return self._log_path.resolve().as_uri()

    def __repr__(self) -> str:
        return f"Run(name={self.name!r}, status={self.status!r}, url={self.url!r})"

    @property
    def status(self) -> str:
        if not self._result.done():
            return "running"
        error = self._result.exception()
        if error is not None:
            return "failed"
        return {
            TaskState.SUCCEEDED: "succeeded",
            TaskState.FAILED: "failed",
            TaskState.CANCELLED: "cancelled",
            TaskState.TIMED_OUT: "timed out",
        }[self._result.result().state]

    @property
    def phase(self) -> str:
        """Flyte's name for the state: RUNNING, SUCCEEDED, FAILED, ABORTED or TIMED_OUT."""
        return {
            "running": "RUNNING",
            "succeeded": "SUCCEEDED",
            "failed": "FAILED",
            "cancelled": "ABORTED",
            "timed out": "TIMED_OUT",
        }[self.status]

    def done(self) -> bool:
        return self._result.done()

    @BlockingMethod
    def wait(
        self,
        quiet: bool = False,
        wait_for: str = "terminal",
        timeout: float | None = None,
        progress: bool | None = None,
    ) -> None:
        """Block until the run ends, printing its tasks' output as it arrives.

        Each line is prefixed with the task's name. A failure is reported on
        stderr, with the remote traceback; :meth:`outputs` raises it.
        ``wait_for="running"`` returns at once: a run is running when it starts.
        On a terminal, a run with child tasks shows a progress bar on stderr
        (children done, failed, running; rate and ETA); ``progress=False`` or
        ``REUSE_RUNTIME_PROGRESS=0`` turns it off.
        """
        if wait_for not in ("terminal", "running"):
            raise ValueError(f'wait_for must be "terminal" or "running", got {wait_for!r}')
        if wait_for == "running":
            return
        from reuse_runtime.sdk.progress import POLL_SECONDS, RunProgressDisplay, progress_wanted

        display = (
            RunProgressDisplay(self.task_name, self._progress)
            if not quiet and not self.done() and progress_wanted(progress)
            else None
        )
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                if display is not None:
                    display.poll()
                    remaining = POLL_SECONDS if remaining is None else min(remaining, POLL_SECONDS)
                remaining = WAKE_SECONDS if remaining is None else min(remaining, WAKE_SECONDS)
                try:
                    item = self._lines.get(timeout=remaining)
                except queue.Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(
                            f"run {self.name} still running after {timeout:g} s"
                        ) from None
                    continue
                if item is _DONE:
                    self._lines.put(_DONE)  # later waits return at once
                    break
                if not quiet and item.stream not in _LOG_ONLY:
                    stream = sys.stderr if item.stream == "stderr" else sys.stdout
                    text = f"[{item.task_name}] {item.text}"
                    if display is not None:
                        display.line(text, stream)
                    else:
                        print(text, file=stream, flush=True)
        finally:
            if display is not None:
                display.close()
        if not self._reported:
            self._reported = True
            self._runtime.reported(self)
            if not quiet and self.status != "succeeded":
                print(self._summary(), file=sys.stderr, flush=True)

    @BlockingMethod
    def outputs(self, timeout: float | None = None) -> ActionOutputs:
        """The task's outputs, as Flyte gives them: a tuple, so ``outputs()[0]`` is the value.

        A task that returns a tuple (or a ``NamedTuple``) gives its items; one
        annotated ``-> None`` gives ``()``. ``outputs().named_outputs`` maps
        ``o0``, ``o1``, ... to the values. Raises the task's error if it did not
        succeed. The tasks' output not shown yet is printed first, as
        :meth:`wait` does.
        """
        if not self._reported:
            try:
                self.wait(timeout=timeout)
            except TimeoutError:
                raise TimeoutError(f"run {self.name} still running after {timeout:g} s") from None
        result = self._result.result(0)
        try:
            value = self._task.unwrap(result)
        except BaseException as error:
            # Its failure was printed with the run's summary: the uncaught-error
            # hook then names it in one line instead of printing it all again.
            with contextlib.suppress(AttributeError, TypeError):
                error.__reuse_runtime_run__ = self.name  # type: ignore[attr-defined]
            raise
        if value is None and declares_no_output(self._task.func):
            return ActionOutputs(())
        return ActionOutputs.of(value)

    def progress(self) -> RunProgress:
        """How far the run has got: its children done, failed, running (see RunProgress)."""
        return self._runtime.call(self._runtime.client.run_progress(self.name, timeout=10.0), 15)

    def cancel(self) -> int:
        """Cancel every task of this run; returns how many were cancelled."""
        return self._runtime.call(self._cancel())

    async def _cancel(self) -> int:
        # A run started a moment ago may not have reached the controller yet (its
        # submission and this cancel travel apart): ask again until it is there.
        client = self._runtime.client
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0
        while True:
            cancelled = await client.cancel(run_id=self.name)
            if cancelled or self._result.done() or loop.time() > deadline:
                return cancelled
            await asyncio.sleep(0.1)

    @BlockingMethod
    def abort(self, reason: str = "Manually aborted from the SDK api.") -> None:
        """Flyte's name for :meth:`cancel`."""
        self.cancel()

    # ------------------------------------------------------------ internals

    def _progress(self) -> RunProgress | None:
        try:
            return self._runtime.call(
                self._runtime.client.run_progress(self.name, timeout=2.0), timeout=3.0
            )
        except Exception:
            return None

    def _log(self, line: LogLine) -> None:
        self._lines.put(line)
        if line.stream == "cache":
            self._cache_hits += 1
        if self._log_file is not None:
            self._log_file.write(runlog.format_line(line) + "\n")

    def _flush(self) -> None:
        if self._log_file is not None:
            self._log_file.flush()

    def _settle(self, future: concurrent.futures.Future[TaskResult]) -> None:
        # Runs on the runtime's loop, after every output line of the run was queued.
        self._ended = time.monotonic()
        error = (
            ClosedError("the runtime shut down before the run finished")
            if future.cancelled()
            else future.exception()
        )
        if error is not None:
            self._result.set_exception(error)
        else:
            self._result.set_result(future.result())
        if self._log_file is not None:
            self._log_file.write(self._summary() + "\n")
            self._log_file.close()
            self._log_file = None
        self._lines.put(_DONE)
        self._runtime.forget(self)

    def _summary(self) -> str:
        took = (self._ended or time.monotonic()) - self._started
        if self.status == "succeeded":
            hits = f", {self._cache_hits} cached" if self._cache_hits else ""
            return f"run {self.name} succeeded ({took:.2f} s{hits})"
        error = self._result.exception()
        if error is not None:
            return f"run {self.name} {self.status}: {type(error).__name__}: {error}"
        remote = self._result.result().error
        if remote is None:
            return f"run {self.name} {self.status}"
        kind = remote.type.rsplit(".", 1)[-1] if remote.type else ""
        text = f"run {self.name} {self.status}: {kind + ': ' if kind else ''}{remote.message}"
        if remote.traceback:
            text += "\n" + _indent(remote.traceback.rstrip("\n"))
        return text


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())


def finish_runs_at_exit() -> None:
    """At interpreter exit: finish the runs nobody waited for, showing their output.

    Flyte programs often end right after ``flyte.run(...)``; their runs must not
    be lost. One line says what is happening; Ctrl-C cancels the runs instead.
    """
    current = _runtime
    if current is None:
        return
    pending = current.unreported_runs()
    unfinished = [r for r in pending if not r.done()]
    try:
        if unfinished:
            names = ", ".join(r.name for r in unfinished)
            plural = "s" if len(unfinished) > 1 else ""
            print(
                f"reuse-runtime: finishing {len(unfinished)} run{plural} still in progress "
                f"before exit ({names}); Ctrl-C cancels",
                file=sys.stderr,
                flush=True,
            )
        for r in pending:
            r.wait()
    except KeyboardInterrupt:
        for r in unfinished:
            if not r.done():
                with contextlib.suppress(Exception):
                    r.cancel()
        for r in unfinished:
            with contextlib.suppress(Exception, KeyboardInterrupt):
                r.wait(quiet=True, timeout=10)
        print(
            f"reuse-runtime: cancelled {', '.join(r.name for r in unfinished)}",
            file=sys.stderr,
            flush=True,
        )
