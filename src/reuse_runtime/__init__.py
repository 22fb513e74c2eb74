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
        print(flyte.run(square, 7).outputs()[0])   # 49

The public names are Flyte's (``flyte.TaskEnvironment``, ``flyte.map``,
``flyte.group``, ``flyte.trace``, ``flyte.Cache``, ``flyte.Secret``,
``flyte.errors``, ``flyte.io.File``, ...), so Flyte code ports by changing the
import.
"""

import os as _os
import sys as _sys

# gRPC's C core logs to stderr on its own (``E1123 ... add_port.cc``); the errors
# it reports reach Python as exceptions, which say what to do. GRPC_VERBOSITY=debug
# (set before the import) brings the lines back.
_os.environ.setdefault("GRPC_VERBOSITY", "NONE")

from reuse_runtime import errors, io, remote, report, storage
from reuse_runtime._version import __version__, version
from reuse_runtime.errors import (
    BacklogFullError,
    ReplicaLostError,
    ReuseRuntimeError,
    TaskCancelledError,
    TaskFailedError,
    TaskTimedOutError,
)
from reuse_runtime.policy import ReusePolicy
from reuse_runtime.sdk import (
    AsyncFunctionTaskTemplate,
    Backoff,
    Cache,
    CachePolicy,
    CacheRequest,
    ConditionWebhook,
    Environment,
    Image,
    PodTemplate,
    Resources,
    RetryStrategy,
    Run,
    Secret,
    SecretRequest,
    TaskEnvironment,
    TaskTemplate,
    Timeout,
    TimeoutType,
    ctx,
    custom_context,
    get_custom_context,
    group,
    init,
    init_from_config,
    logger,
    map,
    new_condition,
    run,
    shutdown,
    trace,
    with_runcontext,
)
from reuse_runtime.sdk.excepthook import install as _install_excepthook
from reuse_runtime.sdk.ignored import ReuseRuntimeWarning
from reuse_runtime.sdk.ignored import install_format as _install_warning_format

__all__ = [
    "AsyncFunctionTaskTemplate",
    "BacklogFullError",
    "Backoff",
    "Cache",
    "CachePolicy",
    "CacheRequest",
    "ConditionWebhook",
    "Environment",
    "Image",
    "PodTemplate",
    "ReplicaLostError",
    "Resources",
    "RetryStrategy",
    "ReusePolicy",
    "ReuseRuntimeError",
    "ReuseRuntimeWarning",
    "Run",
    "Secret",
    "SecretRequest",
    "TaskCancelledError",
    "TaskEnvironment",
    "TaskFailedError",
    "TaskTemplate",
    "TaskTimedOutError",
    "Timeout",
    "TimeoutType",
    "__version__",
    "ctx",
    "custom_context",
    "errors",
    "get_custom_context",
    "group",
    "init",
    "init_from_config",
    "io",
    "logger",
    "map",
    "new_condition",
    "remote",
    "report",
    "run",
    "shutdown",
    "storage",
    "trace",
    "version",
    "with_runcontext",
]

# The hook suggests a misspelled keyword from the public API named above.
_install_excepthook(_sys.modules[__name__])
_install_warning_format()
