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
import os
import socket
import sys
from dataclasses import dataclass, field

import structlog

from reuse_runtime import context as task_context
from reuse_runtime.aio import TaskSet
from reuse_runtime.metrics import MetricsServer, WorkerMetrics
from reuse_runtime.model import ReplicaHello
from reuse_runtime.security import Security
from reuse_runtime.wire import services
from reuse_runtime.wire.clients import ReportSender, describe_rpc_error
from reuse_runtime.worker import output
from reuse_runtime.worker.executor import DEFAULT_MAX_PAYLOAD, Executor, ExecutorConfig
from reuse_runtime.worker.link import ControllerLink
from reuse_runtime.worker.monitor import ReplicaMonitor
from reuse_runtime.worker.servicer import WorkerService

log = structlog.get_logger("reuse_runtime.worker")


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
    heartbeat: float = 5.0
    # After losing its controller: seconds to keep dialling it (warm), 0 to exit at once.
    reconnect: float = 0.0
    max_payload: int = DEFAULT_MAX_PAYLOAD
    security: Security = field(default_factory=Security)
    # Serve Prometheus metrics at http://metrics_host:metrics_port/metrics (0 picks a port).
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if not 0 < self.heartbeat <= 5.0:
            raise ValueError(f"heartbeat must be in (0, 5] seconds, got {self.heartbeat}")
        if self.grace_period < 0:
            raise ValueError(f"grace period must not be negative, got {self.grace_period}")
        if self.reconnect < 0:
            raise ValueError(f"reconnect must not be negative, got {self.reconnect}")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"metrics port must be in 0..65535, got {self.metrics_port}")
        if self.environment and not self.controller:
            raise ValueError("--environment needs --controller: the controller to join")
        self.security.check_bind(self.host)


class WorkerServer:
    """A replica: executor, monitor, gRPC server, and (optionally) its controller link.

    ``close()`` drains and is idempotent and safe before ``start()``.
    """

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.address = ""
        self._server: object = None
        self._service: WorkerService | None = None
        self._link: ControllerLink | None = None
        self._reports: ReportSender | None = None
        self._tasks = TaskSet("worker")
        self._shutdown = asyncio.Event()
        self.shutdown_reason = ""
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
        self._service = WorkerService(executor, monitor)
        if config.metrics_port is not None:
            metrics = WorkerMetrics(config.replica_id, executor.limiter, monitor)
            executor.on_finished = metrics.task_finished
            executor.loader.on_load = metrics.module_loaded
            if not config.controller:
                metrics.bind("standalone")  # attached replicas learn theirs from the controller
            self._service.metrics = metrics
        server, self._health = services.build_server(
            [services.worker_handler(self._service)], [services.WORKER_SERVICE], config.security
        )
        port = services.bind(server, config.host, config.port, config.security)
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
            task_context.set_controller_endpoint(
                task_context.ControllerEndpoint(config.controller, config.security)
            )
            self._link = ControllerLink(
                self._service,
                config.controller,
                config.security,
                ReplicaHello(
                    config.replica_id,
                    config.concurrency,
                    self.address,
                    os.getpid(),
                    config.environment or "",
                ),
                heartbeat=config.heartbeat,
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
        lost = await self._serve_link(link, retrying=False)
        while lost is not None:
            # --reconnect: keep the warm state and dial the controller (restarted, or
            # reachable again) until it takes this replica back or the time is up.
            log.warning(
                "lost the controller; dialling it again",
                controller=self.config.controller,
                error=lost,
                within=self.config.reconnect,
            )
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.config.reconnect
            delay = 0.5
            while True:
                link = self._link = link.again()
                lost = await self._serve_link(link, retrying=True)
                if lost is None or link.attached:
                    break  # shut down; or taken back, then lost again: a new window
                if loop.time() + delay > deadline:
                    self.request_shutdown(
                        f"the controller connection was lost, and it did not take this "
                        f"replica back within {self.config.reconnect:g} s"
                    )
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _serve_link(self, link: ControllerLink, *, retrying: bool) -> str | None:
        """Serve ``link`` until it ends. Returns why it broke when the controller should
        be dialled again (``--reconnect``), else None (the worker is shutting down)."""
        drained = self._tasks.spawn(self._follow_drain(link), "drain-command")
        try:
            await link.run()
            if not self._shutdown.is_set():
                self.request_shutdown("the controller closed the connection")
        except Exception as exc:
            again = retrying or (link.attached and self.config.reconnect > 0)
            if again and not self._shutdown.is_set():
                if link.attached:
                    # Its tasks are retried elsewhere (or sent again by their clients).
                    self.service.executor.cancel_all("the controller connection was lost")
                return f"{type(exc).__name__}: {exc}"
            if not link.attached:
                # Never taken (refused, or unreachable): the CLI exits non-zero with this.
                self.attach_error = (
                    f"the controller at {self.config.controller} did not take this worker: "
                    f"{describe_rpc_error(exc, 'Connect')}"
                )
                self.request_shutdown(self.attach_error)
            elif not self._shutdown.is_set():
                log.error(
                    "lost the controller",
                    controller=self.config.controller,
                    error=f"{type(exc).__name__}: {exc}",
                )
                # Its tasks are retried elsewhere: stop them and exit.
                self.service.executor.cancel_all("the controller connection was lost")
                self.request_shutdown("the controller connection was lost")
        finally:
            drained.cancel()
        return None

    async def _follow_drain(self, link: ControllerLink) -> None:
        await link.drain_requested.wait()
        self.request_shutdown(f"drain requested by the controller: {link.drain_reason}")

    def request_shutdown(self, reason: str = "") -> None:
        """Ask the worker to drain and stop; safe to call many times."""
        if not self._shutdown.is_set():
            self.shutdown_reason = reason
            self._shutdown.set()

    async def wait_for_shutdown_request(self) -> None:
        await self._shutdown.wait()

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


async def serve(server: WorkerServer) -> None:
    """Run a worker until a shutdown is requested, then drain. Prints the ready line."""
    try:
        await server.start()
        print(f"listening on {server.address}", file=sys.__stdout__, flush=True)
        if server.metrics_url:
            print(f"metrics on {server.metrics_url}", file=sys.__stdout__, flush=True)
        await server.wait_for_shutdown_request()
    finally:
        await server.close()
