"""``flyte.remote``'s names that local programs use: ``ActionOutputs``."""

from reuse_runtime.sdk.outputs import ActionOutputs

__all__ = ["ActionOutputs"]
