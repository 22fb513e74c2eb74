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
    print(r.outputs())
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import queue
import secrets
import sys
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

from reuse_runtime import context as task_context
from reuse_runtime import runlog
from reuse_runtime.aio import TaskSet
from reuse_runtime.errors import ControllerUnavailableError, PolicyError
from reuse_runtime.model import LogLine, RunProgress, Submission, TaskResult, TaskState
from reuse_runtime.security import Security
from reuse_runtime.wire.clients import ControllerClient

T = TypeVar("T")

ENDPOINT_ENV = "REUSE_RUNTIME_ENDPOINT"
CONFIG_ENV = "REUSE_RUNTIME_CONFIG"
HOME_ENV = "REUSE_RUNTIME_HOME"
METRICS_PORT_ENV = "REUSE_RUNTIME_METRICS_PORT"


def state_dir() -> Path:
    """Where runs' logs and the embedded controller's address are kept."""
    explicit = os.environ.get(HOME_ENV)
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(cache) / "reuse-runtime"


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) readable by this user only: mode 0700.

    The state directory holds the embedded controller's address and token, and
    every run's output, so nobody else on the machine may read it.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, created mode 0600 (never readable by others)."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@dataclass(frozen=True)
class RuntimeConfig:
    """Where tasks go. ``endpoint=None`` means an embedded controller in this process."""

    endpoint: str | None = None
    token: str | None = None
    max_backlog: int | None = None
    replica_loss_budget: int | None = None
    # The embedded controller serves Prometheus metrics on this port (0 picks one).
    metrics_port: int | None = None


# ---------------------------------------------------------------- the runtime


class Runtime:
    """A background event loop holding the controller client (and the embedded controller)."""

    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="reuse-runtime", daemon=True
        )
        self._thread.start()
        self._controller: Any = None
        self._runs: dict[str, Run] = {}
        self._runs_lock = threading.Lock()
        self._closed = False
        self.state_dir = state_dir()
        try:
            self.client: ControllerClient = self.call(self._connect())
        except BaseException:
            self.close()
            raise

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the runtime's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _connect(self) -> ControllerClient:
        security = Security.from_env(self.config.token)
        endpoint = self.config.endpoint
        if endpoint is None:
            from reuse_runtime import logs
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
            self._controller = ControllerServer(
                ControllerConfig(security=security, log_dir=log_dir, **options)
            )
            await self._controller.start()
            endpoint = self._controller.address
            _write_embedded_address(self.state_dir, endpoint, security.token)
        client = ControllerClient(endpoint, security, on_logs=self._route_logs)
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

    def start_run(self, task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Run:
        name = f"r{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        log_path = self.state_dir / "runs" / f"{name}.log"
        run = Run(self, name, task.name, log_path)
        with self._runs_lock:
            self._runs[name] = run
        future = asyncio.run_coroutine_threadsafe(self._submit(run, task, args, kwargs), self._loop)
        future.add_done_callback(run._settle)
        return run

    async def _submit(
        self, run: Run, task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> TaskResult:
        env_key = await self.client.register(task.environment_spec())
        spec = task.task_spec(args, kwargs, run_id=run.name)
        return await self.client.submit(
            Submission(env_key, spec, retries=task.retries, stream_logs=True)
        )

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
                _remove_embedded_address(self.state_dir, self._controller.address)

        if self._loop.is_running():
            with contextlib.suppress(Exception):
                self.call(shutdown(), timeout=60)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)


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


def init(
    endpoint: str | None = None,
    *,
    token: str | None = None,
    max_backlog: int | None = None,
    replica_loss_budget: int | None = None,
    metrics_port: int | None = None,
    **_flyte_only: Any,
) -> None:
    """Choose where tasks run. No endpoint (and no ``$REUSE_RUNTIME_ENDPOINT``): embedded.

    ``metrics_port`` (or ``$REUSE_RUNTIME_METRICS_PORT``): the embedded controller
    serves Prometheus metrics at ``http://127.0.0.1:PORT/metrics`` (0 picks a port;
    ``runtime().metrics_url`` says which).

    Inside a replica this does nothing: tasks there already know their controller.
    """
    global _config
    if task_context.controller_endpoint() is not None:
        return
    endpoint = endpoint or os.environ.get(ENDPOINT_ENV) or None
    if metrics_port is None:
        metrics_port = _metrics_port_from_env()
    elif isinstance(metrics_port, bool) or not isinstance(metrics_port, int):
        raise PolicyError(f"metrics_port must be a port number (0 picks one), got {metrics_port!r}")
    elif not 0 <= metrics_port <= 65535:
        raise PolicyError(f"metrics_port must be in 0..65535, got {metrics_port}")
    new = RuntimeConfig(endpoint, token, max_backlog, replica_loss_budget, metrics_port)
    with _runtime_lock:
        if _runtime is not None and _runtime.config != new:
            shutdown()
        _config = new


def init_from_config(path: str | os.PathLike[str] | None = None, **overrides: Any) -> None:
    """Read ``[controller]`` settings from a TOML file, or use the embedded default.

    Without ``path``: ``$REUSE_RUNTIME_CONFIG``, then ``./.reuse-runtime.toml``, then
    ``~/.config/reuse-runtime/config.toml``; none of them means the embedded default::

        [controller]
        endpoint = "10.0.0.5:50050"   # omit for the embedded controller
        token = "..."                 # or set $REUSE_RUNTIME_TOKEN
        max_backlog = 100000
    """
    candidates = (
        [Path(path)]
        if path is not None
        else [Path(p) for p in (os.environ.get(CONFIG_ENV),) if p]
        + [Path(".reuse-runtime.toml"), Path.home() / ".config" / "reuse-runtime" / "config.toml"]
    )
    settings: dict[str, Any] = {}
    for candidate in candidates:
        if candidate.is_file():
            settings = _read_config(candidate)
            break
        if path is not None:
            raise PolicyError(f"config file {candidate} does not exist")
    settings.update(overrides)
    init(**settings)


def _read_config(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PolicyError(f"cannot read config {path}: {exc}") from None
    section = data.get("controller", {})
    if not isinstance(section, dict):
        raise PolicyError(f"{path}: [controller] must be a table")
    known = {"endpoint", "token", "max_backlog", "replica_loss_budget", "metrics_port"}
    unknown = set(section) - known
    if unknown:
        raise PolicyError(
            f"{path}: unknown [controller] settings {sorted(unknown)}; known: {sorted(known)}"
        )
    return dict(section)


def _metrics_port_from_env() -> int | None:
    raw = os.environ.get(METRICS_PORT_ENV, "")
    if not raw:
        return None
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise PolicyError(f"{METRICS_PORT_ENV} must be a port number (0 picks one), got {raw!r}")
    return port


def runtime() -> Runtime:
    """The process's runtime, started on first use."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime(_config)
            atexit.register(shutdown)
        return _runtime


def shutdown() -> None:
    """Stop the runtime: the embedded controller and its replicas. Safe to call twice."""
    global _runtime
    current, _runtime = _runtime, None
    if current is not None:
        current.close()


def run(task: Any, *args: Any, **kwargs: Any) -> Run:
    """Start ``task(*args, **kwargs)`` on its environment's replicas; returns at once."""
    from reuse_runtime.sdk.environment import TaskTemplate

    if not isinstance(task, TaskTemplate):
        raise TypeError(
            f"run() takes a task, got {type(task).__name__}: decorate the function with @env.task"
        )
    return runtime().start_run(task, args, kwargs)


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


_cancels = TaskSet("child-cancels")


def cancel_child(client: task_context.ChildTaskClient, task_id: str) -> None:
    """Tell the controller to cancel a child whose parent stopped waiting for it."""

    async def cancel() -> None:
        with contextlib.suppress(Exception):
            await client.cancel(task_id=task_id)

    _cancels.spawn(cancel(), task_id)


# ---------------------------------------------------------------- runs

_DONE = object()


class Run:
    """A started run: its name, where to see it, and its outcome."""

    def __init__(self, runtime: Runtime, name: str, task_name: str, log_path: Path) -> None:
        self.name = name
        self.task_name = task_name
        self._runtime = runtime
        self._log_path = log_path
        self._lines: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._result: concurrent.futures.Future[TaskResult] = concurrent.futures.Future()
        self._started = time.monotonic()
        private_dir(log_path.parent)
        self._log_file: TextIO | None = log_path.open("w", encoding="utf-8")
        self._log_file.write(runlog.header(name, task_name, runtime.endpoint, runtime.embedded))
        self._log_file.write("\n")
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

    def done(self) -> bool:
        return self._result.done()

    def wait(
        self, quiet: bool = False, timeout: float | None = None, progress: bool | None = None
    ) -> None:
        """Block until the run ends, printing its tasks' output as it arrives.

        Each line is prefixed with the task's name. A failure is reported on
        stderr; :meth:`outputs` raises it. On a terminal, a run with child tasks
        shows a progress bar on stderr (children done, failed, running; rate and
        ETA); ``progress=False`` or ``REUSE_RUNTIME_PROGRESS=0`` turns it off.
        """
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
                if not quiet:
                    stream = sys.stderr if item.stream == "stderr" else sys.stdout
                    text = f"[{item.task_name}] {item.text}"
                    if display is not None:
                        display.line(text, stream)
                    else:
                        print(text, file=stream, flush=True)
        finally:
            if display is not None:
                display.close()
        if not quiet:
            summary = self._summary()
            if self.status != "succeeded":
                print(summary, file=sys.stderr, flush=True)

    def outputs(self, timeout: float | None = None) -> Any:
        """The task's return value; raises its error if it did not succeed."""
        try:
            result = self._result.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"run {self.name} still running after {timeout:g} s") from None
        return result.unwrap(self.task_name)

    def progress(self) -> RunProgress:
        """How far the run has got: its children done, failed, running (see RunProgress)."""
        return self._runtime.call(self._runtime.client.run_progress(self.name, timeout=10.0), 15)

    def cancel(self) -> int:
        """Cancel every task of this run; returns how many were cancelled."""
        return self._runtime.call(self._runtime.client.cancel(run_id=self.name))

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
        if self._log_file is not None:
            self._log_file.write(runlog.format_line(line) + "\n")

    def _flush(self) -> None:
        if self._log_file is not None:
            self._log_file.flush()

    def _settle(self, future: concurrent.futures.Future[TaskResult]) -> None:
        # Runs on the runtime's loop, after every output line of the run was queued.
        error = future.exception()
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
        took = time.monotonic() - self._started
        if self.status == "succeeded":
            return f"run {self.name} succeeded ({took:.2f} s)"
        error = self._result.exception()
        if error is None:
            result = self._result.result()
            detail = result.error.message if result.error else ""
        else:
            detail = str(error)
        return f"run {self.name} {self.status}: {detail}"
