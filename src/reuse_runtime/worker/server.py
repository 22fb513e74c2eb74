"""`WorkerServer`: one replica's gRPC server, and :func:`serve`, the worker's main loop.

Example (a test or an embedding program)::

    async with WorkerServer(WorkerConfig(concurrency=4)) as server:
        print(server.address)        # dispatch to it with WorkerClient
        await server.wait_for_shutdown_request()

``serve()`` reads like a script: start, announce ``listening on HOST:PORT``,
wait for a shutdown request (a signal, a drain command, or a lost controller),
then drain gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from reuse_runtime import context as task_context
from reuse_runtime.address import parse_address
from reuse_runtime.aio import TaskSet
from reuse_runtime.client import ReportSender, describe_rpc_error
from reuse_runtime.errors import CodeBundleError
from reuse_runtime.metrics import MetricsServer
from reuse_runtime.model import ReplicaHello
from reuse_runtime.security import Security
from reuse_runtime.tokens import with_local_token
from reuse_runtime.wire import services
from reuse_runtime.worker import output
from reuse_runtime.worker.executor import DEFAULT_MAX_PAYLOAD, Executor, ExecutorConfig
from reuse_runtime.worker.link import ControllerLink
from reuse_runtime.worker.metrics import WorkerMetrics
from reuse_runtime.worker.monitor import ReplicaMonitor
from reuse_runtime.worker.servicer import WorkerService

log = structlog.get_logger("reuse_runtime.worker")


#: The exit code of a worker whose drain overran its deadline (see :func:`serve`).
EXIT_DRAIN_OVERRAN = 70
#: Seconds an external worker (``--environment``) keeps dialling a controller it lost,
#: by default: long enough for a controller restart or a network partition to end, as
#: a worker run by systemd or a Deployment is expected to ride them out. A replica the
#: controller started has none (0): it exits, and its controller starts another.
EXTERNAL_RECONNECT = 300.0


def default_replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class WorkerConfig:
    """How one replica runs. Every field has a CLI flag of the same name."""

    host: str = "127.0.0.1"
    port: int = 0
    concurrency: int = 1
    replica_id: str = field(default_factory=default_replica_id)
    controller: str | None = None
    # With `controller`: the environment a worker started by someone else joins.
    environment: str | None = None
    grace_period: float = 30.0
    heartbeat: float = 1.0
    # After losing its controller: seconds to keep dialling it (warm), 0 to exit at once;
    # None: EXTERNAL_RECONNECT for an external worker (`environment`), else 0.
    reconnect: float | None = None
    max_payload: int = DEFAULT_MAX_PAYLOAD
    security: Security = field(default_factory=Security)
    # Serve Prometheus metrics at http://metrics_host:metrics_port/metrics (0 picks a port).
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # Where fetched code bundles are unpacked; None: $REUSE_RUNTIME_CODE_DIR, else
    # STATE_DIR/code.
    code_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if not 0 < self.heartbeat <= 5.0:
            raise ValueError(f"heartbeat must be in (0, 5] seconds, got {self.heartbeat}")
        if self.grace_period < 0:
            raise ValueError(f"grace period must not be negative, got {self.grace_period}")
        if self.reconnect is not None and self.reconnect < 0:
            raise ValueError(f"reconnect must not be negative, got {self.reconnect}")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"metrics port must be in 0..65535, got {self.metrics_port}")
        if self.environment and not self.controller:
            raise ValueError("--environment needs --controller: the controller to join")
        if self.controller:  # dns:///HOST:PORT and [V6]:PORT too; HOST:PORT from here on
            object.__setattr__(
                self, "controller", str(parse_address(self.controller, "--controller"))
            )
        self.security.check_bind(self.host)

    @property
    def reconnect_window(self) -> float:
        """Seconds this worker dials a controller it lost (see ``reconnect``)."""
        if self.reconnect is not None:
            return self.reconnect
        return EXTERNAL_RECONNECT if self.environment else 0.0


class WorkerServer:
    """A replica: executor, monitor, gRPC server, and (optionally) its controller link.

    ``close()`` drains and is idempotent and safe before ``start()``.
    """

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.address = ""
        self.port = 0
        # What callers must present: the configured credentials, or a token made up here.
        self.security = config.security.with_token_if_open()
        self.made_token = self.security is not config.security
        self._server: object = None
        self._service: WorkerService | None = None
        self._link: ControllerLink | None = None
        # Dialling the controller again after losing it (``--reconnect``).
        self._redialling = False
        self._reports: ReportSender | None = None
        self._tasks = TaskSet("worker")
        self._shutdown = asyncio.Event()
        self.shutdown_reason = ""
        self.controller_lost = False
        # Set by serve(): the process exits when a drain overruns its deadline.
        self.exit_on_overrun = False
        # Why the controller never took this worker (refused, or unreachable), if it did not.
        self.attach_error = ""
        self._closed: asyncio.Future[None] | None = None
        self._metrics_server: MetricsServer | None = None

    @property
    def metrics_url(self) -> str:
        """Where ``/metrics`` is served; empty when metrics are off."""
        return self._metrics_server.url if self._metrics_server is not None else ""

    @property
    def service(self) -> WorkerService:
        if self._service is None:
            raise RuntimeError("the worker is not started")
        return self._service

    async def start(self) -> None:
        config = self.config
        # print() inside a task goes to the task's caller; elsewhere it passes through.
        output.install()
        structlog.contextvars.bind_contextvars(replica_id=config.replica_id)
        executor = Executor(
            ExecutorConfig(
                replica_id=config.replica_id,
                concurrency=config.concurrency,
                max_payload=config.max_payload,
            )
        )
        monitor = ReplicaMonitor(config.replica_id, executor.limiter)
        self._service = WorkerService(executor, monitor, config.code_dir)
        if config.metrics_port is not None:
            metrics = WorkerMetrics(config.replica_id, executor.limiter, monitor)
            executor.on_finished = metrics.task_finished
            executor.loader.on_load = metrics.module_loaded
            if not config.controller:
                metrics.bind("standalone")  # attached replicas learn theirs from the controller
            self._service.metrics = metrics
        server, self._health = services.build_server(
            [services.worker_handler(self._service)], [services.WORKER_SERVICE], self.security
        )
        port = services.bind(server, config.host, config.port, self.security)
        self.port = port
        await server.start()
        self._server = server
        host = config.host if ":" not in config.host else f"[{config.host}]"
        self.address = f"{host}:{port}"
        await services.set_serving(self._health, True, services.WORKER_SERVICE)
        if self._service.metrics is not None and config.metrics_port is not None:
            self._metrics_server = MetricsServer(
                self._service.metrics.registry, config.metrics_host, config.metrics_port
            )
            self._metrics_server.start()
        self._tasks.spawn(monitor.run(), "monitor")
        if config.controller:
            # To its controller it presents the configured credentials, or the token a
            # controller of this user on this machine recorded.
            to_controller = with_local_token(config.security, config.controller)
            task_context.set_controller_endpoint(
                task_context.ControllerEndpoint(config.controller, to_controller)
            )
            self._link = ControllerLink(
                self._service,
                config.controller,
                to_controller,
                ReplicaHello(
                    config.replica_id,
                    config.concurrency,
                    self.address,
                    os.getpid(),
                    config.environment or "",
                ),
                heartbeat=config.heartbeat,
                on_end=self._link_ended,
            )
            self._tasks.spawn(self._run_link(self._link), "controller-link")
            self._reports = ReportSender(config.controller, config.security)
            monitor.send_while_blocked = self._reports.send
        log.info(
            "worker started",
            address=self.address,
            concurrency=config.concurrency,
            controller=config.controller or "",
        )

    async def _run_link(self, link: ControllerLink) -> None:
        lost = await self._serve_link(link)
        while lost is not None:
            # --reconnect: keep the warm state and dial the controller (restarted, or
            # reachable again) until it takes this replica back or the time is up.
            log.warning(
                "lost the controller; dialling it again",
                controller=self.config.controller,
                error=lost,
                within=self.config.reconnect_window,
            )
            self._redialling = True
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.config.reconnect_window
            delay = 0.5
            while True:
                link = self._link = link.again()
                lost = await self._serve_link(link)
                if lost is None or link.attached:
                    break  # shut down; or taken back, then lost again: a new window
                if loop.time() + delay > deadline:
                    # Its window is over (a dial under way ends within gRPC's 5 s connect
                    # timeout): it exits non-zero, for its supervisor to see.
                    self.attach_error = (
                        f"lost the controller at {self.config.controller}, which did not take "
                        f"this worker back within {self.config.reconnect_window:g} s ({lost})"
                    )
                    self.request_shutdown(self.attach_error)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _serve_link(self, link: ControllerLink) -> str | None:
        """Serve ``link`` until it ends. Returns why it broke when the controller should
        be dialled again (``--reconnect``), else None (the worker is shutting down)."""
        drained = self._tasks.spawn(self._follow_drain(link), "drain-command")
        try:
            await link.run()
        except Exception as exc:
            if not self._shutdown.is_set():  # _link_ended chose to dial it again
                return describe_rpc_error(exc, "Connect")
        finally:
            drained.cancel()
        return None

    def _link_ended(self, error: BaseException | None) -> None:
        """The controller stream ended (error None) or broke: shut down, now; or, with
        ``--reconnect``, stop its tasks and let :meth:`_run_link` dial it again."""
        if self._shutdown.is_set():
            return
        if error is None:
            self.request_shutdown("the controller closed the connection")
            return
        if isinstance(error, CodeBundleError):
            # Its code cannot be had: nothing can run here. The CLI exits non-zero with this.
            self.attach_error = str(error)
            self.request_shutdown(self.attach_error)
            return
        attached = self._link is not None and self._link.attached
        if self.config.reconnect_window > 0 and (attached or self._redialling):
            if attached:
                # Its tasks are retried elsewhere (or sent again by their clients).
                self.service.executor.cancel_all("the controller connection was lost")
            return
        if not attached:
            # Never taken (refused, or unreachable): the CLI exits non-zero with this.
            self.attach_error = (
                f"the controller at {self.config.controller} did not take this worker: "
                f"{describe_rpc_error(error, 'Connect')}"
            )
            self.request_shutdown(self.attach_error)
            return
        log.error(
            "lost the controller",
            controller=self.config.controller,
            error=f"{type(error).__name__}: {error}",
        )
        # Its tasks are retried elsewhere: stop them and exit within the grace period.
        self.controller_lost = True
        self.request_shutdown("the controller connection was lost")
        self.service.executor.cancel_all("the controller connection was lost")

    async def _follow_drain(self, link: ControllerLink) -> None:
        await link.drain_requested.wait()
        self.request_shutdown(f"drain requested by the controller: {link.drain_reason}")

    def request_shutdown(self, reason: str = "") -> None:
        """Ask the worker to drain and stop; safe to call many times.

        Under :func:`serve`, this also starts the clock on :meth:`exit_deadline`.
        """
        if not self._shutdown.is_set():
            self.shutdown_reason = reason
            self._shutdown.set()
            if self.exit_on_overrun:
                _exit_after(self.exit_deadline(), reason)

    async def wait_for_shutdown_request(self) -> None:
        await self._shutdown.wait()

    def exit_deadline(self) -> float:
        """Seconds a drain may take before the process exits regardless (see :func:`serve`).

        Without its controller a replica's tasks are already cancelled and retried
        elsewhere: it gets its grace period. A drain gets the grace period for its
        tasks, another for the on-stop hook, and time to report.
        """
        grace = self.config.grace_period
        return grace + 1.0 if self.controller_lost else 2 * grace + 10.0

    async def close(self) -> None:
        """Drain: take no new tasks, let in-flight ones finish within the grace period,
        cancel the rest, report, and stop. Idempotent."""
        if self._closed is not None:
            await self._closed
            return
        self._closed = asyncio.get_running_loop().create_future()
        try:
            await self._drain()
        finally:
            if self._service is not None:
                self._service.monitor.send_while_blocked = None
            if self._reports is not None:
                self._reports.close()
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        if self._closed is not None:
            await self._closed

    async def _drain(self) -> None:
        if self._service is None:
            return
        service = self._service
        grace = self.config.grace_period
        log.info(
            "draining",
            reason=self.shutdown_reason or "close",
            inflight=service.executor.running,
            grace_period=grace,
        )
        # 1. Stop taking work, and tell the controller at once.
        service.monitor.draining = True
        service.monitor.changed.set()
        await services.set_serving(self._health, False, services.WORKER_SERVICE)
        # 2. Let in-flight tasks finish within the grace period; then cancel the rest.
        if not await service.executor.wait_idle(grace):
            cancelled = service.executor.cancel_all("cancelled: the replica's grace period ran out")
            log.warning("grace period over; cancelling tasks", cancelled=cancelled)
            await service.executor.wait_idle(min(5.0, max(grace, 1.0)))
        # 3. Deliver the last results and the final report, then stop serving.
        if self._link is not None:
            try:
                await self._link.finish()
            except Exception as exc:
                log.warning("could not send final report", error=f"{type(exc).__name__}: {exc}")
        if self._server is not None:
            await self._server.stop(grace=1.0)  # type: ignore[attr-defined]
        await self._tasks.cancel_all("worker stopped")
        service.executor.close()
        if self._metrics_server is not None:
            self._metrics_server.close()
        log.info("worker stopped", completed=service.executor.limiter.statistics().completed)

    async def __aenter__(self) -> WorkerServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def serve(server: WorkerServer, on_ready: Callable[[], None] | None = None) -> None:
    """Run a worker until a shutdown is requested, then drain. Prints the ready line.

    Once a shutdown is requested the process exits within
    :meth:`WorkerServer.exit_deadline`, whatever its tasks or event loop do: a
    thread ends it if the drain has not (a task that ignores cancellation, a
    wedged loop). Nothing outlives its controller for long.
    """
    server.exit_on_overrun = True
    try:
        await server.start()
        if on_ready is not None:
            on_ready()
        print(f"listening on {server.address}", file=sys.__stdout__, flush=True)
        if server.metrics_url:
            print(f"metrics on {server.metrics_url}", file=sys.__stdout__, flush=True)
        await server.wait_for_shutdown_request()
    finally:
        await server.close()


def _exit_after(seconds: float, reason: str) -> None:
    def expire() -> None:
        with contextlib.suppress(Exception):
            print(
                f"reuse-runtime worker: the drain ({reason}) did not finish within "
                f"{seconds:g} s; exiting now",
                file=sys.__stderr__,
                flush=True,
            )
        os._exit(EXIT_DRAIN_OVERRAN)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
