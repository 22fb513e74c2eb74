"""Backends start and stop replicas: local subprocesses, containers, or pods."""

from reuse_runtime.backends.base import Backend, ExitStatus, ReplicaHandle, ReplicaLaunch
from reuse_runtime.backends.local import LocalBackend

__all__ = ["Backend", "ExitStatus", "LocalBackend", "ReplicaHandle", "ReplicaLaunch"]
