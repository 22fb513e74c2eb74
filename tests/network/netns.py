"""Test hosts in network namespaces: several machines on one, joined by a switch.

A :class:`Network` makes one namespace per host, each with an ``eth0`` on a test
subnet of its own, and a switch namespace that joins them: the kernel's bridge, or
(with ``delay_ms``) a delaying switch of the tests' own (:mod:`tests.network.switch`),
since this kernel has no ``netem``. Faults are made with what the kernel has:

- a partition: nftables drop rules in the host's namespace (silence, no resets);
- packet loss: an nftables ``numgen random`` drop rule on the host's traffic;
- a slow link: ``tc ... tbf`` on both ends of the host's cable;
- latency: the delaying switch, per frame, both ways.

Traffic only ever goes between the namespaces a :class:`Network` made itself, on
addresses of its own subnet. Everything it made (namespaces, links, the processes it
started) is removed by :meth:`Network.close`, by name and by pid.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SWITCH = Path(__file__).with_name("switch.py")


def available() -> str:
    """Why network namespaces cannot be made here, or "" if they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft", "tc", "ethtool"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install iproute2 nftables ethtool)"
    probe = f"rrprobe{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return ""


def _sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


@dataclass
class Host:
    """One test machine: a network namespace with ``eth0`` at :attr:`address`."""

    name: str
    namespace: str
    address: str
    port: str  # the switch's side of this host's cable
    network: Network = field(repr=False)
    processes: list[subprocess.Popen[str]] = field(default_factory=list, repr=False)
    rate_limited: bool = False

    def argv(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *command]

    def run(self, *command: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Run a command in this host to its end (bounded by ``timeout``, 60 s)."""
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.argv(*command), **kwargs)  # type: ignore[call-overload, no-any-return]

    def start(self, *command: str, **kwargs: object) -> subprocess.Popen[str]:
        """Start a process in this host; :meth:`Network.close` ends it, by pid."""
        kwargs.setdefault("text", True)
        process = subprocess.Popen(self.argv(*command), **kwargs)  # type: ignore[call-overload]
        self.processes.append(process)
        return process  # type: ignore[no-any-return]

    def python(self, *args: str, **kwargs: object) -> subprocess.Popen[str]:
        return self.start(sys.executable, *args, **kwargs)

    # ------------------------------------------------------------- faults

    def partition(self) -> None:
        """Cut this host off from every other: its packets are dropped both ways."""
        self._nft_rule("partition", "drop")

    def lose(self, percent: float) -> None:
        """Drop ``percent`` of this host's packets at random, each way."""
        per_mille = round(percent * 10)
        self._nft_rule("loss", f"numgen random mod 1000 < {per_mille} drop")

    def heal(self) -> None:
        """Undo :meth:`partition`, :meth:`lose` and :meth:`limit_rate`."""
        _sh("ip", "netns", "exec", self.namespace, "nft", "flush", "table", "inet", "rrfault")
        if self.rate_limited:
            for namespace, device in (
                (self.namespace, "eth0"),
                (self.network.switch_namespace, self.port),
            ):
                _sh("ip", "netns", "exec", namespace, "tc", "qdisc", "del", "dev", device, "root")
            self.rate_limited = False

    def limit_rate(self, mbit: float) -> None:
        """A link of ``mbit`` Mbit/s each way (a token bucket on both ends of the cable)."""
        rate = f"{mbit}mbit"
        for namespace, device in (
            (self.namespace, "eth0"),
            (self.network.switch_namespace, self.port),
        ):
            _sh(
                "ip", "netns", "exec", namespace, "tc", "qdisc", "replace", "dev", device,
                "root", "tbf", "rate", rate, "burst", "32kbit", "latency", "400ms",
            )  # fmt: skip
        self.rate_limited = True

    def _nft_rule(self, comment: str, verdict: str) -> None:
        for hook in ("input", "output"):
            # Loopback stays up: a host's own processes still reach each other.
            _sh(
                "ip", "netns", "exec", self.namespace, "nft", "add", "rule", "inet", "rrfault",
                hook, "meta", "iifname" if hook == "input" else "oifname", "eth0",
                *verdict.split(), "comment", f'"{comment}"',
            )  # fmt: skip


class Network:
    """Hosts joined by a switch, made on enter and removed on exit.

    ``delay_ms`` puts the tests' delaying switch between the hosts: every frame
    waits that long in it, so the round trip between two hosts is twice that.
    ``None`` uses the kernel's bridge (no delay of its own).
    """

    def __init__(self, hosts: Sequence[str], *, delay_ms: float | None = None) -> None:
        self.token = secrets.token_hex(3)
        # A /24 of 10.0.0.0/8 picked at random, used only inside these namespaces.
        octets = secrets.randbelow(200) + 50, secrets.randbelow(250) + 1
        self.subnet = f"10.{octets[0]}.{octets[1]}"
        self.switch_namespace = f"rr{self.token}-sw"
        self.delay_ms = delay_ms
        self.hosts = {
            name: Host(
                name=name,
                namespace=f"rr{self.token}-{name}",
                address=f"{self.subnet}.{index + 1}",
                port=f"rr{self.token}p{index}",
                network=self,
            )
            for index, name in enumerate(hosts)
        }
        self._namespaces: list[str] = []
        self._switch: subprocess.Popen[str] | None = None

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def __enter__(self) -> Network:
        try:
            self._make()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _make(self) -> None:
        _sh("ip", "netns", "add", self.switch_namespace)
        self._namespaces.append(self.switch_namespace)
        sw = ("ip", "-n", self.switch_namespace)
        if self.delay_ms is None:
            _sh(*sw, "link", "add", "br0", "type", "bridge")
            _sh(*sw, "link", "set", "br0", "up")
        for host in self.hosts.values():
            _sh("ip", "netns", "add", host.namespace)
            self._namespaces.append(host.namespace)
            _sh(*sw, "link", "add", host.port, "type", "veth", "peer", "name", "eth0",
                "netns", host.namespace)  # fmt: skip
            inside = ("ip", "-n", host.namespace)
            _sh(*inside, "link", "set", "lo", "up")
            _sh(*inside, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _sh(*inside, "link", "set", "eth0", "up")
            if self.delay_ms is None:
                _sh(*sw, "link", "set", host.port, "master", "br0")
            else:
                # The switch forwards frames as they are on the wire: no offloads that
                # would hand it 64 KiB segments it could not send on.
                for namespace, device in ((self.switch_namespace, host.port),
                                          (host.namespace, "eth0")):  # fmt: skip
                    _sh("ip", "netns", "exec", namespace, "ethtool", "-K", device,
                        "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off",
                        check=False)  # fmt: skip
            _sh(*sw, "link", "set", host.port, "up")
            _sh("ip", "netns", "exec", host.namespace, "nft", "add", "table", "inet", "rrfault")
            for hook in ("input", "output"):
                _sh(
                    "ip", "netns", "exec", host.namespace, "nft", "add", "chain", "inet",
                    "rrfault", hook, f"{{ type filter hook {hook} priority 0; }}",
                )  # fmt: skip
        if self.delay_ms is not None:
            self._start_switch()

    def _start_switch(self) -> None:
        ports = [host.port for host in self.hosts.values()]
        self._switch = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.switch_namespace,
                sys.executable,
                str(SWITCH),
                "--delay-ms",
                str(self.delay_ms),
                *ports,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._switch.stdout is not None
        with selectors.DefaultSelector() as selector:  # bounded: a switch that hangs fails
            selector.register(self._switch.stdout, selectors.EVENT_READ)
            line = self._switch.stdout.readline() if selector.select(timeout=30) else ""
        if not line.startswith("switching"):
            raise RuntimeError(f"the delaying switch did not start: {line!r}")

    def close(self) -> None:
        """End every process this network started (by pid), then remove its namespaces."""
        processes = [p for host in self.hosts.values() for p in host.processes]
        if self._switch is not None:
            processes.append(self._switch)
        for process in processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGKILL)
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
            for stream in (process.stdout, process.stderr, process.stdin):
                if stream is not None:
                    stream.close()
        for namespace in reversed(self._namespaces):
            _sh("ip", "netns", "del", namespace, check=False)
        self._namespaces.clear()


@contextlib.contextmanager
def network(hosts: Sequence[str], **kwargs: object) -> Iterator[Network]:
    with Network(hosts, **kwargs) as made:  # type: ignore[arg-type]
        yield made


def wait_port(host: Host, address: str, timeout: float = 20.0) -> None:
    """Until a TCP connect from ``host`` to ``address`` succeeds (bounded)."""
    deadline = time.monotonic() + timeout
    ip, port = address.rsplit(":", 1)
    probe = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1)"
    while time.monotonic() < deadline:
        if host.run(sys.executable, "-c", probe, ip, port, timeout=5).returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"{address} did not answer from {host.name} within {timeout:g} s")
