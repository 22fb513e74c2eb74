"""Acceptance: the seed examples, unchanged, with only REUSE_RUNTIME_BACKEND=container set."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from reuse_runtime.backends.container import ENVIRONMENT_LABEL
from tests.helpers import ROOT, subprocess_env

pytestmark = [pytest.mark.container, pytest.mark.timeout(300)]

EXAMPLES = ROOT / "examples"


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    home = str(tmp_path / "home")
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env=subprocess_env(REUSE_RUNTIME_HOME=home, **env),
    )


class ContainerStarts:
    """Records, through the engine's events, which environments' containers start."""

    def __init__(self, client: Any, run_label: str) -> None:
        self._events = client.events(decode=True, filters={"label": run_label, "event": "start"})
        self.started: list[str] = []
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            for event in self._events:
                if event.get("Action") == "start" or event.get("status") == "start":
                    attributes = event.get("Actor", {}).get("Attributes", {})
                    self.started.append(attributes.get(ENVIRONMENT_LABEL, ""))
        except Exception:
            pass  # closed

    def close(self) -> None:
        self._events.close()
        self._thread.join(timeout=5)


@pytest.mark.parametrize(
    ("example", "task_args", "result", "env_name", "replicas"),
    [
        ("reuse_concurrency.py", ["n=500"], "124750", "reuse_concurrency", 2),
        ("reuse.py", [], repr([i * i for i in range(10)]), "reusable-env", 2),
    ],
)
def test_seed_example_in_containers_gives_the_local_output(
    example: str,
    task_args: list[str],
    result: str,
    env_name: str,
    replicas: int,
    tmp_path: Path,
    docker_client: Any,
    run_label: str,
) -> None:
    script = EXAMPLES / example
    # The order of docs/containers.md: build the image, then run.
    built = _run([sys.executable, "-m", "reuse_runtime", "image", "build", str(script)], tmp_path)
    assert built.returncode == 0, built.stderr + built.stdout
    starts = ContainerStarts(docker_client, run_label)
    try:
        local = _run([sys.executable, str(script)], tmp_path, REUSE_RUNTIME_BACKEND="local")
        contained = _run([sys.executable, str(script)], tmp_path, REUSE_RUNTIME_BACKEND="container")
    finally:
        starts.close()
    assert local.returncode == 0 and contained.returncode == 0, contained.stderr
    # Name and URL, then nothing: the same output as locally.
    assert len(contained.stdout.splitlines()) == len(local.stdout.splitlines()) == 2
    name, url = contained.stdout.splitlines()
    # The run's page, served while the script ran; its log stays in the state dir.
    assert url.startswith("http://127.0.0.1:") and url.endswith(f"/runs/{name}"), url
    log = (tmp_path / "home" / "runs" / f"{name}.log").read_text()
    assert f"run {name} succeeded" in log
    # Its replicas were containers, as the engine saw them start.
    assert starts.started.count(env_name) == replicas, starts.started
    # And the result is the local one.
    for backend in ("local", "container"):
        done = _run(
            [sys.executable, "-m", "reuse_runtime", "run", str(script), "main", *task_args],
            tmp_path,
            REUSE_RUNTIME_BACKEND=backend,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == result
