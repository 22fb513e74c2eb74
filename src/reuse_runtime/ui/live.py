"""What the web UI asks of a running controller: a narrow, read-only protocol.

The runs store knows every finished action and every line printed; only the
controller knows what is happening now: its environments and replicas, the
actions waiting or running, how far a run has got. The controller hands the UI
a :class:`LiveState` (``reuse_runtime.controller.ui_state`` adapts its service to
it); ``reuse-runtime ui``, serving a store after its controller has gone, has
none.

Call-order contract: every method is called on the controller's event loop, is
synchronous and cheap (no I/O), and returns a frozen snapshot. The UI calls them
only while a browser asks for a page, except :meth:`LiveState.counters`, which
its history sampler reads every few seconds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from reuse_runtime.model import EnvironmentStatus, RunProgress
from reuse_runtime.store.phases import ActionPhase


@dataclass(frozen=True, slots=True)
class RunningAction:
    """An action the controller holds: waiting for a replica, or running on one.

    ``created`` and ``started`` are epoch seconds, or None where the controller
    does not know them.
    """

    action_id: str
    parent_id: str
    task: str
    environment: str
    group: str
    phase: ActionPhase
    replica: str = ""
    attempts: int = 0
    created: float | None = None
    started: float | None = None


@dataclass(frozen=True, slots=True)
class RunningPage:
    """Some of the actions asked for that run on replicas now, and how many there are.

    ``groups`` counts those on replicas per ``(group, phase)``, whatever group was
    asked for (what the tree folds); ``waiting``, with a parent asked for, how many of
    its children wait for a replica (queued, or backing off before a retry).
    """

    actions: tuple[RunningAction, ...] = ()
    total: int = 0
    groups: tuple[tuple[str, ActionPhase, int], ...] = ()
    waiting: int = 0


@dataclass(frozen=True, slots=True)
class PoolCounters:
    """One environment's counters at one moment (what the UI's hour chart samples).

    ``completed`` and ``failed`` count every task the pool ended since it began.
    """

    key: str
    name: str
    completed: int
    failed: int
    backlog: int
    replicas: int


class LiveState(Protocol):
    """A live controller, as the web UI sees it (see the module's call-order contract)."""

    def environments(self) -> tuple[EnvironmentStatus, ...]:
        """Every environment with its replicas and recent pool events."""
        ...

    def counters(self) -> tuple[PoolCounters, ...]:
        """Every environment's counters (read every few seconds: keep it cheap)."""
        ...

    def progress(self, run: str) -> RunProgress:
        """How far ``run`` has got (``found`` False when the controller holds none of it)."""
        ...

    def running(
        self, run: str, *, parent: str | None = None, group: str | None = None, limit: int = 50
    ) -> RunningPage:
        """Up to ``limit`` of ``run``'s actions on replicas now: with ``parent``, only its
        children ("" for the run's root itself); with ``group`` too, only those in that
        group ("" for those in none). Its cost is that of the tasks on replicas, not of
        the run's size: a fan-out of 100,000 waiting children is not walked."""
        ...

    def action(self, run: str, action_id: str) -> RunningAction | None:
        """The action, if the controller holds it."""
        ...

    def aborting(self, run: str) -> bool:
        """Whether ``run`` was aborted at this controller (the UI asks while the store
        does not have it ended: its actions are being cancelled)."""
        ...


#: Aborts a run: ``(run name, reason)`` -> whether the controller held it.
Abort = Callable[[str, str], Awaitable[bool]]
#: Signals a condition: ``(run name, condition's action id, value as typed)``; raises
#: ``BadInputError`` (a value not of its type, or it ended) or ``RunNotFoundError``.
Signal = Callable[[str, str, str], Awaitable[None]]
