"""`ControllerMetrics`: a controller's Prometheus registry, and the collector that reads it.

Events (tasks finished, replicas started, lost, recycled) are counted per
environment by each pool's telemetry (:class:`~reuse_runtime.metrics.EnvironmentMetrics`);
state (queue depth, tasks running, replicas per phase, RSS, loop lag) is read from
the pools at scrape time. The names and label values shared with the worker's
series are in :mod:`reuse_runtime.metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from reuse_runtime.controller.pool import ReplicaPool
from reuse_runtime.metrics import REPLICA_PHASES, EnvironmentMetrics, metric_name, task_families


class CodeSource(Protocol):
    """What a scrape reads of the controller's code bundles
    (:class:`~reuse_runtime.controller.versions.CodeVersions`)."""

    @property
    def bundles_received(self) -> int: ...


class PoolSource(Protocol):
    """What a scrape reads the live state from: the controller's pools, by key, and its
    code bundles (:class:`~reuse_runtime.controller.service.ControllerService`)."""

    @property
    def pools(self) -> Mapping[str, ReplicaPool]: ...

    @property
    def code(self) -> CodeSource: ...


class ControllerMetrics:
    """A controller's registry: its environments' counts, and its live state at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._environments: dict[str, EnvironmentMetrics] = {}
        self._service: PoolSource | None = None
        self.registry.register(_ControllerCollector(self))

    def environment(self, name: str) -> EnvironmentMetrics:
        """Environment ``name``'s metrics, made on first use. Call on the controller's loop."""
        bound = self._environments.get(name)
        if bound is None:
            bound = self._environments[name] = EnvironmentMetrics(name)
        return bound

    def environments(self) -> list[EnvironmentMetrics]:
        return list(self._environments.values())

    def watch(self, service: PoolSource) -> None:
        """Report ``service``'s live state (queues, replicas) at every scrape."""
        self._service = service

    @property
    def service(self) -> PoolSource | None:
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
        tasks, duration, queued, rejected, late, starts, cold, losses, recycles, registrations = (
            self._counters()
        )
        for env in self._metrics.environments():
            name = env.name
            for state, count in env.task_states():
                tasks.add_metric([name, state], count)
            duration.add_metric([name], env.duration.buckets(), env.duration.total)
            queued.add_metric([name], env.queued.buckets(), env.queued.total)
            rejected.add_metric([name], env.rejected)
            late.add_metric([name], env.late_results)
            registrations.add_metric([name], env.registrations)
            for result, count in list(env.starts.items()):
                starts.add_metric([name, result], count)
            for until, tally in env.cold_start.items():
                cold.add_metric([name, until], tally.buckets(), tally.total)
            for cause, count in list(env.losses.items()):
                losses.add_metric([name, cause], count)
            for reason, count in list(env.recycles.items()):
                recycles.add_metric([name, reason], count)
        families: list[Metric] = [
            tasks, duration, queued, rejected, late, starts, cold, losses, recycles,
            registrations,
        ]  # fmt: skip
        service = self._metrics.service
        if service is not None:
            families += self._live(service)
        return families

    def _live(self, service: PoolSource) -> list[Metric]:
        depth, running, replicas, rss, lag = self._gauges()
        bundles = CounterMetricFamily(
            metric_name("code_bundles_received"),
            "Code bundles uploaded to this controller; a client whose bundle is here "
            "already sends none.",
            value=service.code.bundles_received,
        )
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
        return [depth, running, replicas, rss, lag, bundles]

    @staticmethod
    def _counters() -> tuple[
        CounterMetricFamily, HistogramMetricFamily, HistogramMetricFamily, CounterMetricFamily,
        CounterMetricFamily, CounterMetricFamily, HistogramMetricFamily, CounterMetricFamily,
        CounterMetricFamily, CounterMetricFamily,
    ]:  # fmt: skip
        tasks, duration = task_families()
        return (
            tasks,
            duration,
            HistogramMetricFamily(
                metric_name("task_queue_seconds"),
                "Time from a task's submission to its first start on a replica, in seconds.",
                labels=["environment"],
            ),
            CounterMetricFamily(
                metric_name("submissions_rejected"),
                "Tasks refused at submission because the environment's backlog was full.",
                labels=["environment"],
            ),
            CounterMetricFamily(
                metric_name("late_results"),
                "Results that came after their task had ended or been retried elsewhere (a "
                "replica declared lost that came back, say): discarded, never delivered.",
                labels=["environment"],
            ),
            CounterMetricFamily(
                metric_name("replica_starts"),
                "Replicas launched, by how the start ended: ready, failed, or cancelled "
                "(stopped before it was ready).",
                labels=["environment", "result"],
            ),
            HistogramMetricFamily(
                metric_name("cold_start_seconds"),
                "Seconds from a replica's launch until it was ready (until='ready') and "
                "until its first task started (until='first_task').",
                labels=["environment", "until"],
            ),
            CounterMetricFamily(
                metric_name("replica_losses"),
                "Replicas that ended without being asked to, by cause.",
                labels=["environment", "cause"],
            ),
            CounterMetricFamily(
                metric_name("recycles"),
                "Replicas drained and replaced because they reached a bound, by reason.",
                labels=["environment", "reason"],
            ),
            CounterMetricFamily(
                metric_name("environment_registrations"),
                "RegisterEnvironment calls the controller took (a client registers each "
                "environment once, however many calls start at the same time).",
                labels=["environment"],
            ),
        )

    @staticmethod
    def _gauges() -> tuple[
        GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily,
        GaugeMetricFamily,
    ]:  # fmt: skip
        return (
            GaugeMetricFamily(
                metric_name("queue_depth"),
                "Tasks accepted and waiting for a replica's slot.",
                labels=["environment"],
            ),
            GaugeMetricFamily(
                metric_name("tasks_running"),
                "Tasks on replicas (a parent waiting for its children included).",
                labels=["environment"],
            ),
            GaugeMetricFamily(
                metric_name("replicas"),
                "Replicas, by phase: starting, ready, draining; external for workers someone "
                "else started that joined the environment.",
                labels=["environment", "phase"],
            ),
            GaugeMetricFamily(
                metric_name("replica_rss_bytes"),
                "Resident memory of a replica, as it last reported.",
                labels=["environment", "replica"],
            ),
            GaugeMetricFamily(
                metric_name("event_loop_lag_seconds"),
                "The largest event-loop lag a replica saw over its last few seconds.",
                labels=["environment", "replica"],
            ),
        )
