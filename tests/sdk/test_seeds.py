"""The seed guide's example programs, with only the import changed, run as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, subprocess_env

EXAMPLES = ROOT / "examples"


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
        env=subprocess_env(REUSE_RUNTIME_HOME=str(tmp_path / "home")),
    )


def test_reuse_example_runs_as_written(tmp_path: Path) -> None:
    done = _run([sys.executable, str(EXAMPLES / "reuse.py")], tmp_path)
    assert done.returncode == 0, done.stderr
    name, url = done.stdout.splitlines()[:2]
    assert name.startswith("r")
    # The run's page, served while the script ran (its log stays in the state dir).
    assert url.startswith("http://127.0.0.1:") and url.endswith(f"/runs/{name}")
    log = (tmp_path / "home" / "runs" / f"{name}.log").read_text()
    assert f"run {name} succeeded" in log


def test_reuse_example_outputs(tmp_path: Path) -> None:
    done = _run(
        [sys.executable, "-m", "reuse_runtime", "run", str(EXAMPLES / "reuse.py"), "main"], tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == repr([i * i for i in range(10)])


def test_reuse_concurrency_example_runs_and_sums_500(tmp_path: Path) -> None:
    done = _run([sys.executable, str(EXAMPLES / "reuse_concurrency.py")], tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2  # name and url; noop's debug logs stay quiet
    done = _run(
        [
            sys.executable,
            "-m",
            "reuse_runtime",
            "run",
            str(EXAMPLES / "reuse_concurrency.py"),
            "main",
            "n=500",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "124750"
