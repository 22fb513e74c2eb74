"""Domain types shared by the worker, the controller and the SDK.

These are plain frozen dataclasses. Only :mod:`reuse_runtime.wire` converts them
to and from protobuf, so the core never touches generated code.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import pickle
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar, cast

import cloudpickle

from reuse_runtime import errors, pickling, user_exceptions

_Record = TypeVar("_Record")


def _slot_init(cls: type[_Record]) -> type[_Record]:
    """Give a frozen, slotted dataclass an ``__init__`` that fills its slots directly.

    A frozen dataclass's own ``__init__`` sets each field through
    ``object.__setattr__``: 1.0 µs for a :class:`TaskSpec`, 0.65 for a
    :class:`TaskResult`, and a task makes several of each on its way. The slots' own
    descriptors do the same in about half that. Everything else stays as the
    dataclass made it: the instances are still frozen, and ``replace()``, ``==``,
    ``hash`` and ``repr`` are unchanged. Plain fields only (no factories, no
    keyword-only or ``init=False`` fields): anything else raises here, at import.
    """
    params, body = [], []
    namespace: dict[str, object] = {}
    for item in dataclasses.fields(cls):  # type: ignore[arg-type]
        if item.default_factory is not dataclasses.MISSING or not item.init or item.kw_only:
            raise TypeError(f"_slot_init cannot build {cls.__name__}.{item.name}")
        namespace[f"_set_{item.name}"] = getattr(cls, item.name).__set__
        if item.default is dataclasses.MISSING:
            params.append(item.name)
        else:
            namespace[f"_default_{item.name}"] = item.default
            params.append(f"{item.name}=_default_{item.name}")
        body.append(f"    _set_{item.name}(self, {item.name})\n")
    exec(f"def __init__(self, {', '.join(params)}):\n{''.join(body)}", namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
    setattr(cls, "__init__", init)  # noqa: B010 (mypy refuses to assign a method)
    return cls


@_slot_init
@dataclass(frozen=True, slots=True)
class FunctionRef:
    """A function named by reference: importable module, qualified name, code version."""

    module: str
    qualname: str
    code_version: str = ""

    def __str__(self) -> str:
        return f"{self.module}:{self.qualname}"


@dataclass(frozen=True, slots=True)
class CodeBundle:
    """The source of a module a replica cannot import by itself (a ``__main__`` script).

    The replica imports it under the stable name ``module``; ``digest`` is the
    sha256 of ``source`` and is the code version.
    """

    module: str
    digest: str
    filename: str
    source: bytes


#: The longest task timeout accepted, in seconds (about 31 years).
MAX_TIMEOUT = 1e9

#: Pickled arguments or a pickled value: bytes, or, for a large payload as it arrived
#: over gRPC, a view of the message's bytes (see ``wire/splice.py``).
Payload = bytes | memoryview


@dataclass(frozen=True, slots=True)
class RunOptions:
    """``flyte.with_runcontext()`` options that travel with every task of the run."""

    overwrite_cache: bool = False
    disable_cache: bool = False
    env_vars: tuple[tuple[str, str], ...] = ()
    log_level: int = 0


@_slot_init
@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One task invocation, as sent to a replica.

    Exactly one of ``ref`` (by reference) and ``pickled`` (a cloudpickled
    callable, by value) is set. ``args`` is ``cloudpickle.dumps((args, kwargs))``.
    """

    task_id: str
    name: str
    args: Payload
    ref: FunctionRef | None = None
    pickled: bytes | None = None
    bundle: CodeBundle | None = None
    timeout: float | None = None
    run_id: str = ""
    parent_task_id: str = ""
    #: The ``flyte.group()`` the call was made in, or "".
    group: str = ""
    #: ``flyte.custom_context()`` key/value pairs, sorted; inherited by the task's children.
    custom_context: tuple[tuple[str, str], ...] = ()
    #: Which attempt this is, from 1; set by the controller when it dispatches the task.
    attempt: int = 0
    run_options: RunOptions | None = None
    #: A child call's identity in its parent, the same on every attempt (durable replay).
    call_key: str = ""

    def problem(self) -> str | None:
        """Why this spec cannot run, or None. Checked wherever a spec arrives."""
        if not self.task_id:
            return "the task has no task_id; give every task a unique, non-empty id"
        if self.timeout is not None and not (0 < self.timeout < MAX_TIMEOUT):
            return (
                f"task {self.task_id!r} has timeout {self.timeout!r}; a timeout is a "
                f"number of seconds above 0 and below {MAX_TIMEOUT:g}, or unset"
            )
        return None


class TaskState(enum.Enum):
    SUCCEEDED = 1
    FAILED = 2
    CANCELLED = 3
    TIMED_OUT = 4


class ErrorKind(enum.Enum):
    """Why a task did not succeed; each kind maps to one exception class."""

    USER = 1
    BAD_INPUT = 2
    BAD_OUTPUT = 3
    REPLICA_LOST = 4
    CANCELLED = 5
    TIMED_OUT = 6
    REJECTED = 7
    INTERNAL = 8
    UNAVAILABLE = 9
    #: The task raised ``flyte.errors.NonRecoverableError``: not retried.
    USER_NON_RECOVERABLE = 10

    @property
    def raised_by_task(self) -> bool:
        return self is ErrorKind.USER or self is ErrorKind.USER_NON_RECOVERABLE


_ERROR_CLASSES: dict[ErrorKind, type[errors.TaskFailedError]] = {
    ErrorKind.USER: errors.TaskRaisedError,
    ErrorKind.USER_NON_RECOVERABLE: errors.TaskRaisedError,
    ErrorKind.BAD_INPUT: errors.BadInputError,
    ErrorKind.BAD_OUTPUT: errors.BadOutputError,
    ErrorKind.REPLICA_LOST: errors.ReplicaLostError,
    ErrorKind.CANCELLED: errors.TaskCancelledError,
    ErrorKind.TIMED_OUT: errors.TaskTimedOutError,
    ErrorKind.REJECTED: errors.BacklogFullError,
    ErrorKind.INTERNAL: errors.InternalError,
    ErrorKind.UNAVAILABLE: errors.EnvironmentUnavailableError,
}


@_slot_init
@dataclass(frozen=True, slots=True)
class RemoteError:
    """An error that happened away from the caller, with what a person needs to act on it."""

    kind: ErrorKind
    type: str
    message: str
    traceback: str = ""
    pickled: bytes = b""

    def to_exception(self, task: str = "", worker: str = "") -> BaseException:
        """The exception to raise in the caller.

        A user's exception that unpickles is raised as itself (and as Flyte's
        ``RuntimeUserError``, see :func:`~reuse_runtime.user_exceptions.as_user_error`), with
        the remote traceback attached as ``__cause__``; anything else becomes the
        :class:`~reuse_runtime.errors.TaskFailedError` subclass of its kind.
        """
        if self.kind.raised_by_task and self.pickled:
            try:
                exc = pickle.loads(self.pickled)
            except Exception:
                exc = None
            # Only an Exception is raised as itself: a SystemExit or KeyboardInterrupt
            # from a task must never end the caller (an older replica may send one).
            if isinstance(exc, Exception):
                if isinstance(exc, errors.TaskRaisedError) and not exc.task:
                    # A stand-in for a class this process cannot load (pickling.load_exception).
                    exc.task, exc.remote_traceback = task, self.traceback
                    exc.worker = worker or None
                if self.traceback:
                    exc.__cause__ = errors.RemoteTraceback(self.traceback)
                return user_exceptions.as_user_error(exc, worker=worker or None)
        cls = _ERROR_CLASSES.get(self.kind, errors.TaskFailedError)
        if self.kind is ErrorKind.REPLICA_LOST and self.type == "OOMError":
            cls = errors.OOMError
        err = cls(
            self.message,
            type_name=self.type,
            remote_traceback=self.traceback,
            task=task,
            worker=worker or None,
        )
        if self.traceback:
            err.__cause__ = errors.RemoteTraceback(self.traceback)
        return err


@_slot_init
@dataclass(frozen=True, slots=True)
class TaskResult:
    """The terminal outcome of one task: exactly one per accepted task."""

    task_id: str
    state: TaskState
    value: Payload = b""
    error: RemoteError | None = None
    replica_id: str = ""
    duration: float = 0.0
    attempts: int = 0
    #: The value came from the controller's result cache: the task did not run.
    cached: bool = False

    @classmethod
    def failure(
        cls,
        task_id: str,
        kind: ErrorKind,
        type_name: str,
        message: str,
        *,
        state: TaskState = TaskState.FAILED,
        attempts: int = 0,
    ) -> TaskResult:
        """A task that ended without a value, for a reason of ours (not a raise in it)."""
        return cls(task_id, state, error=RemoteError(kind, type_name, message), attempts=attempts)

    @property
    def ok(self) -> bool:
        return self.state is TaskState.SUCCEEDED

    def unwrap(self, task: str = "") -> object:
        """The task's return value, or raise its error."""
        if self.state is TaskState.SUCCEEDED:
            return pickle.loads(self.value)
        error = self.error or RemoteError(ErrorKind.INTERNAL, "", f"task ended {self.state.name}")
        raise error.to_exception(task, self.replica_id)


#: The stream of a :class:`LogLine` that carries a task's ``flyte.report`` (the whole
#: HTML, as flushed) instead of a line it printed: recorded as the action's report,
#: never printed.
REPORT_STREAM = "report"


@_slot_init
@dataclass(frozen=True, slots=True)
class LogLine:
    """A line a task printed, on its way to the caller's terminal."""

    task_id: str
    task_name: str
    run_id: str
    stream: str
    text: str
    # Tracing: the task's parent ("" for a run's root) and the replica it ran on.
    parent_task_id: str = ""
    replica_id: str = ""


@dataclass(frozen=True, slots=True)
class ReplicaReport:
    """A replica's state, as it reports it on every busy/idle transition and heartbeat."""

    replica_id: str
    active: int
    capacity: int
    waiting: int = 0
    idle_since: float | None = None
    idle_seconds: float = 0.0
    completed: int = 0
    failed: int = 0
    rss_bytes: int = 0
    loop_lag: float = 0.0
    draining: bool = False
    uptime: float = 0.0
    loop_blocked_by: str = ""
    sent_at: float = 0.0
    recycle_reason: str = ""


@dataclass(frozen=True, slots=True)
class ReplicaInit:
    """Sent by the controller to a new replica: hooks to run around its life."""

    on_start: FunctionRef | None = None
    on_stop: FunctionRef | None = None
    bundle: CodeBundle | None = None
    stop_grace: float = 10.0
    # The environment's name (the `environment` label of the replica's metrics).
    environment: str = ""
    # Seconds between reports while idle (nothing running or waiting); 0: every heartbeat.
    idle_heartbeat: float = 0.0
    #: The digest of the project's code bundle the replica runs ("" for none).
    code_bundle: str = ""
    #: The replica cannot see the client's files: it fetches the bundle from the
    #: controller and imports from it (else it only records the digest).
    fetch_code: bool = False


@dataclass(frozen=True, slots=True)
class ReplicaHello:
    replica_id: str
    capacity: int
    address: str = ""
    pid: int = 0
    #: A worker started by someone else names the environment it serves.
    environment: str = ""


#: Types whose instances pickle the same with ``pickle`` as with ``cloudpickle``.
_PLAIN_ATOMS = frozenset({type(None), bool, int, float, complex, str, bytes})
_PLAIN_SEQUENCES = frozenset({tuple, list, set, frozenset})
#: Past this many objects, checking costs more than cloudpickle's set-up saves.
_PLAIN_BUDGET = 256


def dumps_plain(value: object) -> bytes | None:
    """``pickle.dumps(value)`` if ``value`` is made of builtins only, else ``None``.

    The same bytes ``cloudpickle.dumps`` would give such a value (replicas and
    callers load both with ``pickle.loads``), at a fraction of the cost: cloudpickle
    builds a new pickler per call. Anything else (a function, a user class, a
    subclass of a builtin) is left to cloudpickle, which can send it by value.
    """
    budget = _PLAIN_BUDGET
    pending = [value]
    while pending:
        budget -= 1
        if budget < 0:
            return None
        item = pending.pop()
        kind = type(item)
        if kind in _PLAIN_ATOMS:
            continue
        if kind in _PLAIN_SEQUENCES:
            pending.extend(cast("Iterable[object]", item))
        elif kind is dict:
            mapping = cast("dict[object, object]", item)
            pending.extend(mapping)
            pending.extend(mapping.values())
        else:
            return None
    return pickle.dumps(value, protocol=cloudpickle.DEFAULT_PROTOCOL)


def dumps_args(args: tuple[object, ...], kwargs: dict[str, object]) -> bytes:
    """Encode a call's arguments the way every replica decodes them.

    Raises :class:`~reuse_runtime.errors.BadInputError` naming the argument that
    cannot be pickled.
    """
    atoms = _PLAIN_ATOMS
    for value in args:
        if type(value) not in atoms:
            break
    else:  # the common call, plain values only: no walk (keyword names are strings)
        for value in kwargs.values():
            if type(value) not in atoms:
                break
        else:
            return pickle.dumps((args, kwargs), protocol=cloudpickle.DEFAULT_PROTOCOL)
    plain = dumps_plain((args, kwargs))
    if plain is not None:
        return plain
    try:
        return pickling.dumps((args, kwargs))
    except Exception as exc:
        named = [(f"argument {i}", a) for i, a in enumerate(args)] + [
            (f"argument {k!r}", v) for k, v in kwargs.items()
        ]
        culprit = "the arguments"
        for label, value in named:
            try:
                pickling.dumps(value)
            except errors.ProcessResourceError as resource:
                raise errors.BadInputError(
                    resource.describe(label, value, "to a replica", "pass")
                ) from None
            except Exception:
                culprit = f"{label} (a {type(value).__module__}.{type(value).__qualname__})"
                break
        raise errors.BadInputError(
            f"{culprit} cannot be pickled, so it cannot travel to a replica: "
            f"{type(exc).__name__}: {exc}",
            type_name=type(exc).__name__,
        ) from exc


@dataclass(frozen=True, slots=True)
class PoolPolicy:
    """The controller's resolved view of a ``ReusePolicy``: plain seconds and bytes."""

    min_replicas: int
    max_replicas: int
    concurrency: int
    scaledown_ttl: float
    idle_ttl: float
    max_tasks: int = 0
    max_rss: int = 0
    max_lifetime: float = 0.0
    reusable: bool = True

    @property
    def capacity(self) -> int:
        return self.max_replicas * self.concurrency


#: What an environment may be called: it names replicas, log files and containers.
ENVIRONMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


@dataclass(frozen=True, slots=True)
class EnvironmentSpec:
    """Everything that makes two pools different; its :meth:`key` names the pool."""

    name: str
    policy: PoolPolicy
    image: str = ""
    resources: str = ""
    code_version: str = ""
    working_dir: str = ""
    python_path: tuple[str, ...] = ()
    # Secrets travel here: never shown in a repr.
    env_vars: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    on_start: FunctionRef | None = None
    on_stop: FunctionRef | None = None
    hooks_bundle: CodeBundle | None = None
    stop_grace: float = 10.0
    #: "" for a pool every run shares; a run's name for ``ReusePolicy(scope="run")``.
    scope: str = ""
    #: The digest of the project's code bundle its replicas run ("" for none): a new
    #: version of the code is a new pool (see reuse_runtime.bundles).
    code_bundle: str = ""

    def key(self) -> str:
        """A stable name for the pool: the environment's name plus a digest of its settings.

        Where the caller runs (``working_dir``, ``python_path``) is left out, so a
        task inside a replica names the same pool as the client that started it.
        """
        fields = repr(
            (
                self.name,
                self.policy,
                self.image,
                self.resources,
                self.code_version,
                self.env_vars,
                self.on_start,
                self.on_stop,
                self.hooks_bundle.digest if self.hooks_bundle else "",
                self.stop_grace,
                self.scope,
            )
        )
        if self.code_bundle:  # appended, so keys without a bundle stay as they were
            fields += self.code_bundle
        return f"{self.name}-{hashlib.sha256(fields.encode()).hexdigest()[:10]}"

    def lineage(self) -> str:
        """What versions of one environment share: everything but the code's versions.

        Two pools of one lineage run two versions of the same environment (same
        name and settings); the one registered last is current, the others are
        superseded (see ``decide_scale``).
        """
        fields = repr(
            (
                self.name,
                self.policy,
                _WITHOUT_BUNDLE_DIGEST.sub("", self.image),
                self.resources,
                self.env_vars,
                (self.on_start.module, self.on_start.qualname) if self.on_start else None,
                (self.on_stop.module, self.on_stop.qualname) if self.on_stop else None,
                self.stop_grace,
                self.scope,
            )
        )
        return f"{self.name}-{hashlib.sha256(fields.encode()).hexdigest()[:10]}"

    def version(self) -> str:
        """The code version this pool runs, short: its bundle's digest, else its module's."""
        return (self.code_bundle or self.code_version)[:12]


# An image recipe with a baked code bundle names the bundle's digest; versions differ by it.
_WITHOUT_BUNDLE_DIGEST = re.compile(r'"bundle_digest":"[0-9a-f]*"')


@dataclass(frozen=True, slots=True)
class RetryBackoff:
    """How long to wait before the n-th retry (from 0): ``min(base * factor**n, cap)``."""

    base: float
    factor: float = 1.0
    cap: float = 0.0  # 0: no cap

    def delay(self, n: int) -> float:
        delay = self.base * (self.factor**n)
        return min(delay, self.cap) if self.cap > 0 else delay


@_slot_init
@dataclass(frozen=True, slots=True)
class Submission:
    """A task submitted to the controller for an environment it knows by key."""

    env_key: str
    task: TaskSpec
    retries: int = 0
    stream_logs: bool = False
    #: Set when the result may be cached: the task, its code version and its inputs.
    cache_key: str = ""
    #: Run it even on a cache hit, and store the new result.
    cache_overwrite: bool = False
    retry_backoff: RetryBackoff | None = None
    #: The oldest stored result to reuse, in seconds; 0: any age.
    cache_max_age: float = 0.0


@dataclass(frozen=True, slots=True)
class DispatchCommand:
    """Controller -> replica: tasks to start and task ids to cancel."""

    tasks: list[TaskSpec]
    cancel: list[str]


@dataclass(frozen=True, slots=True)
class DrainCommand:
    """Controller -> replica: stop taking tasks, finish the running ones, and exit."""

    reason: str


@dataclass(frozen=True, slots=True)
class ResultsBatch:
    """Replica -> controller: finished tasks and the output lines that preceded them."""

    results: list[TaskResult]
    logs: list[LogLine]


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    replica_id: str
    state: str
    assigned: int
    report: ReplicaReport | None = None
    where: str = ""
    retire_reason: str = ""
    #: Attached by someone else: the controller routes to it but never stops it.
    external: bool = False


@dataclass(frozen=True, slots=True)
class GroupStatus:
    """The tasks of one ``flyte.group()`` in an environment."""

    name: str
    running: int = 0
    succeeded: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class EnvironmentStatus:
    key: str
    name: str
    min_replicas: int
    max_replicas: int
    concurrency: int
    backlog: int
    replicas: tuple[ReplicaStatus, ...]
    completed: int
    failed: int
    dormant: bool
    last_error: str = ""
    cache_hits: int = 0
    groups: tuple[GroupStatus, ...] = ()
    # Recent replica events, oldest first (see PoolEvent).
    events: tuple[PoolEvent, ...] = ()
    #: Tasks cancelled; ``failed`` counts the others that did not succeed.
    cancelled: int = 0
    # Results that came after their task had ended or been retried elsewhere: discarded.
    late_results: int = 0
    #: The code version the pool runs (EnvironmentSpec.version), and whether a newer
    #: version of the same environment has replaced it.
    version: str = ""
    superseded: bool = False
    #: The runs with tasks in the pool now (waiting or running).
    runs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PoolEvent:
    """Something that happened to a replica: what ``status`` shows as its recent history.

    ``kind`` is one of ``started``, ``ready``, ``attached`` (a worker someone else
    started), ``start_failed``, ``lost``, ``recycled`` and ``stopped``; ``reason``
    is the short cause of a loss (``oom``, ``signal``, ``exit``, ...) or the
    reason for a recycle or stop (``max_tasks``, ``scaled_down``, ...), and
    ``detail`` says it in words. ``at`` is Unix time.
    """

    at: float
    kind: str
    replica_id: str
    reason: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RunProgress:
    """How far a run has got, counted over its child tasks (the root task excluded).

    ``children`` counts every child the controller has accepted; ``held`` those its
    clients still hold back (flow control), so ``children + held`` is the total
    known so far. ``ended``: no task of the run is left, and these are its final
    counts (kept a while after the run). ``found`` is False for a run the
    controller does not know.
    """

    found: bool = False
    children: int = 0
    held: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    ended: bool = False

    @property
    def total(self) -> int:
        return self.children + self.held

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed


@dataclass(frozen=True, slots=True)
class ControllerStatus:
    environments: tuple[EnvironmentStatus, ...]
    rss_bytes: int = 0
    address: str = ""
