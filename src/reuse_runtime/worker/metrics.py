"""`WorkerMetrics`: a worker's Prometheus registry, and the collector that reads it.

Its tasks are counted on the worker's loop; its limiter, memory and loop lag are
read at scrape time from the HTTP thread. The names and label values shared with
the controller's series are in :mod:`reuse_runtime.metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from reuse_runtime.metrics import (
    STARTUP_SECONDS_BUCKETS,
    EnvironmentMetrics,
    HistogramTally,
    metric_name,
    task_families,
)
from reuse_runtime.model import TaskResult
from reuse_runtime.worker.limiter import TaskLimiter
from reuse_runtime.worker.monitor import ReplicaMonitor


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
        return [*task_families(), *self._families()]

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        name = metrics.environment
        if not name:
            return  # not attached yet: nothing ran, and no environment to label with
        tasks, duration = task_families()
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
                metric_name("module_load_seconds"),
                "Seconds to import a task module on this replica (once per module version).",
                labels=["environment"],
            ),
            GaugeMetricFamily(
                metric_name("limiter_capacity"),
                "Slots of this replica's limiter: tasks that may run at once.",
                labels=["environment"],
            ),
            GaugeMetricFamily(
                metric_name("limiter_tasks"),
                "Tasks at this replica's limiter: active (holding a slot), waiting for one, "
                "or suspended (a parent that lent its slot while its children run).",
                labels=["environment", "state"],
            ),
            GaugeMetricFamily(
                metric_name("idle_seconds"),
                "Seconds since this replica last had a task; 0 while busy.",
                labels=["environment"],
            ),
            GaugeMetricFamily(
                metric_name("replica_rss_bytes"),
                "Resident memory of this replica.",
                labels=["environment", "replica"],
            ),
            GaugeMetricFamily(
                metric_name("event_loop_lag_seconds"),
                "The largest event-loop lag over the last few seconds, or how long the loop "
                "has been blocked right now, whichever is larger.",
                labels=["environment", "replica"],
            ),
        )
