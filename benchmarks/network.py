"""Throughput across a network: noop and 100 ms tasks at 0, 10 and 50 ms of round trip.

    sudo python -m benchmarks.network [--rtts 0 10 50] [--noops 5000] [--timed 3000]

Hosts are network namespaces joined by the tests' delaying switch
(:mod:`tests.network.throughput`): a client host, a controller host, two worker
hosts of 50 slots each; everything it makes is removed at the end. Prints one
``BENCH-RESULT`` line: each round trip's steady rates (tasks started per second
over the middle 80% of the run) and the client's own (submission to last result),
or ``skipped`` with the reason when namespaces cannot be made here (they need root,
iproute2, nftables and ethtool).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import emit


def run(rtts: list[float], noops: int, timed: int) -> dict[str, Any]:
    from tests.network.netns import available

    why = available()
    if why:
        return {"skipped": f"network namespaces are unavailable: {why}"}
    from tests.network.throughput import measure

    rates: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-network-") as directory:
        for rtt in rtts:
            began = time.monotonic()
            rates[f"{rtt:g}"] = measure(Path(directory) / f"rtt{rtt:g}", rtt, noops, timed)
            rates[f"{rtt:g}"]["seconds"] = time.monotonic() - began
    return {"noops": noops, "timed": timed, "rtt_ms": rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rtts", type=float, nargs="+", default=[0.0, 10.0, 50.0])
    parser.add_argument("--noops", type=int, default=5000)
    parser.add_argument("--timed", type=int, default=3000)
    args = parser.parse_args()
    emit(run(args.rtts, args.noops, args.timed))


if __name__ == "__main__":
    main()
