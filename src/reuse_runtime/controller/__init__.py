"""The controller: one pool of replicas per environment, autoscaled by a pure policy."""

from reuse_runtime.controller.server import ControllerConfig, ControllerServer

__all__ = ["ControllerConfig", "ControllerServer"]
