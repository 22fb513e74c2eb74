"""`Resources`: what one replica may use, with flyte's signature and accepted forms.

The container backend enforces them as container limits: ``cpu`` and
``memory`` (a ``(request, limit)`` range sets a reservation and a limit),
``shm`` as the size of ``/dev/shm``. ``disk`` is recorded, and the container
backend warns that the engine cannot enforce it; ``gpu`` is refused by it.
Local replicas (subprocesses) run unconstrained.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from reuse_runtime.envvars import parse_bytes
from reuse_runtime.errors import PolicyError, raised_at_callers_line

CPUBaseType = int | float | str
_CPU = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(m?)\s*$")
_GPU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*:\d+$")


def parse_cpu(value: CPUBaseType, field_name: str = "Resources.cpu") -> float:
    """Cores as a float: ``1``, ``0.5``, ``"2"``, ``"500m"``."""
    if isinstance(value, bool):
        raise PolicyError(f"{field_name} must be a number of cores or like '500m', got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise PolicyError(f"{field_name} must be greater than or equal to 0, got {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _CPU.match(value)
        if match:
            number = float(match.group(1))
            return number / 1000 if match.group(2) else number
    raise PolicyError(f"{field_name} must be a number of cores or like '500m', got {value!r}")


def _pair(value: Any, what: str) -> tuple[Any, Any]:
    """(request, limit): a tuple is a range, a single value is both."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise PolicyError(f"{what} tuple must have exactly two elements (request, limit)")
        return value[0], value[1]
    return value, value


@raised_at_callers_line
@dataclass(frozen=True)
class Resources:
    """CPU, memory, GPU, disk and shared memory for each replica of an environment.

    Examples (flyte's forms)::

        Resources(cpu=1, memory="1Gi")
        Resources(cpu=(1, 2), memory=("1Gi", "2Gi"))   # request, limit
        Resources(cpu="500m", memory="512Mi", shm="1Gi")

    Args:
        cpu: cores: ``1``, ``0.5``, ``"500m"``, or a ``(request, limit)`` range.
        memory: ``"512Mi"``, ``"1Gi"``, ``"500M"``, bytes, or a ``(request, limit)`` range.
        gpu: a count, or ``"T4:1"``-style type and count.
        disk: ephemeral disk, ``"10Gi"``.
        shm: size of ``/dev/shm``, ``"1Gi"``, or ``"auto"`` (as large as the memory limit).
    """

    cpu: CPUBaseType | tuple[CPUBaseType, CPUBaseType] | None = None
    memory: str | int | tuple[str | int, str | int] | None = None
    gpu: str | int | Any | None = None
    disk: str | int | None = None
    shm: str | int | Literal["auto"] | None = None

    def __post_init__(self) -> None:
        # Parse once to raise a clear error now, not at the first replica start.
        limits = self.limits()
        cpu_request, cpu_limit = limits.cpu_request, limits.cpu_limit
        if cpu_request is not None and cpu_limit is not None and cpu_request > cpu_limit:
            raise PolicyError(f"Resources.cpu request {self.cpu!r} is above its limit")
        low, high = limits.memory_request, limits.memory_limit
        if low is not None and high is not None and low > high:
            raise PolicyError(f"Resources.memory request {self.memory!r} is above its limit")

    def limits(self) -> ResourceLimits:
        """The values in cores and bytes."""
        cpu_request = cpu_limit = None
        if self.cpu is not None:
            request, limit = _pair(self.cpu, "cpu")
            cpu_request, cpu_limit = parse_cpu(request), parse_cpu(limit)
        memory_request = memory_limit = None
        memory_text = ""
        if self.memory is not None:
            request, limit = _pair(self.memory, "memory")
            memory_request = parse_bytes(request, field_name="Resources.memory")
            memory_limit = parse_bytes(limit, field_name="Resources.memory")
            memory_text = str(limit)
        gpu = 0
        if self.gpu is not None:
            gpu = _gpu_count(self.gpu)
        disk = (
            parse_bytes(self.disk, field_name="Resources.disk") if self.disk is not None else None
        )
        shm: int | Literal["auto"] | None = None
        if self.shm == "auto":
            shm = "auto"
        elif self.shm is not None:
            shm = parse_bytes(self.shm, field_name="Resources.shm")
        return ResourceLimits(
            cpu_request, cpu_limit, memory_request, memory_limit, memory_text, gpu, disk, shm
        )

    def to_wire(self) -> str:
        """The values as given, as JSON: how they travel to the controller."""
        data = {
            "cpu": list(self.cpu) if isinstance(self.cpu, tuple) else self.cpu,
            "memory": list(self.memory) if isinstance(self.memory, tuple) else self.memory,
            "gpu": self.gpu
            if isinstance(self.gpu, (int, str)) or self.gpu is None
            else (_gpu_count(self.gpu)),
            "disk": self.disk,
            "shm": self.shm,
        }
        return json.dumps({k: v for k, v in data.items() if v is not None}, sort_keys=True)

    @classmethod
    def from_wire(cls, text: str) -> Resources:
        """Parse :meth:`to_wire` (``""`` is no resources); raises ``PolicyError``."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
        except ValueError:
            raise PolicyError(f"malformed resources {text[:100]!r}") from None
        if not isinstance(data, dict):
            raise PolicyError(f"malformed resources {text[:100]!r}")
        known = {"cpu", "memory", "gpu", "disk", "shm"}
        if set(data) - known:
            raise PolicyError(f"unknown resources {sorted(set(data) - known)}")
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        return cls(**values)

    def describe(self) -> str:
        parts = [
            f"{k}={v}"
            for k, v in (
                ("cpu", self.cpu),
                ("memory", self.memory),
                ("gpu", self.gpu),
                ("disk", self.disk),
                ("shm", self.shm),
            )
            if v is not None
        ]
        return ",".join(parts)


def _gpu_count(gpu: Any) -> int:
    if isinstance(gpu, bool):
        raise PolicyError(f"Resources.gpu must be a count or like 'T4:1', got {gpu!r}")
    if isinstance(gpu, int):
        if gpu < 0:
            raise PolicyError("Resources.gpu must be greater than or equal to 0")
        return gpu
    if isinstance(gpu, str):
        if not _GPU.match(gpu):
            raise PolicyError(f"Resources.gpu must be a count or like 'T4:1', got {gpu!r}")
        return int(gpu.rsplit(":", 1)[1])
    quantity = getattr(gpu, "quantity", None)  # flyte's Device, GPU(...), TPU(...)
    if isinstance(quantity, int) and quantity >= 1:
        return quantity
    raise PolicyError(f"Resources.gpu must be a count, like 'T4:1', or a Device, got {gpu!r}")


@dataclass(frozen=True)
class ResourceLimits:
    """Parsed :class:`Resources`: cores and bytes, None where unset."""

    cpu_request: float | None = None
    cpu_limit: float | None = None
    memory_request: int | None = None
    memory_limit: int | None = None
    #: The memory limit as the user wrote it ("200Mi"), for messages.
    memory_text: str = ""
    gpu: int = 0
    disk: int | None = None
    shm: int | Literal["auto"] | None = None
