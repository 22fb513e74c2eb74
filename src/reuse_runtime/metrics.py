"""Prometheus metrics, the shared parts: names, label values, tallies, and the server.

Each controller and each worker has its own :class:`~prometheus_client.CollectorRegistry`,
so an embedded controller, a test's controllers and the user's own metrics never
collide. :class:`MetricsServer` serves one registry at ``/metrics`` (plain HTTP,
read-only: names and counts, never task data), on 127.0.0.1 unless told otherwise.
The registries and their collectors live next to what they read:
:class:`~reuse_runtime.controller.metrics.ControllerMetrics` and
:class:`~reuse_runtime.worker.metrics.WorkerMetrics`.

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
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from reuse_runtime.model import TaskState

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


def metric_name(suffix: str) -> str:
    """``reuse_runtime_<suffix>``: every series of ours carries the prefix."""
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
        self.late_results = 0
        self.registrations = 0
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


def task_families() -> tuple[CounterMetricFamily, HistogramMetricFamily]:
    """The task series controllers and workers share: same names, same meaning."""
    return (
        CounterMetricFamily(
            metric_name("tasks"),
            "Tasks that reached a terminal state, by state; 'retried' counts each time a "
            "task was sent back to run again, 'replayed' each child call answered from its "
            "parent's replay log.",
            labels=["environment", "state"],
        ),
        HistogramMetricFamily(
            metric_name("task_duration_seconds"),
            "Run time of a task attempt on its replica, in seconds.",
            labels=["environment"],
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
