"""Environments and tasks for the kubernetes suite.

Replicas are pods: nothing of this machine is mounted into them. This module
reaches them the way importable code does on Kubernetes: baked into the image
with ``with_source_folder`` (the whole ``tests`` package, at ``/tests``).
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import reuse_runtime as flyte

image = flyte.Image.from_debian_base().with_source_folder(Path(__file__).resolve().parents[1])

# ---------------------------------------------------------------- warm state

warm = flyte.TaskEnvironment(
    name="k8s-warm",
    image=image,
    reusable=flyte.ReusePolicy(replicas=2, concurrency=1, idle_ttl=600, scaledown_ttl=600),
)

_calls = 0


@warm.task
async def hello(x: int) -> tuple[str, int, int]:
    """(the pod's hostname, calls this replica has served so far, x squared)."""
    global _calls
    _calls += 1
    await asyncio.sleep(0.05)
    return socket.gethostname(), _calls, x * x


@warm.task
async def greet_all(n: int) -> list[tuple[str, int, int]]:
    return list(await asyncio.gather(*(hello(i) for i in range(n))))


# ---------------------------------------------------------------- pod deletion

slow = flyte.TaskEnvironment(
    name="k8s-slow",
    image=image,
    stop_grace=2,
    reusable=flyte.ReusePolicy(replicas=2, concurrency=1, idle_ttl=600, scaledown_ttl=600),
)


@slow.task
async def nap(i: int, seconds: float) -> tuple[int, str]:
    await asyncio.sleep(seconds)
    return i, socket.gethostname()


# ---------------------------------------------------------------- out of memory

hungry = flyte.TaskEnvironment(
    name="k8s-hungry",
    image=image,
    resources=flyte.Resources(memory="200Mi"),
    reusable=flyte.ReusePolicy(replicas=1, concurrency=1, idle_ttl=600, scaledown_ttl=600),
)


@hungry.task
def allocate(mib: int) -> int:
    hog = bytearray(mib * 2**20)
    for offset in range(0, len(hog), 4096):
        hog[offset] = 1
    return len(hog)
