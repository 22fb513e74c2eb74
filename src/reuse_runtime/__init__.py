"""reuse-runtime: reusable containers you can run anywhere."""

from reuse_runtime.policy import ReusePolicy

__all__ = ["ReusePolicy"]
