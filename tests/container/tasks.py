"""Environments and tasks for the container tests, imported inside the replicas' containers.

The repository is mounted read-only into each container at the same path, so
this module imports there as it does here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import time
from pathlib import Path

import reuse_runtime as flyte

# ---------------------------------------------------------------- warm globals

lazy = flyte.TaskEnvironment(
    name="lazy",
    reusable=flyte.ReusePolicy(replicas=2, concurrency=1, idle_ttl=60, scaledown_ttl=60),
)

_model: dict[str, object] | None = None
_loads = 0


def load_model() -> dict[str, object]:
    """The lazy-model pattern: load on first use, keep it in a module global."""
    global _model, _loads
    if _model is None:
        _loads += 1
        time.sleep(0.2)  # a model load
        _model = {"weights": list(range(1000))}
    return _model


@lazy.task
async def predict(x: int) -> tuple[str, int, int]:
    """(container hostname, loads so far in this container, prediction)."""
    model = load_model()
    weights = model["weights"]
    assert isinstance(weights, list)
    return socket.gethostname(), _loads, x + len(weights)


# ---------------------------------------------------------------- TTL timeline

elastic = flyte.TaskEnvironment(
    name="celastic",
    reusable=flyte.ReusePolicy(replicas=(1, 3), concurrency=2, scaledown_ttl=2, idle_ttl=5),
)


@elastic.task
async def interval(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return socket.gethostname()


# ---------------------------------------------------------------- kill storm

storm = flyte.TaskEnvironment(
    name="cstorm",
    reusable=flyte.ReusePolicy(replicas=4, concurrency=8, idle_ttl=60, scaledown_ttl=60),
)


@storm.task
async def short(i: int) -> int:
    await asyncio.sleep(random.uniform(0.010, 0.050))
    return i


# ---------------------------------------------------------------- out of memory

hungry = flyte.TaskEnvironment(
    name="hungry",
    resources=flyte.Resources(memory="200Mi"),
    reusable=flyte.ReusePolicy(replicas=1, concurrency=1, idle_ttl=60, scaledown_ttl=60),
)


@hungry.task
async def hog(mb: int) -> int:
    block = bytearray(mb * 2**20)
    for i in range(0, len(block), 4096):  # touch every page
        block[i] = 1
    return len(block)


@hungry.task
async def small(x: int) -> int:
    return x + 1


# ---------------------------------------------------------------- drain

draining = flyte.TaskEnvironment(
    name="draining",
    reusable=flyte.ReusePolicy(replicas=1, concurrency=1, idle_ttl=60, scaledown_ttl=60),
    stop_grace=20,
)


@draining.task
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "finished"


# ---------------------------------------------------------------- attach, files, networks

joinable = flyte.TaskEnvironment(
    name="joinable",
    reusable=flyte.ReusePolicy(replicas=(0, 1), concurrency=4, scaledown_ttl=1, idle_ttl=2),
)


@joinable.task
async def whoami() -> str:
    return socket.gethostname()


files = flyte.TaskEnvironment(
    name="files",
    resources=flyte.Resources(cpu="500m", memory=("128Mi", "256Mi")),
    env_vars={"FROM_ENV_VARS": "yes"},
    reusable=flyte.ReusePolicy(replicas=1, concurrency=1, idle_ttl=60, scaledown_ttl=60),
)


@files.task
def write_store(name: str, text: str) -> str:
    """Write into the store directory; the caller reads it at the same path."""
    path = Path(os.environ["REUSE_RUNTIME_STORE"]) / name
    path.write_text(text)
    return str(path)


@files.task
def environment() -> dict[str, str]:
    """What the replica sees (a sync task: it reads files)."""
    return {
        "env": os.environ.get("FROM_ENV_VARS", ""),
        "token_on_command_line": str(
            any(os.environ.get("REUSE_RUNTIME_TOKEN", "?") in a for a in _cmdlines())
        ),
        "cpu_quota": _first_of("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
        "memory_limit": _first_of(
            "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"
        ),
        "cwd": os.getcwd(),
        "hostname": socket.gethostname(),
    }


def _first_of(*paths: str) -> str:
    for path in paths:
        if os.path.exists(path):
            return Path(path).read_text().strip()
    return ""


def _cmdlines() -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError):
                found.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"))
    return found
