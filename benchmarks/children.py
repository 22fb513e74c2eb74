"""Measurement processes: a clean environment, one ``python -m`` child, its result.

Every measurement of :mod:`benchmarks.run` (and of :mod:`benchmarks.container`)
runs in a fresh process started here; one that hangs is killed with everything
under it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

import psutil

from benchmarks.harness import ROOT, parse_result
from benchmarks.sdk_tasks import INIT_SECONDS_ENV


def child_environment(state_dir: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment: the embedded controller, default settings, our state dir."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("REUSE_RUNTIME_") and k != INIT_SECONDS_ENV
    }
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    environ["REUSE_RUNTIME_HOME"] = state_dir
    environ["REUSE_RUNTIME_LOG_LEVEL"] = "warning"
    environ["RAY_USAGE_STATS_ENABLED"] = "0"
    environ.update(extra or {})
    return environ


class ChildFailed(Exception):
    """A measurement process failed, timed out, or reported nothing (expected to be rare)."""


def run_child(
    module: str, args: Iterable[str], environ: dict[str, str], timeout_s: float
) -> dict[str, Any]:
    """Run ``python -m module args`` and return the result it reported.

    On a timeout the child and every process under it (replicas, Ray's daemons) are killed.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
        cwd=str(ROOT),
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_tree(process.pid)
        # A daemon that left the tree (Ray's) may still hold the pipes: do not wait on it.
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=10)
        raise ChildFailed(f"{module} took more than {timeout_s:g} s; killed") from None
    if process.returncode != 0:
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        raise ChildFailed(f"{module} exited with {process.returncode}: {tail}")
    try:
        result = parse_result(stdout)
    except (RuntimeError, ValueError) as exc:
        raise ChildFailed(f"{module}: {exc}") from None
    if not isinstance(result, dict):
        raise ChildFailed(f"{module} reported {type(result).__name__}, not an object")
    return result


def _kill_tree(pid: int) -> None:
    with contextlib.suppress(psutil.Error):
        parent = psutil.Process(pid)
        # Replicas run in their own sessions, so collect them by ancestry, not by group.
        for process in [*parent.children(recursive=True), parent]:
            with contextlib.suppress(psutil.Error):
                process.kill()
