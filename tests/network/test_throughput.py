"""Throughput across round trips: batching and prefetch hide them.

The same deployment at 0, 10 and 50 ms of round trip between hosts, measured as
:mod:`tests.network.throughput` says.

The promise: at 50 ms, 100 ms tasks keep at least 90% of their throughput at 0 ms.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.network.report import THROUGHPUT
from tests.network.throughput import measure

pytestmark = pytest.mark.network

ROUND_TRIPS_MS = (0, 10, 50)


@pytest.mark.timeout(300)
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
