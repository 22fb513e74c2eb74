"""docs/kubernetes.md's walk-through, against a real cluster: runs when ``KUBECONFIG`` is set.

It needs ``kubectl``, a container engine (``reuse-runtime engine start`` or Docker), and
``$REUSE_RUNTIME_TEST_REGISTRY``: a registry this machine pushes to and the cluster pulls
from. It builds and pushes the controller's image (the Dockerfile with the kubernetes extra)
and the seed examples' images, applies ``reuse-runtime k8s manifests`` in a namespace of its
own, port-forwards the Service, runs the seed examples through it, and deletes the namespace.
Without a cluster it is skipped, and says why; the stand-in suite covers the same ground.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import ROOT, subprocess_env
from tests.kubernetes.harness import free_port

KUBECONFIG = os.environ.get("KUBECONFIG", "")
REGISTRY = os.environ.get("REUSE_RUNTIME_TEST_REGISTRY", "")

pytestmark = [
    pytest.mark.kubernetes,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(
        not KUBECONFIG, reason="no real cluster: KUBECONFIG is not set (the stand-in suite ran)"
    ),
    pytest.mark.skipif(
        bool(KUBECONFIG) and not REGISTRY,
        reason="KUBECONFIG is set but REUSE_RUNTIME_TEST_REGISTRY (a registry this machine "
        "pushes to and the cluster pulls from) is not",
    ),
    pytest.mark.skipif(
        bool(KUBECONFIG) and shutil.which("kubectl") is None, reason="kubectl is not installed"
    ),
]


def _run(*args: str, timeout: float = 900, **env: str) -> str:
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=subprocess_env(**env)
    )
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr[-3000:]}"
    return done.stdout


def _kubectl(namespace: str, *args: str, timeout: float = 300) -> str:
    return _run("kubectl", "-n", namespace, *args, timeout=timeout)


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"rr-e2e-{secrets.token_hex(3)}"
    try:
        yield name
    finally:
        subprocess.run(
            ["kubectl", "delete", "namespace", name, "--wait=false"],
            capture_output=True,
            timeout=120,
            check=False,
        )


def _controller_image() -> str:
    """The project's Dockerfile with the kubernetes extra, pushed, as docs/kubernetes.md says."""
    from reuse_runtime import engine

    client = engine.connect()
    repository = f"{REGISTRY}/reuse-runtime"
    tag = f"e2e-{secrets.token_hex(4)}"
    client.images.build(
        path=str(ROOT), buildargs={"EXTRAS": "[kubernetes]"}, tag=f"{repository}:{tag}", rm=True
    )
    for line in client.images.push(repository, tag, stream=True, decode=True):
        assert "error" not in line, line
    return f"{repository}:{tag}"


def test_the_docs_walk_through_runs_the_seed_examples_on_a_real_cluster(
    namespace: str,
) -> None:
    for example in ("reuse.py", "reuse_concurrency.py"):
        _run(
            sys.executable,
            "-m",
            "reuse_runtime",
            "image",
            "build",
            str(ROOT / "examples" / example),
            "--registry",
            REGISTRY,
            "--push",
        )
    image = _controller_image()
    manifests = _run(
        sys.executable,
        "-m",
        "reuse_runtime",
        "k8s",
        "manifests",
        "--namespace",
        namespace,
        "--image",
        image,
        "--image-registry",
        REGISTRY,
    )
    applied = subprocess.run(
        ["kubectl", "apply", "-f", "-"],
        input=manifests,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert applied.returncode == 0, applied.stderr
    _kubectl(
        namespace, "rollout", "status", "deployment/reuse-runtime", "--timeout=600s", timeout=660
    )
    token = base64.b64decode(
        _kubectl(namespace, "get", "secret", "reuse-runtime-token", "-o", "jsonpath={.data.token}")
    ).decode()
    port = free_port()
    forward = subprocess.Popen(
        ["kubectl", "-n", namespace, "port-forward", "svc/reuse-runtime", f"{port}:50050"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert forward.stdout is not None
        assert "Forwarding from" in forward.stdout.readline()
        env: dict[str, Any] = {
            "REUSE_RUNTIME_ENDPOINT": f"127.0.0.1:{port}",
            "REUSE_RUNTIME_TOKEN": token,
        }
        squares = _run(
            sys.executable,
            "-m",
            "reuse_runtime",
            "run",
            str(ROOT / "examples" / "reuse.py"),
            "main",
            **env,
        )
        assert squares.splitlines()[-1] == repr([i * i for i in range(10)])
        total = _run(
            sys.executable,
            "-m",
            "reuse_runtime",
            "run",
            str(ROOT / "examples" / "reuse_concurrency.py"),
            "main",
            "n=500",
            **env,
        )
        assert total.splitlines()[-1] == "124750"
        status = _run(sys.executable, "-m", "reuse_runtime", "status", "--json", **env)
        assert status.count('"pod reuse-runtime-') == 4, status
        replicas = _kubectl(
            namespace,
            "get",
            "pods",
            "-l",
            "reuse-runtime.io/environment",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ).split()
        assert len(replicas) == 4, replicas  # two environments, two replicas each, reused
    finally:
        forward.terminate()
        forward.wait(30)
    # Deleting the controller's pod deletes its replicas (their ownerReference).
    _kubectl(namespace, "delete", "deployment", "reuse-runtime", "--wait=true", timeout=300)
    deadline = time.monotonic() + 300
    while _kubectl(
        namespace, "get", "pods", "-l", "reuse-runtime.io/environment", "-o", "name"
    ).strip():
        assert time.monotonic() < deadline, "replica pods outlived their controller's pod"
        time.sleep(2)
