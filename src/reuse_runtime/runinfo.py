"""What a run and its actions are, as every layer sees them: phases, errors, views.

Plain frozen values with no I/O, so the wire (which converts them), the clients
(which return them), the store (which records and reads them) and the SDK (which
shows them) share one definition. :mod:`reuse_runtime.store` re-exports them.

``ActionPhase.SUCCEEDED == "succeeded"``, as ``flyte.models.ActionPhase`` has it,
so a phase compares with a string a user typed (``Run.listall(in_phase=("failed",))``).
Times are seconds since the epoch.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from reuse_runtime.model import (
    EnvironmentSpec,
    ErrorKind,
    LogLine,
    RemoteError,
    Submission,
    TaskResult,
    TaskState,
)

T = TypeVar("T")


class ActionPhase(str, enum.Enum):
    """Where a run or an action is in its life (Flyte's ``ActionPhase``)."""

    QUEUED = "queued"
    WAITING_FOR_RESOURCES = "waiting_for_resources"
    INITIALIZING = "initializing"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"
    TIMED_OUT = "timed_out"

    @property
    def is_terminal(self) -> bool:
        """True once nothing more will happen: succeeded, failed, aborted or timed out."""
        return PHASE_CODES[self] >= FIRST_TERMINAL

    def __str__(self) -> str:
        return self.value


#: A phase as the store keeps it (and the wire sends it). Never renumber: these are in
#: every store file.
PHASE_CODES: dict[ActionPhase, int] = {
    ActionPhase.QUEUED: 1,
    ActionPhase.WAITING_FOR_RESOURCES: 2,
    ActionPhase.INITIALIZING: 3,
    ActionPhase.RUNNING: 4,
    ActionPhase.SUCCEEDED: 5,
    ActionPhase.FAILED: 6,
    ActionPhase.ABORTED: 7,
    ActionPhase.TIMED_OUT: 8,
}
#: Codes from here up are terminal phases.
FIRST_TERMINAL = 5
PHASES_BY_CODE: dict[int, ActionPhase] = {code: phase for phase, code in PHASE_CODES.items()}


def parse_phase(value: ActionPhase | str) -> ActionPhase:
    """``value`` as a phase: a member, or its spelling (``"timed_out"``, any case).

    Raises ``ValueError`` naming the phases there are.
    """
    if isinstance(value, ActionPhase):
        return value
    try:
        return ActionPhase(value.strip().lower())
    except ValueError:
        names = ", ".join(phase.value for phase in ActionPhase)
        raise ValueError(f"{value!r} is not a phase; the phases are {names}") from None


# ---------------------------------------------------------------- parts of a record


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why an action or a run did not succeed.

    ``kind`` is the controller's classification (``"USER"``, ``"TIMED_OUT"``...),
    ``type`` the exception's class name, ``traceback`` the remote traceback as text,
    and ``pickled`` the pickled exception (what durable replay raises again; empty
    when it could not be pickled).
    """

    kind: str
    type: str
    message: str
    traceback: str = ""
    pickled: bytes = b""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of an action: where it ran, when, and how it ended.

    The error of an earlier attempt keeps its kind, type, message and traceback;
    only the last attempt's pickled exception is kept (it is the action's).
    """

    attempt: int
    replica: str
    started: float
    ended: float
    phase: ActionPhase
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class Trace:
    """A ``flyte.trace`` call inside an action: its name, start, duration and error type."""

    name: str
    start: float
    duration: float
    error_type: str = ""


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who submitted a run: the client's id, the user and the host it ran on."""

    client_id: str = ""
    user: str = ""
    host: str = ""


# ---------------------------------------------------------------- views


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; pass ``cursor`` back for the next one (None: no more)."""

    items: tuple[T, ...]
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A run as recorded: who submitted what, when, and how it ended.

    ``error.pickled`` is empty here; ``store.run_output(name)`` reads it. ``url``
    is where to see the run, when the controller serves a page for it ("" else).
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
    #: Actions per phase: the finished ones recorded, and (from a controller running
    #: the run) the running ones under ``RUNNING``.
    counts: Mapping[ActionPhase, int] = field(default_factory=dict)
    url: str = ""

    @property
    def done(self) -> bool:
        return self.phase.is_terminal


@dataclass(frozen=True, slots=True)
class ActionInfo:
    """An action, with its attempts and traces.

    ``error.pickled`` is empty here: the pickled exception, like the output, can be
    large and is read on its own.
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
    action's log keeps its first and last lines past its bound). ``task`` is the
    task's name, when the source knows it ("" from the store).
    """

    seq: int
    action_id: str
    line: int
    at: float
    stream: str
    text: str
    dropped_before: int = 0
    task: str = ""


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


# ---------------------------------------------------------------- what travels


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run a client asks a controller to start and own (``CreateRun``)."""

    name: str
    environment: EnvironmentSpec
    #: The root task; its ``env_key`` is the controller's to set.
    root: Submission
    inputs_preview: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    client: ClientInfo = ClientInfo()
    #: The root's inputs by name (a pickled dict), for ``Run.inputs()``; "": its arguments.
    inputs: bytes = b""


@dataclass(frozen=True, slots=True)
class RunEvent:
    """What a watch of a run receives: the run when its phase changes, its tasks' output
    lines, and once, last, the root's result. ``cursor`` resumes the watch after it."""

    run: RunInfo | None = None
    lines: tuple[LogLine, ...] = ()
    cursor: str = ""
    result: TaskResult | None = None


@dataclass(frozen=True, slots=True)
class RunIO:
    """A run's (or an action's) inputs and outcome, pickled as they travelled.

    ``inputs`` is ``cloudpickle.dumps((args, kwargs))`` and ``output`` the pickled
    value; either is None when it was not kept. ``error`` (with the pickled
    exception) is set when it did not succeed.
    """

    phase: ActionPhase
    inputs_preview: str = ""
    inputs: bytes | None = None
    output: bytes | None = None
    error: ErrorInfo | None = None


# ---------------------------------------------------------------- between the two

#: The phase a task's terminal state gives its action (and a root's, its run).
PHASE_OF_STATE: dict[TaskState, ActionPhase] = {
    TaskState.SUCCEEDED: ActionPhase.SUCCEEDED,
    TaskState.FAILED: ActionPhase.FAILED,
    TaskState.CANCELLED: ActionPhase.ABORTED,
    TaskState.TIMED_OUT: ActionPhase.TIMED_OUT,
}
_STATE_OF_PHASE = {phase: state for state, phase in PHASE_OF_STATE.items()}


def state_of_phase(phase: ActionPhase) -> TaskState:
    """The terminal state a recorded action's ``phase`` gives its result (the inverse of
    :data:`PHASE_OF_STATE`; a phase no task state gives counts as FAILED)."""
    return _STATE_OF_PHASE.get(phase, TaskState.FAILED)


def error_info_of(error: RemoteError) -> ErrorInfo:
    """A task's error as a run's record keeps it."""
    return ErrorInfo(error.kind.name, error.type, error.message, error.traceback, error.pickled)


def remote_error_of(error: ErrorInfo) -> RemoteError:
    """A recorded error as the error it raises again (:meth:`RemoteError.to_exception`)."""
    kind = ErrorKind.__members__.get(error.kind, ErrorKind.USER)
    return RemoteError(kind, error.type, error.message, error.traceback, error.pickled)


def recorded_result(info: RunInfo, output: bytes | None) -> TaskResult:
    """A recorded run's outcome as its root's result (``output``: what the store kept of
    its value, or of its pickled exception)."""
    if info.phase is ActionPhase.SUCCEEDED:
        if output is None:
            return TaskResult.failure(
                info.root_action_id,
                ErrorKind.INTERNAL,
                "ValueMissingError",
                f"run {info.name} succeeded, but its output ({info.output_size or 0} bytes) "
                f"was too large to keep",
            )
        return TaskResult(info.root_action_id, TaskState.SUCCEEDED, value=output)
    state = state_of_phase(info.phase)
    error = info.error or ErrorInfo("INTERNAL", "", f"run {info.name} ended {info.phase}")
    remote = remote_error_of(replace(error, pickled=output or b""))
    if state is TaskState.CANCELLED and remote.kind is ErrorKind.USER:
        remote = RemoteError(ErrorKind.CANCELLED, remote.type, remote.message, remote.traceback)
    return TaskResult(info.root_action_id, state, error=remote)
