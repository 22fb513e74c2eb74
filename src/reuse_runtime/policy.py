"""`ReusePolicy`: how many warm replicas an environment keeps, and when they retire.

It mirrors ``flyte.ReusePolicy`` field for field, so Flyte code ports by changing
one import, and adds optional recycling bounds (``max_tasks``, ``max_rss``,
``max_lifetime``) that drain and replace a replica before it leaks too much.

Example::

    >>> from reuse_runtime import ReusePolicy
    >>> p = ReusePolicy(replicas=(1, 3), concurrency=2)
    >>> p.min_replicas, p.max_replicas
    (1, 3)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from reuse_runtime.envvars import env_number
from reuse_runtime.envvars import parse_bytes as parse_bytes  # also imported from here
from reuse_runtime.errors import PolicyError, raised_at_callers_line

#: The documented minimum for ``idle_ttl`` and ``scaledown_ttl``.
DEFAULT_MIN_TTL_SECONDS = 30.0
#: Lowers the TTL floor, so tests and demos can run in seconds.
MIN_TTL_ENV = "REUSE_RUNTIME_MIN_TTL_SECONDS"

_DEFAULT_TTL = timedelta(seconds=30)


def min_ttl_seconds() -> float:
    """The TTL floor: 30 s, or ``$REUSE_RUNTIME_MIN_TTL_SECONDS`` when set."""
    return env_number(
        MIN_TTL_ENV,
        DEFAULT_MIN_TTL_SECONDS,
        float,
        valid=lambda seconds: seconds >= 0,
        needs="a number of seconds, at least 0",
    )


def _ttl(name: str, value: object, *, floor: float | None) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, (int, float, timedelta)):
        raise PolicyError(
            f"{name} must be seconds (int) or a datetime.timedelta, got {type(value).__name__}"
        )
    ttl = value if isinstance(value, timedelta) else timedelta(seconds=value)
    if ttl.total_seconds() < 0:
        raise PolicyError(f"{name} must not be negative, got {seconds_text(value)}")
    if floor is not None and ttl.total_seconds() < floor:
        raise PolicyError(
            f"{name} must be at least {floor:g} seconds, got {ttl.total_seconds():g}; "
            f"set {MIN_TTL_ENV} to lower the floor for tests and demos"
        )
    return ttl


def seconds_text(value: float | timedelta) -> str:
    """A duration as the user gave it, in seconds: ``-5 seconds``, never ``-1 day, 23:59:55``."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    return f"{seconds:g} seconds"


def _count(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise PolicyError(f"{name} must be at least {minimum}, got {value}")
    return value


@raised_at_callers_line
@dataclass(frozen=True)
class ReusePolicy:
    """Keep a pool of warm replicas for a ``TaskEnvironment``.

    Args:
        replicas: a fixed count (``3``) or an autoscaling range ``(min, max)``.
            Default 2. With ``(0, n)`` the pool scales to zero. Stored as a
            ``(min, max)`` pair, as Flyte does: ``ReusePolicy(replicas=2).replicas``
            is ``(2, 2)``.
        idle_ttl: when the whole environment has been idle this long, every
            replica stops; the next task starts it again. Seconds or timedelta,
            at least 30 s. Default 30 s.
        concurrency: tasks one replica runs at once. Values above 1 apply to
            ``async`` tasks; ``def`` tasks run one at a time. Default 1.
        scaledown_ttl: a replica idle this long is removed, while more than
            ``min_replicas`` remain. Seconds or timedelta, at least 30 s.
            Default 30 s; ``None`` leaves it to the controller's default.
        scope: ``"global"`` (default): one pool serves every run; ``"run"``: each
            run gets a pool of its own, which no other run's tasks share.
        max_tasks: recycle a replica after it has run this many tasks.
        max_rss: recycle a replica whose resident memory exceeds this many
            bytes (int) or this size (``"400Mi"``, ``"2Gi"``).
        max_lifetime: recycle a replica older than this (seconds or timedelta).

    A recycled replica stops taking tasks, finishes the ones it runs, and is
    replaced by a fresh one: no task fails because of recycling.

    The 30 s floor of both TTLs can be lowered with the environment variable
    ``REUSE_RUNTIME_MIN_TTL_SECONDS`` (for tests and demos).
    """

    replicas: int | tuple[int, int] = 2
    idle_ttl: int | timedelta = _DEFAULT_TTL
    concurrency: int = 1
    scaledown_ttl: int | timedelta | None = _DEFAULT_TTL
    scope: Literal["global", "run"] = "global"
    max_tasks: int | None = field(default=None, kw_only=True)
    max_rss: int | str | None = field(default=None, kw_only=True)
    max_lifetime: int | timedelta | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        replicas = self.replicas
        if isinstance(replicas, (tuple, list)):
            if len(replicas) != 2:
                raise PolicyError(f"replicas must be an int or a (min, max) pair, got {replicas!r}")
            low = _count("replicas (min)", replicas[0], minimum=0)
            high = _count("replicas (max)", replicas[1], minimum=1)
            if low > high:
                raise PolicyError(f"replicas: min ({low}) must not be greater than max ({high})")
            object.__setattr__(self, "replicas", (low, high))
        else:
            count = _count("replicas", replicas, minimum=1)
            object.__setattr__(self, "replicas", (count, count))
        if self.scope not in ("global", "run"):
            raise PolicyError(f'scope must be "global" or "run", got {self.scope!r}')
        _count("concurrency", self.concurrency, minimum=1)
        floor = min_ttl_seconds()
        object.__setattr__(self, "idle_ttl", _ttl("idle_ttl", self.idle_ttl, floor=floor))
        if self.scaledown_ttl is not None:
            object.__setattr__(
                self, "scaledown_ttl", _ttl("scaledown_ttl", self.scaledown_ttl, floor=floor)
            )
        if self.max_tasks is not None:
            _count("max_tasks", self.max_tasks, minimum=1)
        if self.max_rss is not None:
            object.__setattr__(self, "max_rss", parse_bytes(self.max_rss, field_name="max_rss"))
        if self.max_lifetime is not None:
            object.__setattr__(
                self, "max_lifetime", _ttl("max_lifetime", self.max_lifetime, floor=None)
            )

    @property
    def min_replicas(self) -> int:
        """The smallest number of replicas the pool keeps while it is in use."""
        return self.replicas[0] if isinstance(self.replicas, tuple) else self.replicas

    @property
    def max_replicas(self) -> int:
        """The largest number of replicas the pool grows to."""
        return self.replicas[1] if isinstance(self.replicas, tuple) else self.replicas

    def get_scaledown_ttl(self) -> timedelta | None:
        """The per-replica scale-down delay, or ``None`` when it is unset."""
        ttl = self.scaledown_ttl
        return ttl if isinstance(ttl, timedelta) or ttl is None else timedelta(seconds=ttl)

    @property
    def capacity(self) -> int:
        """Tasks the environment runs at once: ``max_replicas * concurrency``."""
        return self.max_replicas * self.concurrency
