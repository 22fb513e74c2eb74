"""reuse-runtime: reusable containers you can run anywhere.

``import reuse_runtime as flyte`` makes Flyte's reusable-container examples run
on a local pool of warm worker processes::

    import reuse_runtime as flyte

    env = flyte.TaskEnvironment(name="demo", reusable=flyte.ReusePolicy(replicas=2))

    @env.task
    async def square(x: int) -> int:
        return x * x

    if __name__ == "__main__":
        flyte.init_from_config()
        print(flyte.run(square, 7).outputs())   # 49
"""

from reuse_runtime.errors import (
    BacklogFullError,
    OOMError,
    ReplicaLostError,
    ReuseRuntimeError,
    TaskCancelledError,
    TaskFailedError,
    TaskTimedOutError,
)
from reuse_runtime.policy import ReusePolicy
from reuse_runtime.sdk import (
    Image,
    Resources,
    Run,
    TaskEnvironment,
    TaskTemplate,
    init,
    init_from_config,
    run,
    shutdown,
)

__version__ = "0.1.0"

__all__ = [
    "BacklogFullError",
    "Image",
    "OOMError",
    "ReplicaLostError",
    "Resources",
    "ReusePolicy",
    "ReuseRuntimeError",
    "Run",
    "TaskCancelledError",
    "TaskEnvironment",
    "TaskFailedError",
    "TaskTemplate",
    "TaskTimedOutError",
    "init",
    "init_from_config",
    "run",
    "shutdown",
]
