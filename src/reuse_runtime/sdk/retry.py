"""`RetryStrategy`, `Backoff` and `Timeout`, as Flyte spells them.

``@env.task(retries=3)`` or ``retries=RetryStrategy(count=3, backoff=Backoff(...))``:
a task that raises is run again, up to ``count`` more times; with a backoff, the
n-th retry waits ``min(base * factor**n, cap)`` first. A task that raises
``flyte.errors.NonRecoverableError`` is not retried.

``timeout=30``, ``timeout=timedelta(minutes=1)`` or ``timeout=Timeout(...)``:
``max_runtime`` bounds each attempt (the task sees ``CancelledError`` and the
caller gets ``TaskTimeoutError``); ``deadline`` bounds all attempts together,
from submission. ``max_queued_time`` has no local meaning (tasks wait in the
controller's backlog, not a cluster queue); it is accepted with a warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from reuse_runtime.errors import raised_at_callers_line
from reuse_runtime.model import RetryBackoff
from reuse_runtime.policy import seconds_text
from reuse_runtime.sdk.ignored import note_ignored


@raised_at_callers_line
@dataclass(frozen=True)
class Backoff:
    """Exponential backoff between retries: the n-th (from 0) waits ``min(base * factor**n, cap)``.

    Args:
        base: the first delay; at least 0.
        factor: the multiplier per retry, at least 1.0 (1.0: a constant delay).
        cap: the largest delay; required when ``factor > 1``.
    """

    base: timedelta
    factor: float = 1.0
    cap: timedelta | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.base, timedelta):
            raise TypeError(f"Backoff.base must be a timedelta, got {type(self.base).__name__}")
        if self.base < timedelta(0):
            raise ValueError(f"Backoff.base must be >= 0, got {seconds_text(self.base)}")
        if (
            isinstance(self.factor, bool)
            or not isinstance(self.factor, (int, float))
            or math.isnan(self.factor)
            or math.isinf(self.factor)
        ):
            raise ValueError(f"Backoff.factor must be a finite number, got {self.factor!r}")
        if self.factor < 1.0:
            raise ValueError(f"Backoff.factor must be >= 1.0, got {self.factor}")
        if self.cap is not None and self.cap < timedelta(0):
            raise ValueError(f"Backoff.cap must be >= 0, got {seconds_text(self.cap)}")
        if self.factor > 1.0 and self.cap is None:
            raise ValueError(
                "Backoff.cap is required when factor > 1.0 to prevent unbounded growth"
            )

    def compute_delay(self, n: int) -> timedelta:
        """The delay before the n-th retry (from 0)."""
        if n < 0:
            raise ValueError(f"Retry index n must be >= 0, got {n}")
        delay = self.base * (self.factor**n)
        return self.cap if self.cap is not None and delay > self.cap else delay

    def to_model(self) -> RetryBackoff:
        cap = self.cap.total_seconds() if self.cap is not None else 0.0
        return RetryBackoff(self.base.total_seconds(), float(self.factor), cap)


@raised_at_callers_line
@dataclass(frozen=True)
class RetryStrategy:
    """How often a task that raised is run again.

    Args:
        count: retries after the first attempt; 0 disables them.
        backoff: the wait before each retry; unset, retries start at once.
    """

    count: int
    backoff: Backoff | None = None

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0:
            raise ValueError(f"retries must be a non-negative int, got {self.count!r}")
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            raise TypeError(f"backoff must be a flyte.Backoff, got {type(self.backoff).__name__}")


def retry_from_request(retries: int | RetryStrategy) -> RetryStrategy:
    if isinstance(retries, RetryStrategy):
        return retries
    return RetryStrategy(count=retries)


def _seconds(name: str, value: object) -> float:
    if value is None:
        return 0.0
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ValueError(f"{name} must be seconds (int) or a timedelta, got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{name} must not be negative, got {seconds_text(seconds)}")
    return seconds


@raised_at_callers_line
@dataclass(frozen=True)
class Timeout:
    """Time bounds of a task; unset (``None``) or zero means unbounded.

    Args:
        max_runtime: each attempt's running time (seconds or timedelta).
        max_queued_time: time waiting to start; no local meaning (warned about).
        deadline: all attempts together, from submission.
    """

    max_runtime: timedelta | int | None = None
    max_queued_time: timedelta | int | None = None
    deadline: timedelta | int | None = None

    def __post_init__(self) -> None:
        _seconds("max_runtime", self.max_runtime)
        if _seconds("max_queued_time", self.max_queued_time):
            note_ignored(
                "Timeout(max_queued_time=...)",
                "tasks wait in the controller's backlog, which has no per-task limit",
            )
        _seconds("deadline", self.deadline)

    @property
    def runtime_seconds(self) -> float | None:
        return _seconds("max_runtime", self.max_runtime) or None

    @property
    def deadline_seconds(self) -> float | None:
        return _seconds("deadline", self.deadline) or None


TimeoutType = Timeout | int | timedelta


def timeout_from_request(timeout: TimeoutType | float | None) -> Timeout:
    """A bare number of seconds or a timedelta is ``max_runtime``, as in Flyte."""
    if timeout is None:
        return Timeout()
    if isinstance(timeout, Timeout):
        return timeout
    if isinstance(timeout, (int, float, timedelta)) and not isinstance(timeout, bool):
        if _seconds("timeout", timeout) == 0:
            return Timeout()
        return Timeout(max_runtime=timeout)  # type: ignore[arg-type]
    raise ValueError(
        f"timeout must be seconds (int), a timedelta or a flyte.Timeout, got {timeout!r}"
    )


__all__ = ["Backoff", "RetryStrategy", "Timeout", "TimeoutType"]
