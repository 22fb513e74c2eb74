"""Acceptance: a two-module project on Kubernetes, no image rebuild.

``main.py`` imports ``mylib.py``, which defines the environment and one of its tasks;
neither is in the image (the default recipe: Debian, Python, reuse-runtime). Pods see
nothing of this machine: they fetch the project's code bundle from the controller into
an ``emptyDir`` of their own. ``mylib.py`` is then edited, and the next run uses the new
code, on new pods of a new version, while the old version's pods go within its
``scaledown_ttl``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.container.test_code_bundles import MAIN, no_mount_of
from tests.kubernetes.conftest import build_image
from tests.kubernetes.harness import KubeCluster
from tests.sdk.test_code_bundles import _project

pytestmark = [pytest.mark.kubernetes, pytest.mark.timeout(600)]


def _run(project: Path, env: dict[str, str], controller_log: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "main.py"],
        capture_output=True, text=True, timeout=300, cwd=project, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:] + controller_log.read_text()[-3000:]
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_a_two_module_project_runs_on_pods_and_an_edit_runs_without_a_rebuild(
    cluster: KubeCluster, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    _project(project, factor=2, scaledown=3)
    image = build_image(project / "mylib.py")  # the default recipe: no project code in it
    (project / "main.py").write_text(textwrap.dedent(MAIN).format(project=str(project)))
    controller = cluster.controller()
    env = controller.client_env()
    first = _run(project, env, controller.log)
    assert first["values"] == [0, 2, 4] and first["lazy"] == "OK"
    assert first["mylib"].startswith("/var/lib/reuse-runtime/code/")
    assert first["in_container"] and not first["sees_project"]
    assert no_mount_of(project, first["mounts"])  # (emptyDirs are the node's, in tmp_path)
    pods = cluster.pods()
    assert pods and {p["spec"]["containers"][0]["image"] for p in pods} == {image}
    for pod in pods:  # nothing of this machine: a Secret, and emptyDirs
        kinds = {k for v in pod["spec"]["volumes"] for k in v if k != "name"}
        assert kinds <= {"secret", "emptyDir"}, pod["spec"]["volumes"]
    first_pods = {p["metadata"]["name"] for p in pods}

    _project(project, factor=10, scaledown=3)  # an edit; the image stays as it is
    second = _run(project, env, controller.log)
    assert second["values"] == [0, 10, 20] and not second["sees_project"]
    assert Path(second["mylib"]).parent != Path(first["mylib"]).parent

    def versions() -> Any:
        team = [e for e in controller.status()["environments"] if e["name"] == "team"]
        old = [e for e in team if e["superseded"]]
        return len(team) == 2 and len(old) == 1 and not old[0]["replicas"] and team

    team = cluster.wait_for(versions, timeout=60, what=lambda: controller.status())
    (current,) = [e for e in team if not e["superseded"]]
    assert current["replicas"] and current["version"] == Path(second["mylib"]).parent.name[:12]
    # The old version's pods are gone; the new version's run on the same image.
    cluster.wait_for(
        lambda: not first_pods & {p["metadata"]["name"] for p in cluster.pods()},
        timeout=60,
        what=cluster.pod_names,
    )
    assert {p["spec"]["containers"][0]["image"] for p in cluster.pods()} == {image}
