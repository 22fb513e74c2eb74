"""What the store answers with: runs, actions, log lines, replay outcomes, pages.

Every answer is a frozen snapshot of what was committed when it was read. Values
(a run's inputs and output, an action's output) are not in these views: they can
be large, and are read on demand (``store.action_output(...)``); the views carry
their size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from reuse_runtime.store.phases import ActionPhase
from reuse_runtime.store.records import Attempt, ClientInfo, ErrorInfo, Trace

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; pass ``cursor`` back for the next one (None: no more)."""

    items: tuple[T, ...]
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A run as recorded: who submitted what, when, and how it ended.

    ``error.pickled`` is empty here; ``store.run_output(name)`` reads it.
    """

    name: str
    phase: ActionPhase
    task: str
    environment: str
    root_action_id: str
    client: ClientInfo
    created: float
    started: float | None
    ended: float | None
    inputs_preview: str
    #: The size of the pickled inputs kept, or None when they were not kept (too large).
    inputs_size: int | None
    output_size: int | None
    error: ErrorInfo | None
    labels: tuple[tuple[str, str], ...]
    #: Finished actions per phase (running ones are in the controller's memory).
    counts: Mapping[ActionPhase, int] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.phase.is_terminal


@dataclass(frozen=True, slots=True)
class ActionInfo:
    """A finished action, with its attempts and traces.

    ``error.pickled`` is empty here: the pickled exception, like the output, can be
    large and is read with ``store.action_output(run, action_id)``.
    """

    run: str
    action_id: str
    parent_id: str
    call_key: str
    task: str
    environment: str
    group: str
    phase: ActionPhase
    created: float
    started: float | None
    ended: float | None
    replica: str
    inputs_preview: str
    #: The size of the pickled output kept; None when there is none or it was too large.
    output_size: int | None
    error: ErrorInfo | None
    attempts: tuple[Attempt, ...]
    traces: tuple[Trace, ...]
    #: How many finished actions this one called.
    children: int = 0


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """The finished children of one parent in one ``flyte.group()`` ("" for none)."""

    group: str
    counts: Mapping[ActionPhase, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A line an action printed.

    ``seq`` orders every line of the store; pass the last one seen as ``after`` to
    read on (``--follow``). ``line`` counts the action's lines from 1;
    ``dropped_before`` says how many lines before this one were not kept (an
    action's log keeps its first and last lines past its bound).
    """

    seq: int
    action_id: str
    line: int
    at: float
    stream: str
    text: str
    dropped_before: int = 0


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


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs a listing returns; every field set must match.

    ``labels`` are pairs a run must all carry, ``label_keys`` keys it must carry
    with any value (Flyte's ``with_labels``/``with_label_keys``); ``user`` is who
    submitted it; ``created_after``/``created_before`` bound the creation time
    (inclusive, seconds since the epoch).
    """

    phases: tuple[ActionPhase, ...] = ()
    environment: str | None = None
    task: str | None = None
    name_contains: str | None = None
    user: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    label_keys: tuple[str, ...] = ()
    created_after: float | None = None
    created_before: float | None = None


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
