"""Prometheus metrics of a controller and of a worker, with ``prometheus-client``.

Each controller and each worker has its own :class:`~prometheus_client.CollectorRegistry`,
so an embedded controller, a test's controllers and the user's own metrics never
collide. :class:`MetricsServer` serves one registry at ``/metrics`` (plain HTTP,
read-only: names and counts, never task data), on 127.0.0.1 unless told otherwise.

Two kinds of series:

* **Events** (tasks finished, replicas started, lost, recycled; durations) are
  counters and histograms. Their labelled children are bound once per environment
  (:class:`EnvironmentMetrics`), so the hot path never looks a label up.
* **State** (queue depth, tasks running, replicas per phase, RSS, loop lag) is
  read when Prometheus scrapes, by a collector, from what the controller or
  worker already knows. A replica's series exist while it does: replica ids
  never pile up in the registry.

Every series carries an ``environment`` label; no label holds a task id. Example::

    curl -s localhost:9100/metrics | grep reuse_runtime_tasks_total
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from reuse_runtime.model import TaskResult, TaskState

if TYPE_CHECKING:
    from reuse_runtime.controller.service import ControllerService
    from reuse_runtime.worker.limiter import TaskLimiter
    from reuse_runtime.worker.monitor import ReplicaMonitor

PREFIX = "reuse_runtime"

#: The ``state`` label of ``reuse_runtime_tasks_total``, per terminal state.
STATE_LABELS = {
    TaskState.SUCCEEDED: "succeeded",
    TaskState.FAILED: "failed",
    TaskState.CANCELLED: "cancelled",
    TaskState.TIMED_OUT: "timed_out",
}
#: Counted beside the terminal states: a task sent back to the queue to run again.
RETRIED = "retried"
#: ``reuse_runtime_replica_starts_total{result}``.
START_RESULTS = ("ready", "failed", "cancelled")
#: ``reuse_runtime_replica_losses_total{cause}`` (see ``controller.telemetry.loss_cause``).
LOSS_CAUSES = ("oom", "signal", "exit", "drained", "killed", "disconnected", "unknown")
#: ``reuse_runtime_recycles_total{reason}``.
RECYCLE_REASONS = ("max_tasks", "max_rss", "max_lifetime", "code_version", "requested")
#: ``reuse_runtime_cold_start_seconds{until}``: launch to ready, and to the first task.
COLD_START_UNTIL = ("ready", "first_task")

TASK_SECONDS_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
)  # fmt: skip
STARTUP_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def _name(suffix: str) -> str:
    return f"{PREFIX}_{suffix}"


class _TaskFamilies:
    """The task series that controllers and workers share: same names, same meaning."""

    def __init__(self, registry: CollectorRegistry, where: str) -> None:
        self.tasks = Counter(
            _name("tasks"),
            f"Tasks that reached a terminal state {where}, by state; 'retried' counts "
            f"each time a task was sent back to run again.",
            ["environment", "state"],
            registry=registry,
        )
        self.duration = Histogram(
            _name("task_duration_seconds"),
            "Run time of a task attempt on its replica, in seconds.",
            ["environment"],
            buckets=TASK_SECONDS_BUCKETS,
            registry=registry,
        )


@dataclass(frozen=True, eq=False)
class EnvironmentMetrics:
    """One environment's labelled children, bound once: what the pool's telemetry updates."""

    states: dict[TaskState, Any]  # Counter children, per terminal state
    succeeded: Any
    retried: Any
    rejected: Any
    duration: Any
    queued: Any
    starts: dict[str, Any]
    cold_start: dict[str, Any]
    losses: dict[str, Any]
    recycles: dict[str, Any]

    def finished(self, state: TaskState) -> Any:
        # Identity tests: an enum's hash is Python code, too slow for once per task.
        if state is TaskState.SUCCEEDED:
            return self.succeeded
        return self.states[state]

    def loss(self, cause: str) -> Any:
        child = self.losses.get(cause)
        return child if child is not None else self.losses["unknown"]

    def recycle(self, reason: str) -> Any:
        child = self.recycles.get(reason)
        return child if child is not None else self.recycles["requested"]


class ControllerMetrics:
    """The controller's registry: event series, plus a collector over its live state."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self._tasks = _TaskFamilies(registry, "at the controller")
        self._queued = Histogram(
            _name("task_queue_seconds"),
            "Time from a task's submission to its first start on a replica, in seconds.",
            ["environment"],
            buckets=TASK_SECONDS_BUCKETS,
            registry=registry,
        )
        self._rejected = Counter(
            _name("submissions_rejected"),
            "Tasks refused at submission because the environment's backlog was full.",
            ["environment"],
            registry=registry,
        )
        self._starts = Counter(
            _name("replica_starts"),
            "Replicas launched, by how the start ended: ready, failed, or cancelled "
            "(stopped before it was ready).",
            ["environment", "result"],
            registry=registry,
        )
        self._cold_start = Histogram(
            _name("cold_start_seconds"),
            "Seconds from a replica's launch until it was ready (until='ready') and until "
            "its first task started (until='first_task').",
            ["environment", "until"],
            buckets=STARTUP_SECONDS_BUCKETS,
            registry=registry,
        )
        self._losses = Counter(
            _name("replica_losses"),
            "Replicas that ended without being asked to, by cause.",
            ["environment", "cause"],
            registry=registry,
        )
        self._recycles = Counter(
            _name("recycles"),
            "Replicas drained and replaced because they reached a bound, by reason.",
            ["environment", "reason"],
            registry=registry,
        )
        self._bound: dict[str, EnvironmentMetrics] = {}
        self._lock = threading.Lock()

    def environment(self, name: str) -> EnvironmentMetrics:
        """The children of environment ``name``, bound on first use (every label at 0)."""
        with self._lock:
            bound = self._bound.get(name)
            if bound is None:
                tasks = self._tasks
                bound = self._bound[name] = EnvironmentMetrics(
                    states={
                        s: tasks.tasks.labels(name, label) for s, label in STATE_LABELS.items()
                    },
                    succeeded=tasks.tasks.labels(name, STATE_LABELS[TaskState.SUCCEEDED]),
                    retried=tasks.tasks.labels(name, RETRIED),
                    rejected=self._rejected.labels(name),
                    duration=tasks.duration.labels(name),
                    queued=self._queued.labels(name),
                    starts={r: self._starts.labels(name, r) for r in START_RESULTS},
                    cold_start={u: self._cold_start.labels(name, u) for u in COLD_START_UNTIL},
                    losses={c: self._losses.labels(name, c) for c in LOSS_CAUSES},
                    recycles={r: self._recycles.labels(name, r) for r in RECYCLE_REASONS},
                )
            return bound

    def watch(self, service: ControllerService) -> None:
        """Report ``service``'s live state (queues, replicas) at every scrape."""
        self.registry.register(_ControllerState(service))


class _ControllerState(Collector):
    """Gauges read from the controller's pools when Prometheus scrapes.

    This runs in the HTTP server's thread while the pools live on the controller's
    loop, so it only takes snapshots that are atomic under the GIL (``list()`` of a
    dict's values, ``len()``, attribute reads) and never iterates a live container.
    """

    def __init__(self, service: ControllerService) -> None:
        self._service = service

    def describe(self) -> Iterable[Metric]:
        return self._families()[0]

    def collect(self) -> Iterable[Metric]:
        families, depth, running, replicas, rss, lag = self._families()
        from reuse_runtime.controller.autoscaler import ReplicaPhase

        totals: dict[str, tuple[int, int, dict[str, int]]] = {}
        for pool in list(self._service.pools.values()):
            name = pool.spec.name
            queued, busy, phases = totals.get(name) or (0, 0, {p.value: 0 for p in ReplicaPhase})
            queued += len(pool.backlog)
            busy += pool.assigned
            for replica in list(pool.replicas.values()):
                phases[replica.phase.value] = phases.get(replica.phase.value, 0) + 1
                report = replica.report
                if report is not None:
                    rss.add_metric([name, replica.replica_id], report.rss_bytes)
                    lag.add_metric([name, replica.replica_id], report.loop_lag)
            totals[name] = (queued, busy, phases)
        for name, (queued, busy, phases) in totals.items():
            depth.add_metric([name], queued)
            running.add_metric([name], busy)
            for phase, count in phases.items():
                replicas.add_metric([name, phase], count)
        return families

    @staticmethod
    def _families() -> tuple[
        list[Metric],
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
    ]:
        depth = GaugeMetricFamily(
            _name("queue_depth"),
            "Tasks accepted and waiting for a replica's slot.",
            labels=["environment"],
        )
        running = GaugeMetricFamily(
            _name("tasks_running"),
            "Tasks on replicas (a parent waiting for its children included).",
            labels=["environment"],
        )
        replicas = GaugeMetricFamily(
            _name("replicas"), "Replicas, by phase.", labels=["environment", "phase"]
        )
        rss = GaugeMetricFamily(
            _name("replica_rss_bytes"),
            "Resident memory of a replica, as it last reported.",
            labels=["environment", "replica"],
        )
        lag = GaugeMetricFamily(
            _name("event_loop_lag_seconds"),
            "The largest event-loop lag a replica saw over its last few seconds.",
            labels=["environment", "replica"],
        )
        return [depth, running, replicas, rss, lag], depth, running, replicas, rss, lag


# ---------------------------------------------------------------- worker


class WorkerMetrics:
    """A worker's registry: its tasks, its limiter, module loads, memory and loop lag.

    The ``environment`` label is the one the controller names when the replica
    attaches (``standalone`` for a worker without a controller); task series are
    bound then, before the first task can arrive.
    """

    def __init__(self, replica_id: str, limiter: TaskLimiter, monitor: ReplicaMonitor) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.replica_id = replica_id
        self.environment = ""
        self._tasks = _TaskFamilies(self.registry, "on this replica")
        self._loads = Histogram(
            _name("module_load_seconds"),
            "Seconds to import a task module on this replica (once per module version).",
            ["environment"],
            buckets=STARTUP_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self._states: dict[TaskState, Any] = {}
        self._duration: Any = None
        self._load: Any = None
        self.registry.register(_WorkerState(self, limiter, monitor))

    def bind(self, environment: str) -> None:
        """Name the environment; once (a replica serves one environment for life)."""
        if self.environment:
            return
        name = environment or "standalone"
        self._states = {s: self._tasks.tasks.labels(name, x) for s, x in STATE_LABELS.items()}
        self._tasks.tasks.labels(name, RETRIED)  # exported at 0: retries are the controller's
        self._duration = self._tasks.duration.labels(name)
        self._load = self._loads.labels(name)
        self.environment = name

    def task_finished(self, result: TaskResult) -> None:
        child = self._states.get(result.state)
        if child is None:
            return
        child.inc()
        if result.duration > 0:
            self._duration.observe(result.duration)

    def module_loaded(self, module: str, seconds: float) -> None:
        if self._load is not None:
            self._load.observe(seconds)


class _WorkerState(Collector):
    """The limiter's statistics, memory and loop lag, read at scrape time.

    Runs in the HTTP thread: reads only what is safe to read there (the limiter's
    counters, and the monitor's lag, which a blocked loop cannot hide: the time
    since the loop's last heartbeat counts too).
    """

    def __init__(
        self, metrics: WorkerMetrics, limiter: TaskLimiter, monitor: ReplicaMonitor
    ) -> None:
        self._metrics = metrics
        self._limiter = limiter
        self._monitor = monitor

    def describe(self) -> Iterable[Metric]:
        return list(self._families(""))

    def collect(self) -> Iterator[Metric]:
        name = self._metrics.environment
        if not name:
            return  # not attached yet: no environment to label with
        stats = self._limiter.statistics()
        capacity, tasks, idle, rss, lag = self._families(name)
        replica = self._metrics.replica_id
        capacity.add_metric([name], stats.capacity)
        tasks.add_metric([name, "active"], stats.active)
        tasks.add_metric([name, "waiting"], stats.waiting)
        tasks.add_metric([name, "suspended"], stats.suspended)
        idle.add_metric([name], stats.idle_seconds)
        rss.add_metric([name, replica], self._monitor.rss())
        lag.add_metric([name, replica], self._monitor.current_lag())
        yield from (capacity, tasks, idle, rss, lag)

    @staticmethod
    def _families(name: str) -> tuple[
        GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily,
        GaugeMetricFamily,
    ]:  # fmt: skip
        return (
            GaugeMetricFamily(
                _name("limiter_capacity"),
                "Slots of this replica's limiter: tasks that may run at once.",
                labels=["environment"],
            ),
            GaugeMetricFamily(
                _name("limiter_tasks"),
                "Tasks at this replica's limiter: active (holding a slot), waiting for one, "
                "or suspended (a parent that lent its slot while its children run).",
                labels=["environment", "state"],
            ),
            GaugeMetricFamily(
                _name("idle_seconds"),
                "Seconds since this replica last had a task; 0 while busy.",
                labels=["environment"],
            ),
            GaugeMetricFamily(
                _name("replica_rss_bytes"),
                "Resident memory of this replica.",
                labels=["environment", "replica"],
            ),
            GaugeMetricFamily(
                _name("event_loop_lag_seconds"),
                "The largest event-loop lag over the last few seconds, or how long the loop "
                "has been blocked right now, whichever is larger.",
                labels=["environment", "replica"],
            ),
        )


# ---------------------------------------------------------------- serving


class MetricsServer:
    """``/metrics`` of one registry over HTTP, in a daemon thread.

    ``close()`` is idempotent and safe before ``start()``.
    """

    def __init__(self, registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 0):
        self._registry = registry
        self._host = host
        self._port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the metrics server is not started")
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        host = self._host if ":" not in self._host else f"[{self._host}]"
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> None:
        try:
            self._server, self._thread = start_http_server(
                self._port, addr=self._host, registry=self._registry
            )
        except OSError as exc:
            from reuse_runtime.errors import BadInputError

            raise BadInputError(
                f"cannot serve metrics on {self._host}:{self._port}: {exc.strerror or exc}; "
                f"pick another --metrics-port (0 picks a free one)"
            ) from None

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
