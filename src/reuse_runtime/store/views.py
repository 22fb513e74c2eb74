"""What the store answers with: runs, actions, log lines, replay outcomes, pages.

The views every layer shares (runs, actions, log lines, pages) are defined in
:mod:`reuse_runtime.runinfo` and re-exported here; the store's own are below.

Every answer is a frozen snapshot of what was committed when it was read. Values
(a run's inputs and output, an action's output) are not in these views: they can
be large, and are read on demand (``store.action_output(...)``); the views carry
their size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from reuse_runtime.runinfo import (
    ActionInfo,
    ActionPhase,
    ErrorInfo,
    GroupSummary,
    LogEntry,
    Page,
    RunFilter,
    RunInfo,
)

__all__ = [
    "ActionInfo",
    "ActionReport",
    "ChildCounts",
    "GroupSummary",
    "LogEntry",
    "Page",
    "ReplayOutcome",
    "RunFilter",
    "RunInfo",
    "StoreState",
    "StoreStatistics",
    "UnfinishedRun",
]


@dataclass(frozen=True, slots=True)
class ChildCounts:
    """Finished children of one parent by ``(group, phase)``, and the mark to count on from
    (``store.child_counts(run, parent, since=mark)``: only those that ended after it)."""

    counts: Mapping[tuple[str, ActionPhase], int]
    mark: int


@dataclass(frozen=True, slots=True)
class ActionReport:
    """An action's ``flyte.report``: its HTML as last flushed, and when (epoch seconds).

    The HTML is the task's own, scripts and all: show it only in a sandboxed frame.
    """

    action_id: str
    at: float
    html: str


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    """What a child call ended with, as durable replay answers it.

    ``output`` is the pickled value of a succeeded child; a failed one has ``error``
    (with the pickled exception). ``output`` is None when the value was too large to
    keep: the child must run again.
    """

    action_id: str
    phase: ActionPhase
    output: bytes | None
    error: ErrorInfo | None


@dataclass(frozen=True, slots=True)
class UnfinishedRun:
    """A run without a terminal phase, and what it takes to submit its root again."""

    name: str
    root_action_id: str
    task: str
    environment: str
    phase: ActionPhase
    created: float
    #: The controller's serialized submission of the root, as it gave it.
    submission: bytes


StoreState = Literal["ok", "full", "broken", "closed"]


@dataclass(frozen=True, slots=True)
class StoreStatistics:
    """A snapshot of the store: how much waits, what was written, and whether it accepts.

    ``state`` is ``"ok"``; ``"full"`` while a write fails for want of space (the
    records wait in memory and are retried; ``reason`` names the path); ``"broken"``
    when writes fail for another reason (``reason`` says which); ``"closed"``.
    """

    state: StoreState
    reason: str
    path: str
    #: Records waiting to be written (queued, or held back while full).
    queued: int
    batches: int
    records: int
    #: Records given up: past the bound of what waits while full, or unwritable.
    dropped: int
    runs: int
    db_bytes: int
    blob_bytes: int
    pruned_runs: int
    last_error: str
    #: A one-line notice from opening (a corrupt file moved aside), or "".
    notice: str = ""

    @property
    def bytes(self) -> int:
        return self.db_bytes + self.blob_bytes
