"""The kubernetes suite: real pods, from the backend's own Pod specs.

Run it alone with ``python -m pytest -m kubernetes``. What is real and what
stands in:

* **real**: the ``kubernetes`` backend and the official client it drives, the
  standalone controller process, the images (built by ``reuse-runtime image
  build --registry localhost``, as a user would, through Podman's engine),
  the pods' containers (``podman kube play`` of the backend's Pod specs, with
  real memory limits, SIGTERM and SIGKILL), the workers, their gRPC, the seed
  examples, and the clients;
* **stand-ins** (test code): the API server (:mod:`tests.kubernetes.apiserver`,
  which enforces the Role that ``k8s manifests`` ships and validates every
  object against the real schemas), and the kubelet
  (:mod:`tests.kubernetes.kubelet`). Replicas dial the controller at the
  Podman network's gateway where a cluster would give them its Service.

It uses the container suite's engine and base image (its session fixture
labels every image and pod of the run, and removes them at the end).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.container.conftest import RUN_LABEL, container_engine, repo_root  # noqa: F401
from tests.helpers import subprocess_env
from tests.kubernetes.cluster import StandInCluster, stand_in_cluster
from tests.kubernetes.harness import KubeCluster
from tests.kubernetes.kubelet import Kubelet

ROOT = repo_root()


def build_image(script: Path) -> str:
    """``reuse-runtime image build SCRIPT --registry localhost``; the name pods get."""
    built = subprocess.run(
        [sys.executable, "-m", "reuse_runtime", "image", "build", str(script),
         "--registry", "localhost"],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env=subprocess_env(),
    )  # fmt: skip
    assert built.returncode == 0, built.stderr + built.stdout
    names = [line.split(": ", 1)[1].split(" ")[0] for line in built.stdout.splitlines()
             if line.rstrip().endswith("(tagged)")]  # fmt: skip
    assert names, built.stdout
    return names[0]


@pytest.fixture(scope="session")
def seed_image(container_engine: str) -> str:  # noqa: F811
    return build_image(ROOT / "examples" / "reuse.py")


@pytest.fixture(scope="session")
def tasks_image(container_engine: str) -> str:  # noqa: F811
    return build_image(ROOT / "tests" / "kubernetes" / "tasks.py")


@pytest.fixture
def cluster(tmp_path: Path, container_engine: str) -> Iterator[KubeCluster]:  # noqa: F811
    with stand_in_cluster(tmp_path) as api_cluster:
        kubelet = Kubelet(
            api_cluster.api, tmp_path / "node", run_label=(RUN_LABEL, container_engine)
        )
        kubelet.start()
        found = KubeCluster(api_cluster, kubelet, tmp_path)
        try:
            yield found
        finally:
            found.close()
            left = kubelet.close()
            assert not left, f"pods left behind: {left}"
            _only_granted_calls(api_cluster)


def _only_granted_calls(cluster: StandInCluster) -> None:
    """Whatever a test did, the controller called nothing beyond its Role."""
    from reuse_runtime.backends.kubernetes import API_CALLS

    allowed = {(verb, resource) for verb, resource in API_CALLS}
    made = {(verb, resource) for verb, resource, _ in cluster.controller_calls()}
    assert made <= allowed, made - allowed
