"""The user-facing API: the names of ``flyte``'s, so code ports by changing one import."""

from reuse_runtime.sdk.environment import Image, Resources, TaskEnvironment, TaskTemplate
from reuse_runtime.sdk.runtime import Run, init, init_from_config, run, shutdown

__all__ = [
    "Image",
    "Resources",
    "Run",
    "TaskEnvironment",
    "TaskTemplate",
    "init",
    "init_from_config",
    "run",
    "shutdown",
]
