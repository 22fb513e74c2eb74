"""Acceptance 2: the seed examples through a standalone controller on the kubernetes backend,
their replicas real pods run from the backend's own Pod specs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import ROOT
from tests.kubernetes.harness import KubeCluster

pytestmark = [pytest.mark.kubernetes, pytest.mark.timeout(600)]

EXAMPLES = ROOT / "examples"


def test_the_seed_examples_give_their_outputs_with_pods_as_replicas(
    cluster: KubeCluster, seed_image: str
) -> None:
    controller = cluster.controller()
    env = controller.client_env()
    for example, lines in (("reuse.py", 2), ("reuse_concurrency.py", 2)):
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / example)],
            capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:] + controller.log.read_text()[-3000:]
        # The run's name and URL, then nothing: as with the local backend.
        assert len(done.stdout.splitlines()) == lines, done.stdout
    squares = subprocess.run(
        [sys.executable, "-m", "reuse_runtime", "run", str(EXAMPLES / "reuse.py"), "main"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
    )  # fmt: skip
    assert squares.returncode == 0, squares.stderr
    assert squares.stdout.splitlines()[-1] == repr([i * i for i in range(10)])
    total = subprocess.run(
        [sys.executable, "-m", "reuse_runtime", "run", str(EXAMPLES / "reuse_concurrency.py"),
         "main", "n=500"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
    )  # fmt: skip
    assert total.returncode == 0, total.stderr
    assert total.stdout.splitlines()[-1] == "124750"
    # The replicas were pods: created through the API, each run by Podman from its spec.
    created = cluster.created_pods()
    assert len(created) == 4, created  # two environments, two replicas each: reused throughout
    assert sorted(cluster.kubelet.played) == sorted(created)
    status = controller.status()
    wheres = [r["where"] for e in status["environments"] for r in e["replicas"]]
    assert len(wheres) == 4 and all(w.startswith("pod reuse-runtime-") for w in wheres), wheres

    def ready(pods: list[dict]) -> bool:
        return all(p["status"]["phase"] == "Running" for p in pods) and all(
            c["type"] != "Ready" or c["status"] == "True"
            for p in pods
            for c in p["status"]["conditions"]
        )

    # A readiness probe can miss once on a loaded machine: the pods are ready again
    # within a few probe periods.
    pods = cluster.wait_for(
        lambda: (found := cluster.pods()) and ready(found) and found,
        timeout=30,
        what=lambda: [(p["metadata"]["name"], p["status"]) for p in cluster.pods()],
    )
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {seed_image}
