"""A reuse-runtime deployment across test hosts: a controller, workers that attach, a client.

:class:`Cluster` makes a :class:`~tests.network.netns.Network` of four hosts and
runs, over mTLS and a shared token:

* host ``a``: a standalone controller (``--host 0.0.0.0``) with its local replicas;
* hosts ``b`` and ``c``: external workers (``reuse-runtime worker --controller ...
  --environment ...``), started by :meth:`Cluster.start_worker`;
* host ``d``: clients (:mod:`tests.network.driver`), started by :meth:`Cluster.drive`.

Every process gets ``$NETFAULT_HOST`` (its host's name), a state directory of its
host's own, and the certificate made for every host's address. Everything it
started is ended on exit, by pid: the controller first (with SIGTERM, so it stops
its replicas), then what is left of each host's processes and their descendants,
then the namespaces.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import psutil

from tests.helpers import ROOT, subprocess_env
from tests.network.fault_tasks import HOST_ENV
from tests.network.netns import Host, Network
from tests.tls import CertFiles, make_certs

PORT = 7000
#: The environment workers join (see fault_tasks.faults).
ENVIRONMENT = "netfaults"


class Cluster:
    """Hosts a (controller), b and c (workers), d (client); see the module docstring."""

    def __init__(self, directory: Path, *, delay_ms: float | None = None) -> None:
        self.directory = directory
        self.network = Network(["a", "b", "c", "d"], delay_ms=delay_ms)
        self.token = secrets.token_hex(16)
        self.certs: CertFiles | None = None
        self.controller: subprocess.Popen[str] | None = None
        self.log = str(directory / "executions.log")
        self._files: list[IO[str]] = []

    @property
    def address(self) -> str:
        """Where the controller listens, as the other hosts dial it."""
        return f"{self.network['a'].address}:{PORT}"

    def __getitem__(self, name: str) -> Host:
        return self.network[name]

    def __enter__(self) -> Cluster:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.network.__enter__()
        try:
            addresses = [host.address for host in self.network.hosts.values()]
            self.certs = make_certs(self.directory, addresses=addresses)
        except BaseException:
            self.network.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------ processes

    def environ(self, host: Host, certs: CertFiles | None = None, **extra: str) -> dict[str, str]:
        """A process's environment on ``host``: credentials, its host's state dir, its name."""
        certs = certs or self.certs
        assert certs is not None
        home = self.directory / f"home-{host.name}"
        home.mkdir(exist_ok=True)
        return subprocess_env(
            REUSE_RUNTIME_HOME=str(home),
            REUSE_RUNTIME_TOKEN=self.token,
            REUSE_RUNTIME_TLS_CERT=certs.cert,
            REUSE_RUNTIME_TLS_KEY=certs.key,
            REUSE_RUNTIME_TLS_CA=certs.ca,
            REUSE_RUNTIME_LOG_LEVEL="info",
            REUSE_RUNTIME_LOG_FORMAT="json",
            **{HOST_ENV: host.name},
            **extra,
        )

    def _start(
        self, host: Host, name: str, argv: list[str], environ: dict[str, str]
    ) -> subprocess.Popen[str]:
        stderr = open(self.directory / f"{name}.log", "a")  # noqa: SIM115 (closed on exit)
        self._files.append(stderr)
        return host.start(*argv, stdout=subprocess.PIPE, stderr=stderr, env=environ, cwd=str(ROOT))

    def start_controller(self, *args: str) -> subprocess.Popen[str]:
        """The controller on host a, once it prints where it listens."""
        argv = [sys.executable, "-m", "reuse_runtime", "controller", "--host", "0.0.0.0"]
        argv += ["--port", str(PORT), *args]
        self.controller = self._start(self["a"], "controller", argv, self.environ(self["a"]))
        _ready_line(self.controller, "controller")
        return self.controller

    def start_worker(
        self,
        host: Host,
        *args: str,
        concurrency: int = 4,
        certs: CertFiles | None = None,
        name: str = "",
        environment: str = ENVIRONMENT,
        wait: bool = True,
    ) -> subprocess.Popen[str]:
        """An external worker on ``host`` joining ``environment``, once it listens (with
        ``wait``; else at once: see :meth:`listening`)."""
        argv = [sys.executable, "-m", "reuse_runtime", "worker", "--controller", self.address]
        argv += ["--environment", environment, "--concurrency", str(concurrency)]
        argv += ["--replica-id", name or f"worker-{host.name}", *args]
        worker = self._start(host, name or f"worker-{host.name}", argv, self.environ(host, certs))
        if wait:
            self.listening(worker)
        return worker

    def listening(self, worker: subprocess.Popen[str]) -> None:
        """Until ``worker`` (from :meth:`start_worker`) listens (bounded)."""
        _ready_line(worker, f"the worker (pid {worker.pid})")

    def drive(self, *args: str, host: str = "d") -> subprocess.Popen[str]:
        """A client (:mod:`tests.network.driver`) on ``host``; see :func:`finished`."""
        argv = [sys.executable, "-m", "tests.network.driver", "--controller", self.address]
        argv += ["--log", self.log, *args]
        return self._start(self[host], "driver", argv, self.environ(self[host]))

    def status(self) -> dict[str, Any]:
        """``reuse-runtime status --json`` of the controller, asked on its own host."""
        done = self["a"].run(
            sys.executable, "-m", "reuse_runtime", "status", "--json", "--endpoint",
            f"127.0.0.1:{PORT}", env=self.environ(self["a"]), cwd=str(ROOT), timeout=30,
        )  # fmt: skip
        if done.returncode != 0:
            raise AssertionError(f"status failed: {done.stderr.strip()}")
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    def environment(self, name: str = ENVIRONMENT) -> dict[str, Any]:
        """The status of environment ``name``."""
        for env in self.status()["environments"]:
            if env["name"] == name:
                return env  # type: ignore[no-any-return]
        raise AssertionError(f"environment {name} is not registered")

    def ready(self, *replicas: str, environment: str = ENVIRONMENT) -> bool:
        """Whether these replicas are attached and ready."""
        states = {r["replica_id"]: r["state"] for r in self.environment(environment)["replicas"]}
        return all(states.get(replica) == "ready" for replica in replicas)

    def executions(self, log: str = "") -> list[Execution]:
        """Every line the tasks logged so far (to ``log``, else the cluster's), in order."""
        path = Path(log or self.log)
        if not path.exists():
            return []
        return [Execution.parse(line) for line in path.read_text().splitlines() if line]

    # ------------------------------------------------------------ the end

    def close(self) -> None:
        """End everything this cluster started (by pid), then remove its namespaces."""
        owned = [p for host in self.network.hosts.values() for p in host.processes]
        # Their descendants too (the controller's replicas run in sessions of their own).
        descendants: list[psutil.Process] = []
        for process in owned:
            with contextlib.suppress(psutil.Error):
                descendants += psutil.Process(process.pid).children(recursive=True)
        if self.controller is not None and self.controller.poll() is None:
            self.controller.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.controller.wait(30)
        self.network.close()  # kills what is left of the hosts' own processes, by pid
        for process in descendants:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(descendants, timeout=10)
        for file in self._files:
            file.close()


class Execution:
    """One line of the executions log: ``kind index host pid time``."""

    __slots__ = ("host", "index", "kind", "pid", "time")

    def __init__(self, kind: str, index: str, host: str, pid: int, time: float) -> None:
        self.kind, self.index, self.host, self.pid, self.time = kind, index, host, pid, time

    @classmethod
    def parse(cls, line: str) -> Execution:
        kind, index, host, pid, at = line.split()
        return cls(kind, index, host, int(pid), float(at))


def _ready_line(process: subprocess.Popen[str], what: str, timeout: float = 60.0) -> str:
    """The process's ``listening on ...`` line (bounded: a thread-free poll of its pipe)."""
    assert process.stdout is not None
    import selectors

    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=max(0.0, deadline - time.monotonic())):
                line = process.stdout.readline()
                if line.startswith("listening on"):
                    return line
                if not line:
                    raise AssertionError(f"{what} exited: {process.wait(10)}")
    raise AssertionError(f"{what} did not start within {timeout:g} s")


def finished(driver: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """The driver's JSON report, once it exits (within ``timeout``)."""
    try:
        out, _ = driver.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        driver.kill()
        driver.communicate(timeout=10)
        raise AssertionError(f"the client did not finish within {timeout:g} s") from None
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if driver.returncode != 0 or not lines:
        raise AssertionError(f"the client failed (exit {driver.returncode}): {out[-2000:]}")
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def wait_for(check: Callable[[], object], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy (bounded), and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(every)
