"""`ControllerServer`: the controller's gRPC server, pools, and autoscaling loop.

It runs standalone (``reuse-runtime controller``) or embedded in the SDK's
background thread; both are this class. Example::

    async with ControllerServer(ControllerConfig()) as controller:
        print(controller.address)   # init(endpoint=...) or replicas connect here
        await controller.wait_for_shutdown_request()
"""

from __future__ import annotations

import asyncio
import errno
import importlib
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from reuse_runtime.aio import TaskSet
from reuse_runtime.backends.base import Backend
from reuse_runtime.backends.local import LocalBackend
from reuse_runtime.bundles.archive import max_bundle_bytes
from reuse_runtime.bundles.store import BundleStore
from reuse_runtime.controller.liveness import HEARTBEATS_BEFORE_LOST, Listening
from reuse_runtime.controller.metrics import ControllerMetrics
from reuse_runtime.controller.run_service import RunService
from reuse_runtime.controller.runs import RunBook
from reuse_runtime.controller.service import ControllerService
from reuse_runtime.errors import ReuseRuntimeError
from reuse_runtime.metrics import MetricsServer
from reuse_runtime.paths import state_dir
from reuse_runtime.security import Security
from reuse_runtime.store import SqliteRunStore, StoreSettings
from reuse_runtime.wire import run_service, services
from reuse_runtime.wire.bundles import bundle_handler
from reuse_runtime.wire.runs import RUNS_SERVICE

if TYPE_CHECKING:
    from reuse_runtime.ui import WebUI

log = structlog.get_logger("reuse_runtime.controller")

#: Default bound on tasks waiting per environment.
DEFAULT_MAX_BACKLOG = 100_000
CODE_DELIVERY_ENV = "REUSE_RUNTIME_CODE_DELIVERY"
CODE_DELIVERIES = ("auto", "fetch")


def default_code_delivery() -> str:
    """``$REUSE_RUNTIME_CODE_DELIVERY``, else ``auto``."""
    return os.environ.get(CODE_DELIVERY_ENV, "").strip().lower() or "auto"


@dataclass(frozen=True)
class ControllerConfig:
    """How a controller runs. Every field has a ``reuse-runtime controller`` flag."""

    host: str = "127.0.0.1"
    port: int = 0
    max_backlog: int = DEFAULT_MAX_BACKLOG
    # Retries after a replica dies under a task, apart from the user's `retries`.
    replica_loss_budget: int = 2
    # Seconds a cancelled task gets before its replica is replaced.
    cancel_grace: float = 5.0
    # Seconds between a replica's reports.
    heartbeat: float = 1.0
    # Seconds a ready replica may stay silent before it is killed and replaced
    # (its tasks are retried); None: HEARTBEATS_BEFORE_LOST heartbeats.
    report_deadline: float | None = None
    # Seconds between autoscaling decisions.
    tick: float = 0.1
    # Seconds running tasks get to finish on SIGTERM; waiting ones go back to their
    # clients at once, and so do running ones that do not finish in time.
    drain_grace: float = 30.0
    security: Security = field(default_factory=Security)
    log_dir: Path | None = None
    # Serve Prometheus metrics at http://metrics_host:metrics_port/metrics (0 picks a port).
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # What replicas dial, "HOST" or "HOST:PORT", where the bind address is not it.
    advertise_address: str | None = None
    # The result cache (SQLite): None puts it in the state directory, on first use.
    cache_path: Path | None = None
    # Serve the web UI on this port, at the bind address (0 picks a port); None: no UI.
    ui_port: int | None = None
    # When ui_port is taken, serve the UI on a free port instead of failing (a default
    # port: a second controller on this machine still gets a UI).
    ui_port_fallback: bool = False
    # Where the UI binds; None: where the gRPC server binds.
    ui_host: str | None = None
    # Where the runs store lives (runs.sqlite); None: the state directory.
    state_dir: Path | None = None
    # Record runs in the store (False: runs live in memory only; nothing survives).
    record_runs: bool = True
    # Share the store with other controllers (the embedded ones of one user): their runs
    # end with their process, so none is resumed.
    shared_store: bool = False
    # Where a web UI serves run pages ("http://HOST:PORT"): Run.url is BASE/runs/NAME.
    ui_url: str = ""
    # Where code bundles clients send are kept: None is bundles/ in state_dir (beside the
    # runs store: a restarted controller resumes runs that name them).
    bundle_dir: Path | None = None
    # "auto": replicas that see the client's files import from them, the others fetch
    # the code bundle; "fetch": every replica fetches it ($REUSE_RUNTIME_CODE_DELIVERY).
    code_delivery: str = field(default_factory=default_code_delivery)

    def __post_init__(self) -> None:
        if self.max_backlog < 1:
            raise ValueError(f"max_backlog must be at least 1, got {self.max_backlog}")
        if self.replica_loss_budget < 0:
            raise ValueError("replica_loss_budget must not be negative")
        if not self.drain_grace >= 0:
            raise ValueError(f"drain_grace must be at least 0 seconds, got {self.drain_grace}")
        if self.report_deadline is not None and not self.report_deadline >= 2 * self.heartbeat:
            raise ValueError(
                f"report_deadline must be at least two heartbeats ({2 * self.heartbeat:g} s), "
                f"got {self.report_deadline}"
            )
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"metrics port must be in 0..65535, got {self.metrics_port}")
        if self.ui_port is not None and not 0 <= self.ui_port <= 65535:
            raise ValueError(f"web UI port must be in 0..65535, got {self.ui_port}")
        if self.code_delivery not in CODE_DELIVERIES:
            raise ValueError(
                f"code delivery must be one of {', '.join(CODE_DELIVERIES)}, got "
                f"{self.code_delivery!r}"
            )
        self.security.check_bind(self.host)

    def deadline(self) -> float:
        """The report deadline in seconds (see :mod:`~reuse_runtime.controller.liveness`)."""
        if self.report_deadline is not None:
            return self.report_deadline
        return HEARTBEATS_BEFORE_LOST * self.heartbeat


class ControllerServer:
    """One controller: service, gRPC server, backend and autoscaler loop.

    ``close()`` stops every replica; it is idempotent and safe before ``start()``.
    """

    def __init__(self, config: ControllerConfig, backend: Backend | None = None) -> None:
        self.config = config
        self.address = ""
        self.port = 0
        self._backend = backend or LocalBackend(config.log_dir)
        # What the server and its replicas require: the configured credentials, or a
        # token made up here (see Security.with_token_if_open).
        self.security = config.security.with_token_if_open()
        self.made_token = self.security is not config.security
        self._service: ControllerService | None = None
        self._book: RunBook | None = None
        #: What opening the runs store had to do (a corrupt file moved aside), or "".
        self.store_notice = ""
        self._server: Any = None
        self._tasks = TaskSet("controller")
        self._shutdown = asyncio.Event()
        self._closed: asyncio.Future[None] | None = None
        self._metrics_server: MetricsServer | None = None
        self._ui: WebUI | None = None
        self._ui_starting: asyncio.Task[None] | None = None
        self._ui_error: Exception | None = None
        self._ui_url = ""

    @property
    def service(self) -> ControllerService:
        if self._service is None:
            raise RuntimeError("the controller is not started")
        return self._service

    @property
    def ui_url(self) -> str:
        """Where the web UI is served (``http://HOST:PORT``), known from ``start()`` on
        (it may take a moment more to answer: see :meth:`ui_ready`); "" when it is off."""
        return self._ui_url

    @property
    def ui(self) -> WebUI | None:
        return self._ui

    @property
    def runs(self) -> RunBook:
        """The runs this controller owns (see :mod:`~reuse_runtime.controller.runs`)."""
        if self._book is None:
            raise RuntimeError("the controller is not started")
        return self._book

    @property
    def metrics_url(self) -> str:
        """Where ``/metrics`` is served; empty when metrics are off."""
        return self._metrics_server.url if self._metrics_server is not None else ""

    async def start(self) -> None:
        config = self.config
        metrics = ControllerMetrics() if config.metrics_port is not None else None
        self._service = ControllerService(
            self._backend,
            address=self._replica_address,
            security=self.security,
            max_backlog=config.max_backlog,
            loss_budget=config.replica_loss_budget,
            cancel_grace=config.cancel_grace,
            heartbeat=config.heartbeat,
            report_deadline=config.deadline(),
            metrics=metrics,
            cache_path=config.cache_path or state_dir() / "cache.sqlite",
            bundles=BundleStore(
                config.bundle_dir or (config.state_dir or state_dir()) / "bundles",
                max_bytes=max_bundle_bytes(),
            ),
            fetch_code=config.code_delivery == "fetch" or not self._backend.shares_files,
        )
        if metrics is not None and config.metrics_port is not None:
            metrics.watch(self._service)
            self._metrics_server = MetricsServer(
                metrics.registry, config.metrics_host, config.metrics_port
            )
            self._metrics_server.start()
        store = None
        if config.record_runs:
            directory = config.state_dir or state_dir()
            settings = StoreSettings.from_env(directory, shared=config.shared_store)
            store = await asyncio.to_thread(SqliteRunStore.open, settings)
            self.store_notice = store.notice  # its owner says it (the CLI, the SDK)
        self._book = RunBook(
            self._service, store, resumable=not config.shared_store, url_base=config.ui_url
        )
        server, self._health = services.build_server(
            [
                services.controller_handler(self._service),
                bundle_handler(self._service.code),
                run_service.runs_handler(RunService(self._book)),
            ],
            [services.CONTROLLER_SERVICE, RUNS_SERVICE],
            self.security,
        )
        port = services.bind(server, config.host, config.port, self.security)
        self._port = port
        # Before the first request: the runs the last controller here left go on.
        await self._book.resume()
        await server.start()
        self._server = server
        host = config.host if ":" not in config.host else f"[{config.host}]"
        self.address = f"{host}:{port}"
        self.port = self._port = port
        await services.set_serving(self._health, True, services.CONTROLLER_SERVICE, RUNS_SERVICE)
        self._tasks.spawn(self._autoscale(), "autoscaler")
        if config.ui_port is not None:
            # The socket now (its URL is known: Run.url can name run pages at once), the UI
            # in the background: importing it takes a few hundred ms that the first run of
            # an embedded controller need not wait for (see ui_ready).
            sock = self._listen_ui(config.ui_port)
            if not config.ui_url:
                self._book.url_base = self._ui_url  # Run.url: the run's page
            self._ui_starting = self._tasks.spawn(self._start_ui(sock), "web ui")
        log.info(
            "controller started",
            address=self.address,
            backend=self._backend.name,
            metrics=self.metrics_url,
        )

    async def ui_ready(self) -> str:
        """Wait until the web UI serves; its URL ("" when it is off). Raises what kept it
        from starting (its port taken)."""
        if self._ui_starting is not None:
            await asyncio.shield(self._ui_starting)
        if self._ui_error is not None:
            raise self._ui_error
        return self.ui_url

    def _listen_ui(self, port: int) -> socket.socket:
        """The UI's listening socket (a taken default port gives way to a free one)."""
        config = self.config
        host = config.ui_host or config.host
        try:
            sock = socket.create_server((host, port), family=_family(host))
        except OSError as exc:
            if not (config.ui_port_fallback and exc.errno == errno.EADDRINUSE and port):
                raise ReuseRuntimeError(
                    f"the web UI cannot listen on {host}:{port}: {exc.strerror}; choose another "
                    f"port with --ui-port, or turn it off with --no-ui"
                ) from None
            log.warning("web ui port in use; serving it on a free port", port=port)
            sock = socket.create_server((host, 0), family=_family(host))
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        shown = f"[{shown}]" if ":" in shown else shown
        scheme = "https" if self.security.tls is not None else "http"
        self._ui_url = f"{scheme}://{shown}:{sock.getsockname()[1]}"
        return sock

    async def _start_ui(self, sock: socket.socket) -> None:
        try:
            await self._serve_ui(sock)
        except Exception as exc:
            sock.close()
            self._ui_error = exc
            log.error("the web UI did not start", error=str(exc))

    async def _serve_ui(self, sock: socket.socket) -> None:
        """The web UI, in this loop, on its socket, behind the controller's token (a
        controller of mTLS alone makes the UI one: its login link is the way in)."""
        # Imported in a thread: aiohttp and Jinja2 take a few hundred ms to import, which
        # this loop (tasks going out, replicas starting) need not wait for.
        await asyncio.to_thread(importlib.import_module, "reuse_runtime.controller.ui_state")
        from reuse_runtime.controller.ui_state import web_ui
        from reuse_runtime.store import RunReader, SqliteRunReader

        book = self.runs
        # What the book records, read back (a controller that records nothing shows the
        # store its state dir has, if any: runs of an earlier controller).
        reader: RunReader = book.store or SqliteRunReader(
            StoreSettings.from_env(self.config.state_dir or state_dir()).path
        )

        token = self.security.token or secrets.token_urlsafe(32)
        ui = web_ui(self.service, reader, self.security, token=token, sock=sock, book=book)
        self._ui = ui
        await ui.start()
        log.info("web ui serving", url=ui.url)

    @property
    def local_address(self) -> str:
        """Where a client on this machine dials: loopback for a wildcard bind."""
        host = self.config.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"{host}:{self._port}" if ":" not in host else f"[{host}]:{self._port}"

    def _replica_address(self) -> str:
        advertised = self.config.advertise_address
        if advertised:
            # "HOST" takes the bound port; "HOST:PORT" and "[V6]:PORT" are used as they are.
            if advertised.count(":") > 1 and not advertised.startswith("["):
                return f"[{advertised}]:{self._port}"  # a bare IPv6 address
            has_port = advertised.rsplit(":", 1)[-1].isdigit() and ":" in advertised
            return advertised if has_port else f"{advertised}:{self._port}"
        return self.local_address

    async def _autoscale(self) -> None:
        listening = Listening()
        while True:
            self.service.tick(listening.beat(time.monotonic()))
            await asyncio.sleep(self.config.tick)

    def request_shutdown(self, reason: str = "") -> None:
        self._shutdown.set()

    async def wait_for_shutdown_request(self) -> None:
        await self._shutdown.wait()

    async def close(self) -> None:
        if self._closed is not None:
            await self._closed
            return
        self._closed = asyncio.get_running_loop().create_future()
        try:
            if self._service is not None:
                # 1. Take nothing new; hand waiting tasks back to their clients (they send
                #    them to the next controller); let running ones finish within the grace.
                #    The autoscaler still runs: a frozen replica is still found out.
                await self._service.drain(self.config.drain_grace)
                await self._tasks.cancel_all("controller stopping")
                # 2. Stop the replicas; what they did not finish goes back too, and the
                #    clients' streams end once they have it all.
                await self._service.close()
                await self._backend.close()
            if self._ui is not None:
                await self._ui.close()
            if self._book is not None:
                # 3. What goes on to the next controller is said, the last records written.
                await self._book.close()
            if self._server is not None:
                await services.set_serving(
                    self._health, False, services.CONTROLLER_SERVICE, RUNS_SERVICE
                )
                # 4. The grace lets the last results and hand-backs reach the clients.
                await self._server.stop(grace=5.0)
            if self._metrics_server is not None:
                # A blocking join of a thread that is only serving: quick.
                self._metrics_server.close()
        finally:
            self._closed.set_result(None)
            if self.address:  # it had started: a failed start says so by its own error
                log.info("controller stopped")

    async def wait_closed(self) -> None:
        if self._closed is not None:
            await self._closed

    async def __aenter__(self) -> ControllerServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
