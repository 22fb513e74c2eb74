"""A standalone controller on the kubernetes backend, and clients of it, for the suite."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.helpers import ROOT, subprocess_env
from tests.kubernetes.cluster import StandInCluster
from tests.kubernetes.kubelet import Kubelet


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


class Controller:
    """``reuse-runtime controller --backend kubernetes`` as a process of its own.

    It keeps its port across restarts: its replicas dial that address again.
    """

    def __init__(self, cluster: KubeCluster, *extra: str) -> None:
        self.cluster = cluster
        self.port = free_port()
        self.extra = extra
        self.process: subprocess.Popen[str] | None = None
        self.log = cluster.tmp / f"controller-{self.port}.log"
        self.endpoint = f"127.0.0.1:{self.port}"
        self.starts = 0

    def start(self) -> Controller:
        gateway = self.cluster.kubelet.gateway()
        self.starts += 1
        log = self.log.open("a")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reuse_runtime",
                "controller",
                "--backend",
                "kubernetes",
                "--host",
                "0.0.0.0",
                "--port",
                str(self.port),
                # Where a cluster would give the Service's name: the address pods reach.
                "--advertise-address",
                f"{gateway}:{self.port}",
                "--image-registry",
                "localhost",
                "--k8s-namespace",
                self.cluster.api.namespace,
                "--pod-start-deadline",
                "60",
                *self.extra,
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=str(self.cluster.tmp),
            env=subprocess_env(
                KUBECONFIG=str(self.cluster.api.kubeconfig),
                REUSE_RUNTIME_TOKEN=self.cluster.api.token,
                REUSE_RUNTIME_HOME=str(self.cluster.tmp / "controller-home"),
                REUSE_RUNTIME_LOG_LEVEL=os.environ.get("REUSE_RUNTIME_TEST_LOG_LEVEL", "info"),
            ),
        )
        log.close()
        ready = threading.Event()
        lines: list[str] = []

        def read() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                lines.append(line)
                if line.startswith("listening on"):
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60):
            self.stop()
            raise AssertionError(f"the controller did not start: {self.log.read_text()[-3000:]}")
        return self

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self._reap(30)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self._reap(1) if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self._reap(90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self._reap(30)

    def _reap(self, timeout: float) -> int:
        assert self.process is not None
        code = self.process.wait(timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code

    def client_env(self, **extra: str) -> dict[str, str]:
        return subprocess_env(
            REUSE_RUNTIME_ENDPOINT=self.endpoint,
            REUSE_RUNTIME_TOKEN=self.cluster.api.token,
            REUSE_RUNTIME_HOME=str(self.cluster.tmp / "client-home"),
            **extra,
        )

    def drive(self, *args: str, timeout: float = 300) -> list[dict[str, Any]]:
        """Run ``python -m tests.kubernetes.drive ARGS`` against this controller."""
        done = subprocess.run(
            [sys.executable, "-m", "tests.kubernetes.drive", *args],
            capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=self.client_env(),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:] + self.log.read_text()[-3000:]
        return list(json.loads(done.stdout.strip().splitlines()[-1]))

    def status(self) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "reuse_runtime", "status", "--json"],
            capture_output=True, text=True, timeout=60, cwd=ROOT, env=self.client_env(),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))


class KubeCluster:
    """The stand-in API server, its kubelet, and the controllers a test starts."""

    def __init__(self, api: StandInCluster, kubelet: Kubelet, tmp: Path) -> None:
        self.api = api
        self.kubelet = kubelet
        self.tmp = tmp
        self.controllers: list[Controller] = []

    def controller(self, *extra: str) -> Controller:
        controller = Controller(self, *extra)
        self.controllers.append(controller)
        return controller.start()

    def pods(self) -> list[dict[str, Any]]:
        return self.api.pods()

    def pod_names(self) -> list[str]:
        return sorted(p["metadata"]["name"] for p in self.pods())

    def created_pods(self) -> list[str]:
        """Every pod ever created in the namespace, in order."""
        return self.api.api.added("pods", self.api.namespace)

    def wait_for(self, check: Any, timeout: float = 120.0, what: Any = "") -> Any:
        """Poll ``check`` until it is truthy; ``what`` (or what it returns, if callable)
        says what was waited for when the time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                detail = what() if callable(what) else what
                raise AssertionError(f"not within {timeout} s: {detail or check}")
            time.sleep(0.2)

    def close(self) -> None:
        for controller in self.controllers:
            with contextlib.suppress(Exception):
                controller.stop()
        # Whatever a killed controller left: the kubelet stand-in removes every pod.
        for pod in self.pods():
            with contextlib.suppress(Exception):
                self.api.api.delete("", "pods", self.api.namespace, pod["metadata"]["name"], 0)


__all__ = ["Controller", "KubeCluster", "free_port"]
