"""The multi-host harness itself: hosts reach each other, and each fault does what it says."""

from __future__ import annotations

import json
import sys

import pytest

from tests.network.netns import Host, Network

pytestmark = pytest.mark.network

# Round trips of TCP connects from one host to another: min, median, how many failed.
_PROBE = r"""
import json, socket, sys, time
host, port, count, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
times, failed = [], 0
for _ in range(count):
    start = time.monotonic()
    try:
        socket.create_connection((host, port), timeout).close()
        times.append(time.monotonic() - start)
    except OSError:
        failed += 1
times.sort()
print(json.dumps({"min": times[0] if times else None, "max": times[-1] if times else None,
                  "median": times[len(times) // 2] if times else None, "failed": failed}))
"""
_LISTEN = "import socket,sys; s=socket.create_server(('0.0.0.0', 7000)); print('up', flush=True)\n"
_LISTEN += "while True: s.accept()[0].close()"


def _listen(host: Host) -> None:
    server = host.python("-c", _LISTEN, stdout=-1)
    assert server.stdout is not None and server.stdout.readline().strip() == "up"


def _probe(host: Host, target: Host, count: int = 10, timeout: float = 1.0) -> dict[str, float]:
    done = host.run(
        sys.executable, "-c", _PROBE, target.address, "7000", str(count), str(timeout),
        timeout=count * timeout + 30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_hosts_reach_each_other_and_a_partition_cuts_and_heals(network_ready: None) -> None:
    with Network(["a", "b"]) as net:
        _listen(net["a"])
        assert _probe(net["b"], net["a"])["failed"] == 0
        net["b"].partition()
        assert _probe(net["b"], net["a"], count=2, timeout=0.5)["failed"] == 2
        net["b"].heal()
        assert _probe(net["b"], net["a"])["failed"] == 0


def test_the_delaying_switch_adds_its_round_trip(network_ready: None) -> None:
    with Network(["a", "b"], delay_ms=25) as net:
        _listen(net["a"])
        rtt = _probe(net["b"], net["a"])
        # A connect is one round trip: SYN there, SYN-ACK back, each held 25 ms.
        assert rtt["failed"] == 0 and 0.050 <= rtt["min"] < 0.080, rtt


def test_loss_drops_some_packets_and_not_all(network_ready: None) -> None:
    with Network(["a", "b"]) as net:
        _listen(net["a"])
        net["b"].lose(30)
        # At 30% per packet each way, a connect's SYN or SYN-ACK is often lost: TCP
        # resends after 1 s, so some connects take over a second, and most still succeed.
        result = _probe(net["b"], net["a"], count=10, timeout=2.5)
        assert result["failed"] < 10, result
        # A connect is clean about half the time here: 10 clean ones in a row would mean no loss.
        assert result["failed"] > 0 or result["max"] >= 0.9, result
        net["b"].heal()
        assert _probe(net["b"], net["a"])["failed"] == 0
