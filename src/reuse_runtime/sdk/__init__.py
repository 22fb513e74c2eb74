"""The user-facing API: the names of ``flyte``'s, so code ports by changing one import."""

from reuse_runtime.sdk.cache import Cache, CachePolicy, CacheRequest
from reuse_runtime.sdk.condition import ConditionWebhook, new_condition
from reuse_runtime.sdk.environment import (
    Environment,
    Image,
    Resources,
    TaskEnvironment,
    TaskTemplate,
)
from reuse_runtime.sdk.logger import logger
from reuse_runtime.sdk.map import map
from reuse_runtime.sdk.pod import PodTemplate
from reuse_runtime.sdk.retry import Backoff, RetryStrategy, Timeout, TimeoutType
from reuse_runtime.sdk.run import Run
from reuse_runtime.sdk.runcontext import with_runcontext
from reuse_runtime.sdk.runtime import init, init_from_config, run, shutdown
from reuse_runtime.sdk.secrets import Secret, SecretRequest
from reuse_runtime.sdk.task_context import ctx, custom_context, get_custom_context, group
from reuse_runtime.sdk.trace import trace

#: Flyte's name for the template of an ``async def`` task; here every task is a TaskTemplate.
AsyncFunctionTaskTemplate = TaskTemplate

__all__ = [
    "AsyncFunctionTaskTemplate",
    "Backoff",
    "Cache",
    "CachePolicy",
    "CacheRequest",
    "ConditionWebhook",
    "Environment",
    "Image",
    "PodTemplate",
    "Resources",
    "RetryStrategy",
    "Run",
    "Secret",
    "SecretRequest",
    "TaskEnvironment",
    "TaskTemplate",
    "Timeout",
    "TimeoutType",
    "ctx",
    "custom_context",
    "get_custom_context",
    "group",
    "init",
    "init_from_config",
    "logger",
    "map",
    "new_condition",
    "run",
    "shutdown",
    "trace",
    "with_runcontext",
]
