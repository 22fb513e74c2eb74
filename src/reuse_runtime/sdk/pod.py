"""`PodTemplate`: a Kubernetes pod template for an environment. Recorded, for the
Kubernetes backend; the local backend has no pods."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class PodTemplate:
    """A pod template, as Flyte spells it: a ``kubernetes`` ``V1PodSpec`` plus labels.

    Args:
        pod_spec: a ``kubernetes.client.V1PodSpec`` (or a dict of one).
        primary_container_name: the container the task runs in.
        labels: pod labels.
        annotations: pod annotations.
    """

    pod_spec: Any = None
    primary_container_name: str = "primary"
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    termination_grace_period: timedelta | None = field(default=None, kw_only=True)

    def with_termination_grace_period(self, grace: timedelta | int) -> PodTemplate:
        """A copy whose pods get ``grace`` to stop."""
        grace = grace if isinstance(grace, timedelta) else timedelta(seconds=grace)
        return replace(self, termination_grace_period=grace)
