"""Throughput across round trips: batching and prefetch hide them.

The same deployment through the delaying switch at 0, 10 and 50 ms of round trip
between hosts (0 through the same switch, so only the delay differs): a client on
d sends noop tasks, then 100 ms tasks, to the controller on a, which runs them on
two workers of 50 slots on b and c (its own replica has one slot: see
``fault_tasks.rate``). The rate is read from the tasks' own log, over the middle
80% of the run (its steady state; the first and last round trips are latency, not
throughput), and from the client (submission to last result) for the record.

The promise: at 50 ms, 100 ms tasks keep at least 90% of their throughput at 0 ms.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.network.cluster import Cluster, finished, wait_for
from tests.network.report import THROUGHPUT

pytestmark = pytest.mark.network

ROUND_TRIPS_MS = (0, 10, 50)
NOOPS = 5000
TIMED = 3000


def measure(directory: Path, rtt_ms: float) -> dict[str, float]:
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
        for name, count, seconds in (("noop", NOOPS, 0.0), ("timed", TIMED, 0.1)):
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


@pytest.mark.timeout(480)
def test_100_ms_tasks_keep_their_throughput_at_50_ms(network_ready: None, tmp_path: Path) -> None:
    rates = {}
    for rtt in ROUND_TRIPS_MS:
        began = time.monotonic()
        rates[rtt] = measure(tmp_path / f"rtt{rtt}", rtt)
        print(f"{rtt} ms: {rates[rtt]} ({time.monotonic() - began:.0f} s)")
    zero = rates[0]
    for rtt, got in rates.items():
        ratio = {key: got[key] / zero[key] for key in got}
        THROUGHPUT.append(
            f"{rtt:>3} ms RTT  noop {got['noop']:>7.0f}/s ({ratio['noop']:.2f}x)  client "
            f"{got['noop_e2e']:>6.0f}/s   100 ms tasks {got['timed']:>5.0f}/s "
            f"({ratio['timed']:.2f}x)  client {got['timed_e2e']:>4.0f}/s "
            f"({ratio['timed_e2e']:.2f}x)"
        )
    print("\n".join(THROUGHPUT))
    ratio = rates[50]["timed"] / zero["timed"]
    assert ratio >= 0.9, f"100 ms tasks at 50 ms RTT: {ratio:.2f} of their throughput at 0 ms"
