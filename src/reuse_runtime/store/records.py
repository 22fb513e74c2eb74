"""What the controller records: one record per run event, per finished action, per log line.

Records are immutable. The two that come once per task or per printed line,
:class:`ActionRecord` and :class:`LogRecord`, are named tuples: building one costs
a third of a frozen dataclass, and the store's writer reads them by unpacking. The
others are frozen dataclasses.

Times are seconds since the epoch (``time.time()``); ``0.0`` means "did not happen"
(an action aborted while queued never started). Values (inputs, outputs, a
submission) are the pickled bytes the controller already holds; the store keeps
them as they are, in the database when small and in a file beside it when large.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from reuse_runtime import model
from reuse_runtime.runinfo import ActionPhase, Attempt, ClientInfo, ErrorInfo, Trace

#: Pickled bytes, as the controller holds them (a view of a message's bytes is fine).
Value = bytes | memoryview

__all__ = [
    "ActionRecord",
    "Attempt",
    "ClientInfo",
    "ErrorInfo",
    "LogRecord",
    "RunEnded",
    "RunProgress",
    "RunSubmitted",
    "Trace",
    "Value",
]


class ActionRecord(NamedTuple):
    """An action (one task call) at its end: recorded once, by ``store.action_ended``.

    Running actions live in the controller's memory; the store learns of an action
    when it reaches a terminal phase. ``attempts`` lists every attempt when there
    was more than one; ``()`` means one attempt, the action itself. ``output`` is the
    pickled return value of a succeeded action; a failed one carries ``error``.
    """

    run: str
    action_id: str
    #: The action that called this one; "" for the run's root.
    parent_id: str
    #: The call's identity in its parent, the same on every attempt (durable replay).
    call_key: str
    task: str
    environment: str
    #: The ``flyte.group()`` the call was made in, or "".
    group: str
    phase: ActionPhase
    created: float
    started: float
    ended: float
    #: The replica of the last attempt, or "".
    replica: str
    #: A short human-readable rendering of the inputs (the store cuts it to its bound).
    inputs_preview: str
    output: Value = b""
    error: ErrorInfo | None = None
    attempts: tuple[Attempt, ...] = ()
    traces: tuple[Trace, ...] = ()


#: The stream of a :class:`LogRecord` that carries an action's ``flyte.report`` (its whole
#: HTML, as last flushed) instead of a line: the store keeps the latest one per action,
#: apart from its log (``store.action_report``). The same as a replica's ``LogLine``'s.
REPORT_STREAM = model.REPORT_STREAM


class LogRecord(NamedTuple):
    """One line an action printed, as it arrives (the store numbers and bounds them).

    A record on :data:`REPORT_STREAM` is the action's report instead: the controller
    records every line a replica sends the same way, and the store tells them apart.
    """

    run: str
    action_id: str
    #: ``"stdout"``, ``"stderr"`` (others are kept as ``"stdout"``), or ``"report"``.
    stream: str
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class RunSubmitted:
    """A run the controller accepted.

    ``submission`` is opaque to the store: the bytes the controller needs to submit
    the run's root again after a restart (:meth:`RunReader.unfinished_runs`). It is
    kept until the run ends. ``inputs`` are the root's pickled arguments, kept up to
    the store's bound (the preview is always kept).
    """

    name: str
    task: str
    environment: str
    root_action_id: str
    created: float
    client: ClientInfo = ClientInfo()  # noqa: RUF009 (frozen: safe to share)
    inputs: Value = b""
    inputs_preview: str = ""
    #: ``flyte.with_runcontext(labels=...)``, as sorted pairs.
    labels: tuple[tuple[str, str], ...] = ()
    submission: Value = b""
    phase: ActionPhase = ActionPhase.QUEUED


@dataclass(frozen=True, slots=True)
class RunProgress:
    """A run moved to a non-terminal phase (``waiting_for_resources``, ``running``...).

    The first move to ``running`` sets the run's start time.
    """

    name: str
    phase: ActionPhase
    at: float


@dataclass(frozen=True, slots=True)
class RunEnded:
    """A run reached a terminal phase, with its root's output or error."""

    name: str
    phase: ActionPhase
    ended: float
    output: Value = b""
    error: ErrorInfo | None = None
