"""The in-container runtime: one worker per replica."""

from reuse_runtime.worker.server import WorkerConfig, WorkerServer, serve

__all__ = ["WorkerConfig", "WorkerServer", "serve"]
