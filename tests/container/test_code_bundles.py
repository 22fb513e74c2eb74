"""Acceptance: a two-module project on an engine that cannot see the client's directory.

``$REUSE_RUNTIME_CONTAINER_REMOTE=1`` makes the container backend treat the engine as
remote (as a ``DOCKER_HOST`` of another host does): containers get no bind mount of this
machine at all, so the project's code can only reach them as a code bundle, fetched from
the controller. The project is in a temporary folder the image knows nothing of.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.helpers import run_python
from tests.sdk.test_code_bundles import _project

pytestmark = [pytest.mark.container, pytest.mark.timeout(600)]

MAIN = """
import json, os
import reuse_runtime as flyte
import mylib

PROJECT = {project!r}

@mylib.env.task
async def main(n: int) -> dict:
    import mylib as lib
    return {{
        "values": [await mylib.double(i) for i in range(n)],
        "mylib": lib.__file__,
        "lazy": lib.lazily(),
        "sees_project": os.path.exists(os.path.join(PROJECT, "mylib.py")),
        "in_container": os.path.exists("/run/.containerenv") or os.path.exists("/.dockerenv"),
        # (what is mounted, where): a bind mount of the client's files would show here
        "mounts": [line.split()[3:5] for line in open("/proc/self/mountinfo")],
    }}

if __name__ == "__main__":
    flyte.init()  # $REUSE_RUNTIME_ENDPOINT: a standalone controller; else the embedded one
    print(json.dumps(flyte.run(main, n=3).outputs()[0]))
"""


def no_mount_of(folder: Path, mounts: list[list[str]]) -> bool:
    """Whether no mount of a replica's (its source's path, its mount point) is in ``folder``."""
    inside = [m for m in mounts if any(str(folder) in path for path in m)]
    assert mounts and not inside, inside
    return True


def test_a_project_runs_on_a_remote_engine_from_its_bundle_and_an_edit_runs_next(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    _project(project, factor=2)
    main = textwrap.dedent(MAIN).format(project=str(project))
    settings = {
        "REUSE_RUNTIME_BACKEND": "container",
        "REUSE_RUNTIME_CONTAINER_REMOTE": "1",
        "REUSE_RUNTIME_HOME": str(tmp_path / "home"),
    }
    first = run_python(project, main, name="main.py", timeout=500, **settings)
    assert first.returncode == 0, first.stderr[-3000:]
    out = json.loads(first.stdout.splitlines()[-1])
    assert out["values"] == [0, 2, 4] and out["lazy"] == "OK"
    assert out["in_container"] and not out["sees_project"]
    assert out["mylib"].startswith("/tmp/reuse-runtime-code/")
    assert no_mount_of(tmp_path, out["mounts"])  # the project, the state dir: nothing
    _project(project, factor=10)
    second = run_python(project, main, name="main.py", timeout=500, **settings)
    assert second.returncode == 0, second.stderr[-3000:]
    out2 = json.loads(second.stdout.splitlines()[-1])
    assert out2["values"] == [0, 10, 20] and not out2["sees_project"]
    assert Path(out2["mylib"]).parent != Path(out["mylib"]).parent


BAKED = """
import json, os
import reuse_runtime as flyte

env = flyte.TaskEnvironment(
    name="baked",
    image=flyte.Image.from_debian_base().with_code_bundle(copy_style="all"),
    reusable=flyte.ReusePolicy(replicas=1, idle_ttl=60),
)

@env.task
async def where() -> list:
    import helpers
    return [helpers.VALUE, helpers.__file__, os.listdir("/tmp")]

if __name__ == "__main__":
    flyte.init()
    print(json.dumps(flyte.run(where).outputs()[0]))
"""


def test_with_code_bundle_bakes_each_version_into_an_image_of_its_own(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "helpers.py").write_text("VALUE = 1\n")
    settings = {
        "REUSE_RUNTIME_BACKEND": "container",
        "REUSE_RUNTIME_CONTAINER_REMOTE": "1",  # the baked copy wins over fetching
        "REUSE_RUNTIME_HOME": str(tmp_path / "home"),
    }
    first = run_python(project, BAKED, name="main.py", timeout=500, **settings)
    assert first.returncode == 0, first.stderr[-3000:]
    value, where, tmp = json.loads(first.stdout.splitlines()[-1])
    assert value == 1 and where.startswith("/opt/reuse-runtime/code/")
    assert "reuse-runtime-code" not in tmp  # nothing was fetched
    (project / "helpers.py").write_text("VALUE = 2\n")
    second = run_python(project, BAKED, name="main.py", timeout=500, **settings)
    assert second.returncode == 0, second.stderr[-3000:]
    value2, where2, _ = json.loads(second.stdout.splitlines()[-1])
    assert value2 == 2 and Path(where2).parent != Path(where).parent
