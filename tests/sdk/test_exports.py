"""The public names: Flyte's, under ``import reuse_runtime as flyte``. Pinned, so a
name cannot disappear (or appear) by accident."""

from __future__ import annotations

import reuse_runtime as flyte

EXPORTS = {
    # Flyte's names
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
    "ReusePolicy",
    "Run",
    "Secret",
    "SecretRequest",
    "TaskEnvironment",
    "TaskTemplate",
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
    "storage",
    "remote",
    "report",
    "logger",
    "map",
    "new_condition",
    "run",
    "trace",
    "version",
    "with_runcontext",
    # reuse-runtime's own
    "BacklogFullError",
    "ReplicaLostError",
    "ReuseRuntimeError",
    "ReuseRuntimeWarning",
    "TaskCancelledError",
    "TaskFailedError",
    "TaskTimedOutError",
    "shutdown",
}


def test_public_names_are_pinned() -> None:
    assert set(flyte.__all__) == EXPORTS
    for name in EXPORTS:
        assert getattr(flyte, name) is not None, name


def test_flyte_submodules_resolve_as_attributes_and_imports() -> None:
    import reuse_runtime.errors
    import reuse_runtime.io

    assert flyte.errors is reuse_runtime.errors
    assert flyte.io.File is reuse_runtime.io.File
    assert flyte.io.Dir is reuse_runtime.io.Dir


def test_the_blocking_calls_have_their_aio_forms() -> None:
    for fn in (flyte.run, flyte.init, flyte.init_from_config):
        assert callable(fn.aio)
    assert callable(flyte.map.aio)
    assert flyte.version() == flyte.__version__
