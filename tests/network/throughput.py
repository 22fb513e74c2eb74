"""Throughput through test hosts: the measurement of test_throughput.py and of
``python -m benchmarks.network``.

The deployment of :class:`~tests.network.cluster.Cluster` through the delaying
switch (0 ms too, so only the delay differs): a client on d sends noop tasks, then
100 ms tasks, to the controller on a, which runs them on two workers of 50 slots
on b and c (its own replica has one slot: see ``fault_tasks.rate``). The rate is
read from the tasks' own log over the middle 80% of the run (its steady state: the
first and last round trips are latency, not throughput), and from the client
(submission to last result) for the record.
"""

from __future__ import annotations

from pathlib import Path

from tests.network.cluster import Cluster, finished, wait_for

NOOPS = 5000
TIMED = 3000


def measure(
    directory: Path, rtt_ms: float, noops: int = NOOPS, timed: int = TIMED
) -> dict[str, float]:
    """Tasks per second at ``rtt_ms``: ``noop``/``timed`` (steady), ``*_e2e`` (client's)."""
    rates: dict[str, float] = {}
    with Cluster(directory, delay_ms=rtt_ms / 2) as cluster:
        cluster.start_controller()
        assert finished(cluster.drive("--flat", "1"), 120)["succeeded"] == 1
        for host in ("b", "c"):
            cluster.start_worker(cluster[host], concurrency=50, environment="netrate")
        wait_for(
            lambda: cluster.ready("worker-b", "worker-c", environment="netrate"),
            60,
            "the workers attached",
        )
        # A warm-up: the workers import the tasks' module, and learn their round trip.
        assert finished(cluster.drive("--flat", "500"), 120)["succeeded"] == 500
        for name, count, seconds in (("noop", noops, 0.0), ("timed", timed, 0.1)):
            Path(cluster.log).unlink()
            report = finished(cluster.drive("--flat", str(count), "--seconds", str(seconds)), 240)
            assert report["succeeded"] == count and report["duplicates"] == 0, report
            rates[name] = steady_rate([e.time for e in cluster.executions()])
            rates[f"{name}_e2e"] = count / (report["ended"] - report["began"])
    return rates


def steady_rate(starts: list[float]) -> float:
    """Tasks started per second between the 10th and the 90th percentile of start times."""
    starts = sorted(starts)
    low, high = len(starts) // 10, len(starts) * 9 // 10
    return (high - low) / max(starts[high] - starts[low], 1e-9)
