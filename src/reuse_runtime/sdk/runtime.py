"""`init`, `run` and the `Runtime` behind them: start tasks from ordinary (sync) Python.

The runtime is a background event loop holding the controller's client. With no
endpoint configured, the first :func:`run` starts an embedded controller (see
:mod:`~reuse_runtime.sdk.embedded`) with the local backend, in that loop's thread.
Its replicas are subprocesses; they stop when this process exits. What
:func:`run` returns is a :class:`~reuse_runtime.sdk.run.Run`.

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
import getpass
import inspect
import logging
import os
import reprlib
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from reuse_runtime import code, gctune, logs, malloctune, pickling
from reuse_runtime import context as task_context
from reuse_runtime.address import parse_address
from reuse_runtime.bundles import SourceBundle, build_bundle
from reuse_runtime.bundles.select import check_root
from reuse_runtime.client import ControllerClient
from reuse_runtime.client.runs import RunsClient
from reuse_runtime.envvars import env_port
from reuse_runtime.errors import ConfigError, ScriptImportError
from reuse_runtime.images.recipe import Image
from reuse_runtime.paths import state_dir
from reuse_runtime.runinfo import ClientInfo, NewRun, RunInfo
from reuse_runtime.sdk.aio import blocking
from reuse_runtime.sdk.config import RuntimeConfig, is_flyte_config, read_config
from reuse_runtime.sdk.embedded import (
    EmbeddedController,
    embedded_controller,
    note_embedded_run,
    start_controller,
    stop_controller,
)
from reuse_runtime.sdk.ignored import note_ignored
from reuse_runtime.sdk.run import WAKE_SECONDS, Run, RunSettings, finish_at_exit
from reuse_runtime.sdk.runsource import ControllerRuns, RunSource, store_source, use_default
from reuse_runtime.sdk.task import CallContext, TaskTemplate
from reuse_runtime.sdk.task_context import note_run_started, set_project_domain
from reuse_runtime.security import Security

if TYPE_CHECKING:
    from reuse_runtime.controller.server import ControllerServer

T = TypeVar("T")
logs_of_sdk = structlog.get_logger("reuse_runtime.sdk")

ENDPOINT_ENV = "REUSE_RUNTIME_ENDPOINT"
CONFIG_ENV = "REUSE_RUNTIME_CONFIG"
METRICS_PORT_ENV = "REUSE_RUNTIME_METRICS_PORT"

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
        self._controller: ControllerServer | None = None
        self._runs: dict[str, Run] = {}
        self._unreported: dict[str, Run] = {}
        self._runs_lock = threading.Lock()
        self._closed = False
        self._last_bundle: SourceBundle | None = None
        self.state_dir = state_dir()
        try:
            self.client: ControllerClient = self.call(self._connect())
        except BaseException:
            self.close()
            raise
        self.runs = RunsClient(self.client, on_event=_say)
        self.source: RunSource = ControllerRuns(
            self,
            self.runs,
            self.client.address,
            lambda name: self.client.run_progress(name, timeout=2.0),
        )

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
                # Done: the coroutine's own TimeoutError (a task's timeout is one).
                if future.done() or (deadline is not None and time.monotonic() >= deadline):
                    raise

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` on the runtime's loop in the background (its failure is logged)."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        future.add_done_callback(_retrieve)

    async def _connect(self) -> ControllerClient:
        security = Security.from_env(self.config.token)
        endpoint = self.config.endpoint
        if endpoint is None:
            self._controller, security = await start_controller(
                self.config, security, self.state_dir
            )
            endpoint = self._controller.local_address
        client = ControllerClient(endpoint, security, on_event=_say)
        await client.wait_ready()
        return client

    @property
    def endpoint(self) -> str:
        return self.client.address

    @property
    def embedded(self) -> bool:
        return self._controller is not None

    @property
    def ui_url(self) -> str:
        """Where the embedded controller serves its web UI; empty when it does not (yet)."""
        return self._controller.ui_url if self._controller is not None else ""

    @property
    def metrics_url(self) -> str:
        """Where the embedded controller serves ``/metrics``; empty when it does not."""
        return self._controller.metrics_url if self._controller is not None else ""

    def start_run(
        self,
        task: TaskTemplate[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        settings: RunSettings | None = None,
    ) -> Run:
        """Create the run at the controller (it owns it from now on) and follow it."""
        settings = settings or RunSettings()
        name = settings.name or f"r{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        # The project's code, as replicas that cannot see this machine's files get it.
        # Inside a replica a run keeps the replica's own (the controller has it).
        bundle = None
        digest = code.project_bundle()
        if not digest:
            bundle = build_bundle(_root_dir, _copy_style(task, settings))
            digest = bundle.digest if bundle is not None else ""
            if bundle is not None and bundle is not self._last_bundle:
                # Files changed on disk since the last run: replicas get them as they are
                # now, so tasks are named by their versions now.
                if self._last_bundle is not None:
                    code.forget_versions()
                self._last_bundle = bundle
        where = CallContext(
            run_id=name,
            custom_context=tuple(sorted(settings.custom_context.items())),
            run_options=settings.run_options(),
            code_bundle=digest,
        )
        # Everything the task needs is taken now, in the caller's thread: a script
        # that ends right after run() has lost its __main__ module by the time the
        # runtime's thread would look.
        shown, inputs = call_inputs(task, args, kwargs)
        new = NewRun(
            name=name,
            environment=task.environment_spec(where),
            root=task.submission("", args, kwargs, where, stream_logs=True),
            inputs_preview=shown,
            labels=tuple(sorted((str(k), str(v)) for k, v in settings.labels.items())),
            client=ClientInfo(self.client.client_id, _user(), socket.gethostname()),
            inputs=inputs,
        )
        info = self.call(self._create(new, bundle))
        log_path = self.state_dir / "runs" / f"{name}.log"
        run = Run(
            self.source,
            name,
            info=info,
            task=task,
            host=self,
            log_path=log_path,
            settings=settings,
        )
        note_run_started(name, settings.run_start_time)
        if self._controller is not None:  # `status` names it once the controller has ended
            note_embedded_run(self.state_dir, self._controller.local_address, name, log_path)
        with self._runs_lock:
            self._runs[name] = run
            self._unreported[name] = run
        run._follow(logs=True, deadline=task._deadline_s)
        return run

    async def _create(self, new: NewRun, bundle: SourceBundle | None) -> RunInfo:
        if bundle is not None:  # the controller has it before the run that names it
            await self.client.send_bundle(bundle.digest, bundle.data)
        return await self.runs.create(new)

    def unreported_runs(self) -> list[Run]:
        """Runs whose outcome was not shown yet (nobody waited for them)."""
        with self._runs_lock:
            return list(self._unreported.values())

    def reported(self, run: Run) -> None:
        with self._runs_lock:
            self._unreported.pop(run.name, None)

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
                await stop_controller(self._controller, self.state_dir)

        if self._loop.is_running():
            with contextlib.suppress(Exception):
                self.call(shutdown(), timeout=60)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)


def _retrieve(future: concurrent.futures.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logs_of_sdk.warning("background call failed", error=repr(future.exception()))


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"


def call_inputs(
    task: TaskTemplate[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, bytes]:
    """A call's inputs, its signature bound once: a short rendering for listings
    (``n=500, name='x'``), and by name, defaults included, pickled (``Run.inputs()``;
    b"" when they cannot be: a signature that does not bind, a value that does not
    pickle)."""
    short = reprlib.Repr()
    short.maxstring, short.maxother, short.maxlist, short.maxdict = 40, 40, 4, 4

    def preview(given: dict[str, Any]) -> str:
        return ", ".join(f"{k}={short.repr(v)}" for k, v in given.items())[:256]

    try:
        bound = inspect.signature(task.func).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return preview({**{f"arg{i}": a for i, a in enumerate(args)}, **kwargs}), b""
    shown = preview(bound.arguments)  # before apply_defaults: what the caller gave
    try:
        bound.apply_defaults()
        return shown, pickling.dumps(dict(bound.arguments))
    except Exception:
        return shown, b""


def _copy_style(task: TaskTemplate[Any, Any], settings: RunSettings) -> str:
    """The run's copy_style; an image that bakes the code (with_code_bundle) says its own."""
    image = task.parent_env.image
    layer = image.code_bundle_layer() if isinstance(image, Image) else None
    return layer.copy_style if layer is not None else settings.copy_style


def _say(line: str) -> None:
    """Tell the person running the driver what the client is doing (a lost controller)."""
    print(f"reuse-runtime: {line}", file=sys.stderr, flush=True)


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()
_config = RuntimeConfig()
# flyte.init(root_dir=...): the project whose code bundles are made; None: the cwd.
_root_dir: Path | None = None


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

    ``endpoint="host:port"``, or Flyte's ``"dns:///host:port"`` (or
    ``$REUSE_RUNTIME_ENDPOINT``), names a standalone controller; without one, runs
    start an embedded controller in this process. A URL (``https://...``) or an
    address without a port fails here, saying which forms are accepted.
    ``token``, ``max_backlog`` and ``replica_loss_budget`` are reuse-runtime's,
    as are ``backend``, where the embedded controller runs replicas: ``"local"``
    subprocesses (the default) or ``"container"`` (Docker or Podman; default
    ``$REUSE_RUNTIME_BACKEND``), and ``container_network``: ``"bridge"``
    (default), ``"host"``, or a network's name.
    ``project`` and ``domain`` show in ``flyte.ctx()``; ``log_level`` sets the
    runtime's log level. ``root_dir`` is the project's folder (default: the
    working directory): runs bundle its code for replicas that cannot see this
    machine's files (see ``with_runcontext(copy_style=...)``). Flyte's login,
    storage and image settings have no meaning here: they are accepted with a
    one-line warning.

    ``metrics_port`` (or ``$REUSE_RUNTIME_METRICS_PORT``): the embedded controller
    serves Prometheus metrics at ``http://127.0.0.1:PORT/metrics`` (0 picks a port;
    ``runtime().metrics_url`` says which).

    Inside a replica this does nothing: tasks there already know their controller.
    """
    global _config, _root_dir
    given = {name: value for name, value in locals().items() if name in _FLYTE_ONLY_INIT}
    for name, value in given.items():
        if value:
            note_ignored(f"init({name}=...)", _FLYTE_ONLY_INIT[name])
    set_project_domain(project, domain)
    if task_context.controller_endpoint() is not None:
        return
    if root_dir is not None:
        _root_dir = check_root(Path(root_dir))  # a bad folder fails here, not at run()
    if log_level is not None:
        _set_log_level(log_level)
    if endpoint:
        endpoint = str(parse_address(endpoint, "endpoint"))
    elif os.environ.get(ENDPOINT_ENV):
        endpoint = str(parse_address(os.environ[ENDPOINT_ENV], f"${ENDPOINT_ENV}"))
    else:
        endpoint = None
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
        endpoint = "10.0.0.5:50050"   # or "dns:///10.0.0.5:50050"; omit for the embedded one
        token = "..."                 # or set $REUSE_RUNTIME_TOKEN
        max_backlog = 100000
        backend = "container"         # the embedded controller's replicas as containers
        metrics_port = 9100           # the embedded controller serves /metrics

    A Flyte config (``config.yaml``) is not read, and this says so once; tasks
    run on the embedded pool, or at ``endpoint=`` (Flyte's ``dns:///host:port``
    works there).
    """
    if path_or_config is not None and not isinstance(path_or_config, (str, os.PathLike)):
        note_ignored(
            f"init_from_config({type(path_or_config).__name__})",
            "Flyte config objects are not read; pass a reuse-runtime TOML path",
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
                "reuse-runtime reads TOML (./.reuse-runtime.toml or $REUSE_RUNTIME_CONFIG); "
                "name a controller with init(endpoint='dns:///HOST:PORT')",
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
    init(
        org=org,
        project=project,
        domain=domain,
        log_level=log_level,
        root_dir=root_dir,
        **settings,
    )


def _metrics_port_from_env() -> int | None:
    port = env_port(METRICS_PORT_ENV, -1, error=ConfigError)
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


def finish_runs_at_exit() -> None:
    """At interpreter exit: finish the runs nobody waited for, showing their output."""
    current = _runtime
    if current is not None:
        finish_at_exit(current.unreported_runs(), current.embedded)


def _runs_source() -> RunSource:
    """Where ``flyte.remote`` reads runs: this process's controller; else the one an
    endpoint names (``init``, ``$REUSE_RUNTIME_ENDPOINT``, a replica's own); else the local
    runs store, with no controller started."""
    global _config
    with _runtime_lock:
        current = _runtime
        if current is None and _config.endpoint is None:
            endpoint = os.environ.get(ENDPOINT_ENV)
            if endpoint:
                endpoint = str(parse_address(endpoint, f"${ENDPOINT_ENV}"))
                _config = dataclasses.replace(_config, endpoint=endpoint)
        configured = _config.endpoint is not None
    if current is not None:
        return current.source
    if configured or task_context.controller_endpoint() is not None:
        return runtime().source
    return store_source()


use_default(_runs_source)


__all__ = [
    "CONFIG_ENV",
    "ENDPOINT_ENV",
    "METRICS_PORT_ENV",
    "EmbeddedController",
    "Run",
    "Runtime",
    "RuntimeConfig",
    "embedded_controller",
    "finish_runs_at_exit",
    "init",
    "init_from_config",
    "run",
    "runtime",
    "shutdown",
    "start",
]
