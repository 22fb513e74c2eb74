"""Prometheus metrics of a controller and of a worker, with ``prometheus-client``.

Each controller and each worker has its own :class:`~prometheus_client.CollectorRegistry`,
so an embedded controller, a test's controllers and the user's own metrics never
collide. :class:`MetricsServer` serves one registry at ``/metrics`` (plain HTTP,
read-only: names and counts, never task data), on 127.0.0.1 unless told otherwise.

Two kinds of series, both built by a collector when Prometheus scrapes:

* **Events** (tasks finished, replicas started, lost, recycled; durations) are
  counted as plain numbers on the controller's (or worker's) event loop, per
  environment (:class:`EnvironmentMetrics`): a few additions per task, no lock and
  no label lookup on the hot path. The library's own ``Counter`` and ``Histogram``
  take a lock per update, about a microsecond each, which a noop task would feel.
* **State** (queue depth, tasks running, replicas per phase, RSS, loop lag) is
  read from what the controller or worker already knows. A replica's series exist
  while it does: replica ids never pile up.

Every series carries an ``environment`` label; no label holds a task id. Example::

    curl -s localhost:9100/metrics | grep reuse_runtime_tasks_total
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from reuse_runtime.model import TaskResult, TaskState

if TYPE_CHECKING:
    from reuse_runtime.controller.service import ControllerService
    from reuse_runtime.worker.limiter import TaskLimiter
    from reuse_runtime.worker.monitor import ReplicaMonitor

PREFIX = "reuse_runtime"

#: Counted beside the terminal states: a task sent back to the queue to run again.
RETRIED = "retried"
#: Counted beside the terminal states: a child call answered from its parent's replay
#: log (it finished for an earlier attempt of its parent, and did not run again).
REPLAYED = "replayed"
#: ``reuse_runtime_replica_starts_total{result}``.
START_RESULTS = ("ready", "failed", "cancelled")
#: ``reuse_runtime_replica_losses_total{cause}`` (see ``controller.telemetry.loss_cause``).
LOSS_CAUSES = (
    "oom",
    "signal",
    "exit",
    "drained",
    "killed",
    "unresponsive",
    "disconnected",
    "unknown",
)
#: ``reuse_runtime_recycles_total{reason}``.
RECYCLE_REASONS = ("max_tasks", "max_rss", "max_lifetime", "code_version", "requested")
#: ``reuse_runtime_replicas{phase}``: the controller's replicas by phase; "external" for
#: workers someone else started and attached (``worker --environment``).
REPLICA_PHASES = ("starting", "ready", "draining", "external")
#: ``reuse_runtime_cold_start_seconds{until}``: launch to ready, and to the first task.
COLD_START_UNTIL = ("ready", "first_task")

TASK_SECONDS_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
)  # fmt: skip
STARTUP_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def _name(suffix: str) -> str:
    return f"{PREFIX}_{suffix}"


class HistogramTally:
    """Observations in fixed buckets, kept as plain numbers on one thread.

    The controller observes a few values per task on its event loop; a
    ``prometheus_client.Histogram`` would take a lock per bucket and per sum there
    (about a microsecond each). Scrapes read a snapshot from another thread:
    ``list()`` of the counts is atomic under the GIL.
    """

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative buckets, ``le`` as text, ending with ``+Inf`` (the count)."""
        counts = list(self.counts)
        cumulative, running = [], 0
        for bound, count in zip((*self.bounds, math.inf), counts, strict=True):
            running += count
            cumulative.append(("+Inf" if bound == math.inf else repr(bound), float(running)))
        return cumulative


class EnvironmentMetrics:
    """One environment's counts and durations; the pool's telemetry updates them.

    Every label value is set up front (at 0), so the dicts never change size while
    a scrape reads them, and ``rate()`` sees a series from the start.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.succeeded = 0
        self.failed = 0
        self.cancelled = 0
        self.timed_out = 0
        self.retried = 0
        self.replayed = 0
        self.rejected = 0
        self.duration = HistogramTally(TASK_SECONDS_BUCKETS)
        self.queued = HistogramTally(TASK_SECONDS_BUCKETS)
        self.starts = dict.fromkeys(START_RESULTS, 0)
        self.cold_start = {u: HistogramTally(STARTUP_SECONDS_BUCKETS) for u in COLD_START_UNTIL}
        self.losses = dict.fromkeys(LOSS_CAUSES, 0)
        self.recycles = dict.fromkeys(RECYCLE_REASONS, 0)

    def finished(self, state: TaskState) -> None:
        # Identity tests: an enum's hash is Python code, too slow for once per task.
        if state is TaskState.SUCCEEDED:
            self.succeeded += 1
        elif state is TaskState.FAILED:
            self.failed += 1
        elif state is TaskState.CANCELLED:
            self.cancelled += 1
        else:
            self.timed_out += 1

    def lost(self, cause: str) -> None:
        cause = cause if cause in self.losses else "unknown"
        self.losses[cause] += 1

    def recycled(self, reason: str) -> None:
        reason = reason if reason in self.recycles else "requested"
        self.recycles[reason] += 1

    def task_states(self) -> list[tuple[str, int]]:
        return [
            ("succeeded", self.succeeded),
            ("failed", self.failed),
            ("cancelled", self.cancelled),
            ("timed_out", self.timed_out),
            (RETRIED, self.retried),
            (REPLAYED, self.replayed),
        ]


def _task_families() -> tuple[CounterMetricFamily, HistogramMetricFamily]:
    """The task series controllers and workers share: same names, same meaning."""
    return (
        CounterMetricFamily(
            _name("tasks"),
            "Tasks that reached a terminal state, by state; 'retried' counts each time a "
            "task was sent back to run again, 'replayed' each child call answered from its "
            "parent's replay log.",
            labels=["environment", "state"],
        ),
        HistogramMetricFamily(
            _name("task_duration_seconds"),
            "Run time of a task attempt on its replica, in seconds.",
            labels=["environment"],
        ),
    )


class ControllerMetrics:
    """A controller's registry: its environments' counts, and its live state at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._environments: dict[str, EnvironmentMetrics] = {}
        self._service: ControllerService | None = None
        self.registry.register(_ControllerCollector(self))

    def environment(self, name: str) -> EnvironmentMetrics:
        """Environment ``name``'s metrics, made on first use. Call on the controller's loop."""
        bound = self._environments.get(name)
        if bound is None:
            bound = self._environments[name] = EnvironmentMetrics(name)
        return bound

    def environments(self) -> list[EnvironmentMetrics]:
        return list(self._environments.values())

    def watch(self, service: ControllerService) -> None:
        """Report ``service``'s live state (queues, replicas) at every scrape."""
        self._service = service

    @property
    def service(self) -> ControllerService | None:
        return self._service


class _ControllerCollector(Collector):
    """Every controller series, built when Prometheus scrapes.

    This runs in the HTTP server's thread while the pools live on the controller's
    loop, so it only takes snapshots that are atomic under the GIL (``list()`` of a
    dict's values, ``len()``, attribute reads) and never iterates a live container.
    """

    def __init__(self, metrics: ControllerMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return [*self._counters(), *self._gauges()]

    def collect(self) -> Iterable[Metric]:
        tasks, duration, queued, rejected, starts, cold, losses, recycles = self._counters()
        for env in self._metrics.environments():
            name = env.name
            for state, count in env.task_states():
                tasks.add_metric([name, state], count)
            duration.add_metric([name], env.duration.buckets(), env.duration.total)
            queued.add_metric([name], env.queued.buckets(), env.queued.total)
            rejected.add_metric([name], env.rejected)
            for result, count in list(env.starts.items()):
                starts.add_metric([name, result], count)
            for until, tally in env.cold_start.items():
                cold.add_metric([name, until], tally.buckets(), tally.total)
            for cause, count in list(env.losses.items()):
                losses.add_metric([name, cause], count)
            for reason, count in list(env.recycles.items()):
                recycles.add_metric([name, reason], count)
        families: list[Metric] = [tasks, duration, queued, rejected, starts, cold, losses, recycles]
        service = self._metrics.service
        if service is not None:
            families += self._live(service)
        return families

    def _live(self, service: ControllerService) -> list[Metric]:
        depth, running, replicas, rss, lag = self._gauges()
        totals: dict[str, tuple[int, int, dict[str, int]]] = {}
        for pool in list(service.pools.values()):
            name = pool.spec.name
            queued, busy, phases = totals.get(name) or (0, 0, dict.fromkeys(REPLICA_PHASES, 0))
            queued += len(pool.backlog)
            busy += pool.assigned
            for replica in list(pool.replicas.values()):
                # A worker someone else started counts as "external", whatever its phase.
                phase = "external" if replica.external else replica.phase.value
                phases[phase] = phases.get(phase, 0) + 1
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
        return [depth, running, replicas, rss, lag]

    @staticmethod
    def _counters() -> tuple[
        CounterMetricFamily, HistogramMetricFamily, HistogramMetricFamily, CounterMetricFamily,
        CounterMetricFamily, HistogramMetricFamily, CounterMetricFamily, CounterMetricFamily,
    ]:  # fmt: skip
        tasks, duration = _task_families()
        return (
            tasks,
            duration,
            HistogramMetricFamily(
                _name("task_queue_seconds"),
                "Time from a task's submission to its first start on a replica, in seconds.",
                labels=["environment"],
            ),
            CounterMetricFamily(
                _name("submissions_rejected"),
                "Tasks refused at submission because the environment's backlog was full.",
                labels=["environment"],
            ),
            CounterMetricFamily(
                _name("replica_starts"),
                "Replicas launched, by how the start ended: ready, failed, or cancelled "
                "(stopped before it was ready).",
                labels=["environment", "result"],
            ),
            HistogramMetricFamily(
                _name("cold_start_seconds"),
                "Seconds from a replica's launch until it was ready (until='ready') and "
                "until its first task started (until='first_task').",
                labels=["environment", "until"],
            ),
            CounterMetricFamily(
                _name("replica_losses"),
                "Replicas that ended without being asked to, by cause.",
                labels=["environment", "cause"],
            ),
            CounterMetricFamily(
                _name("recycles"),
                "Replicas drained and replaced because they reached a bound, by reason.",
                labels=["environment", "reason"],
            ),
        )

    @staticmethod
    def _gauges() -> tuple[
        GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily,
        GaugeMetricFamily,
    ]:  # fmt: skip
        return (
            GaugeMetricFamily(
                _name("queue_depth"),
                "Tasks accepted and waiting for a replica's slot.",
                labels=["environment"],
            ),
            GaugeMetricFamily(
                _name("tasks_running"),
                "Tasks on replicas (a parent waiting for its children included).",
                labels=["environment"],
            ),
            GaugeMetricFamily(
                _name("replicas"),
                "Replicas, by phase: starting, ready, draining; external for workers someone "
                "else started that joined the environment.",
                labels=["environment", "phase"],
            ),
            GaugeMetricFamily(
                _name("replica_rss_bytes"),
                "Resident memory of a replica, as it last reported.",
                labels=["environment", "replica"],
            ),
            GaugeMetricFamily(
                _name("event_loop_lag_seconds"),
                "The largest event-loop lag a replica saw over its last few seconds.",
                labels=["environment", "replica"],
            ),
        )


# ---------------------------------------------------------------- worker


class WorkerMetrics:
    """A worker's registry: its tasks, its limiter, module loads, memory and loop lag.

    The ``environment`` label is the one the controller names when the replica
    attaches (``standalone`` for a worker without a controller). Counts change on
    the worker's loop; scrapes read them from the HTTP thread.
    """

    def __init__(self, replica_id: str, limiter: TaskLimiter, monitor: ReplicaMonitor) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.replica_id = replica_id
        self.environment = ""
        self.tasks = EnvironmentMetrics("")
        self.loads = HistogramTally(STARTUP_SECONDS_BUCKETS)
        self.registry.register(_WorkerCollector(self, limiter, monitor))

    def bind(self, environment: str) -> None:
        """Name the environment; once (a replica serves one environment for life)."""
        if not self.environment:
            self.environment = environment or "standalone"

    def task_finished(self, result: TaskResult) -> None:
        self.tasks.finished(result.state)
        if result.duration > 0:
            self.tasks.duration.observe(result.duration)

    def module_loaded(self, module: str, seconds: float) -> None:
        self.loads.observe(seconds)


class _WorkerCollector(Collector):
    """A worker's series, built when Prometheus scrapes (in the HTTP thread).

    Reads only what is safe to read there: plain counts, the limiter's statistics,
    and the monitor's lag, which a blocked loop cannot hide (the time since the
    loop's last heartbeat counts too).
    """

    def __init__(
        self, metrics: WorkerMetrics, limiter: TaskLimiter, monitor: ReplicaMonitor
    ) -> None:
        self._metrics = metrics
        self._limiter = limiter
        self._monitor = monitor

    def describe(self) -> Iterable[Metric]:
        return [*_task_families(), *self._families()]

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        name = metrics.environment
        if not name:
            return  # not attached yet: nothing ran, and no environment to label with
        tasks, duration = _task_families()
        for state, count in metrics.tasks.task_states():
            tasks.add_metric([name, state], count)
        duration.add_metric([name], metrics.tasks.duration.buckets(), metrics.tasks.duration.total)
        loads, capacity, limiter, idle, rss, lag = self._families()
        loads.add_metric([name], metrics.loads.buckets(), metrics.loads.total)
        stats = self._limiter.statistics()
        capacity.add_metric([name], stats.capacity)
        limiter.add_metric([name, "active"], stats.active)
        limiter.add_metric([name, "waiting"], stats.waiting)
        limiter.add_metric([name, "suspended"], stats.suspended)
        idle.add_metric([name], stats.idle_seconds)
        rss.add_metric([name, metrics.replica_id], self._monitor.rss())
        lag.add_metric([name, metrics.replica_id], self._monitor.current_lag())
        yield from (tasks, duration, loads, capacity, limiter, idle, rss, lag)

    @staticmethod
    def _families() -> tuple[
        HistogramMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily,
        GaugeMetricFamily, GaugeMetricFamily,
    ]:  # fmt: skip
        return (
            HistogramMetricFamily(
                _name("module_load_seconds"),
                "Seconds to import a task module on this replica (once per module version).",
                labels=["environment"],
            ),
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
