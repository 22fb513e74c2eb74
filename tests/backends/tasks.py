"""Tasks for the local backend's tests, imported by the replicas."""

from __future__ import annotations

import os
import sys

import psutil

import reuse_runtime as flyte

where = flyte.TaskEnvironment(
    name="where", reusable=flyte.ReusePolicy(replicas=1, idle_ttl=60), env_vars={"MARK": "m1"}
)


@where.task
async def describe() -> dict[str, object]:
    """What a replica sees of its process: who started it, where, with what."""
    parent = psutil.Process(os.getppid())
    return {
        "pid": os.getpid(),
        "parent": parent.pid,
        "parent_command": " ".join(parent.cmdline()),
        "session_leader": os.getsid(0) == os.getpid(),
        "cwd": os.getcwd(),
        "path0": sys.path[0],
        "mark": os.environ.get("MARK"),
        "argv": sys.argv[1:2],
    }


def environment(name: str, **env_vars: str) -> flyte.TaskEnvironment:
    """An environment of its own for ``describe``, with ``env_vars``."""
    env = flyte.TaskEnvironment(
        name=name, reusable=flyte.ReusePolicy(replicas=1, idle_ttl=60), env_vars=env_vars
    )
    env.task(describe)
    return env
