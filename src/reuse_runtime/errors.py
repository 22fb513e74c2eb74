"""One error hierarchy for reuse-runtime, under Flyte's names as well as its own.

Every error raised by this package derives from :class:`ReuseRuntimeError`.
Each docstring says whether the error is *expected* (the task or the caller did
something the runtime reports) or a *bug* in reuse-runtime.

With ``import reuse_runtime as flyte``, ``flyte.errors`` is this module, so
Flyte's exception names are here too, placed in the same hierarchy:
``except flyte.errors.RuntimeUserError`` catches a child task's failure,
``except flyte.errors.OOMError`` a replica that ran out of memory, and
``except flyte.errors.TaskTimeoutError`` a task past its timeout. A task's own
exception (``ValueError``, or a class defined in the script) still arrives as
itself, *and* as a :class:`RuntimeUserError` whose ``code`` is its class name,
as Flyte reports it::

    try:
        await child()
    except flyte.errors.RuntimeUserError as e:   # or: except ValueError
        if e.code == "ValueError":
            ...
"""

from __future__ import annotations

import functools
from typing import Any, Literal, TypeVar

ErrorKind = Literal["system", "unknown", "user"]
#: ``Py_TPFLAGS_HEAPTYPE``: set on a class made by a ``class`` statement, not on a builtin.
HEAP_TYPE = 1 << 9
_Class = TypeVar("_Class", bound=type)


def new_exception(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    """``cls.__new__(cls, *args)``, or, where that refuses, its builtin base's ``__new__``.

    (A class that is a ``RuntimeError`` and a ``TimeoutError`` finds
    ``RuntimeError.__new__`` first, which refuses it: its memory layout is ``OSError``'s.)
    """
    try:
        return cls.__new__(cls, *args)
    except Exception:
        builtin: type = cls
        while builtin.__flags__ & HEAP_TYPE:
            builtin = builtin.__base__  # type: ignore[assignment]
        return builtin.__new__(cls, *args)


def _restore(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """Unpickle one of our errors without calling its ``__init__`` (signatures differ)."""
    error = new_exception(cls, args)
    error.args = args
    error.__dict__.update(state)
    return error


class ReuseRuntimeError(Exception):
    """Base class of every error raised by reuse-runtime."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle by state, not by constructor arguments: the errors below take
        # Flyte's constructor arguments or ours, and must travel between processes.
        return (_restore, (type(self), self.args, dict(self.__dict__)))


# ---------------------------------------------------------------- Flyte's names


class BaseRuntimeError(ReuseRuntimeError, RuntimeError):
    """Expected: a task failed (Flyte's base class of runtime errors).

    ``code`` names the failure (for a task's own exception, its class name),
    ``kind`` is ``"user"``, ``"system"`` or ``"unknown"``, and ``worker`` the
    replica it happened on, when known.
    """

    def __init__(
        self, code: str, kind: ErrorKind, root_cause_message: str, worker: str | None = None
    ) -> None:
        super().__init__(root_cause_message)
        self.code = code
        self.kind = kind
        self.worker = worker

    def _reraise(self, *_args: object) -> Any:
        # With ``flyte.map(..., return_exceptions=True)`` a failed child comes back as
        # a value; ``sum(results)`` then raises the child's error, not a TypeError.
        raise self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _reraise
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _reraise


class InitializationError(BaseRuntimeError):
    """Expected: the runtime was used before it could be initialized (a bad config, say)."""


class RuntimeSystemError(BaseRuntimeError):
    """Expected: a task failed for a reason of the runtime's, not of its code."""

    def __init__(self, code: str, message: str, worker: str | None = None) -> None:
        super().__init__(code, "system", message, worker)


class UnionRpcError(RuntimeSystemError):
    """Expected: talking to the controller failed."""


class RuntimeUserError(BaseRuntimeError):
    """Expected: a task failed because of its code (it raised, ran out of memory, ...)."""

    def __init__(self, code: str, message: str, worker: str | None = None) -> None:
        super().__init__(code, "user", message, worker)


class RuntimeUnknownError(BaseRuntimeError):
    """Expected: a task failed for a reason nobody could tell."""

    def __init__(self, code: str, message: str, worker: str | None = None) -> None:
        super().__init__(code, "unknown", message, worker)


class TaskInterruptedError(RuntimeUserError):
    """Expected: the task was interrupted (its machine went away)."""


class PrimaryContainerNotFoundError(RuntimeUserError):
    """Expected: the task's container was not found (Kubernetes only)."""


class RetriesExhaustedError(RuntimeUserError):
    """Expected: the task failed on every attempt its retry budget allowed."""


class InvalidImageNameError(RuntimeUserError):
    """Expected: the image name is not valid."""


class ImagePullBackOffError(RuntimeUserError):
    """Expected: the image could not be pulled."""


class CustomError(RuntimeUserError):
    """Expected: a user's error, reported under its own code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, "user")

    @classmethod
    def from_exception(cls, e: Exception) -> CustomError:
        error = cls(type(e).__name__, str(e))
        error.__cause__ = e
        return error


class NotInTaskContextError(RuntimeUserError):
    """Expected: something that needs a running task was used outside one."""


class ActionNotFoundError(ReuseRuntimeError, RuntimeError):
    """Expected: no such action (task) is known."""


class RemoteTaskNotFoundError(RuntimeUserError):
    """Expected: a remote task was asked for that does not exist."""

    CODE = "RemoteTaskNotFoundError"

    def __init__(self, message: str) -> None:
        super().__init__(self.CODE, message, "user")


class RemoteTaskUsageError(RuntimeUserError):
    """Expected: a remote task was used in a way it cannot be."""

    CODE = "RemoteTaskUsageError"

    def __init__(self, message: str) -> None:
        super().__init__(self.CODE, message, "user")


class LogsNotYetAvailableError(BaseRuntimeError):
    """Expected: a task's logs are not available yet."""

    def __init__(self, message: str) -> None:
        super().__init__("LogsNotYetAvailable", "system", message, None)


class RuntimeDataValidationError(RuntimeUserError):
    """Expected: a task's input or output could not be converted."""

    def __init__(self, var: str, e: Exception | str, task_name: str = "") -> None:
        super().__init__(
            "DataValidationError",
            f"In task {task_name} variable {var}, failed to serialize/deserialize because of {e}",
        )


class _MessageOnly(RuntimeUserError):
    """A Flyte error constructed from a message alone; ``CODE`` is its code."""

    CODE = ""

    def __init__(self, message: str) -> None:
        super().__init__(self.CODE or type(self).__name__, message, "user")


class TaskTimeoutError(_MessageOnly, TimeoutError):
    """Expected: the task ran longer than its timeout.

    It is Python's own :class:`TimeoutError` too, so ``except TimeoutError`` catches it.
    """

    CODE = "TaskTimeoutError"


class ConditionTimedoutError(_MessageOnly):
    """Expected: a condition was not signalled within its timeout."""

    CODE = "ConditionTimedoutError"


class DeploymentError(_MessageOnly):
    """Expected: deploying failed (not applicable to a local pool)."""

    CODE = "DeploymentError"


class ImageBuildError(_MessageOnly):
    """Expected: building an image failed."""

    CODE = "ImageBuildError"


class ModuleLoadError(_MessageOnly):
    """Expected: a module could not be loaded (it does not exist, or does not compile)."""

    CODE = "ModuleLoadError"


class InlineIOMaxBytesBreached(_MessageOnly):
    """Expected: a task's inputs or outputs are larger than its ``max_inline_io_bytes``."""

    CODE = "InlineIOMaxBytesBreached"


class ActionAbortedError(_MessageOnly):
    """Expected: the task was cancelled (aborted) from outside."""

    CODE = "ActionAbortedError"


class SlowDownError(_MessageOnly):
    """Expected: the runtime is saturated; try again later."""

    CODE = "SlowDownError"


class OnlyAsyncIOSupportedError(_MessageOnly):
    """Expected: sync I/O was used where only async I/O works."""

    CODE = "OnlyAsyncIOSupportedError"


class ParameterMaterializationError(_MessageOnly):
    """Expected: an app parameter could not be materialized."""

    CODE = "ParameterMaterializationError"


class RestrictedTypeError(_MessageOnly):
    """Expected: a type was used that is not supported there."""

    CODE = "RestrictedTypeUsage"


class CodeBundleError(_MessageOnly):
    """Expected: the code bundle could not be made."""

    CODE = "CodeBundleError"


class CheckpointUnavailableError(_MessageOnly):
    """Expected: ``flyte.ctx().checkpoint`` on a replica whose file store no retry can read
    (Kubernetes, a remote container engine)."""

    CODE = "CheckpointUnavailableError"


class TraceDoesNotAllowNestedTasksError(_MessageOnly):
    """Expected: a task was called inside a ``flyte.trace`` function; call it from the task."""

    CODE = "TraceDoesNotAllowNestedTasksError"


class ConditionAlreadyExistsError(_MessageOnly):
    """Expected: the condition already exists."""

    CODE = "ConditionAlreadyExistsError"


class ConditionFailedError(_MessageOnly):
    """Expected: a condition failed."""

    CODE = "ConditionFailedError"


class ConditionNotFoundError(_MessageOnly):
    """Expected: no such condition."""

    CODE = "ConditionNotFoundError"


class InvalidPackageError(RuntimeUserError):
    """Expected: an image names a system package that does not exist."""

    def __init__(self, package_name: str, original_error: str) -> None:
        self.package_name = package_name
        self.original_error = original_error
        super().__init__(
            "InvalidPackageError",
            f"Invalid system package detected: '{package_name}'. This package does not exist "
            f"in apt repositories. Error: {original_error}",
        )


class NonRecoverableError(RuntimeUserError):
    """Expected: raised by a task to fail at once: its remaining retries are not used."""

    def __init__(self, message: str, code: str = "NonRecoverableError") -> None:
        super().__init__(code, message)


# ---------------------------------------------------------------- reuse-runtime's own


class TaskFailedError(BaseRuntimeError):
    """Expected: a task did not succeed.

    Carries the remote exception's qualified type name, its message and the
    remote traceback text. When the remote exception could be unpickled, the
    caller receives that exception instead, with this error's traceback text
    attached as its ``__cause__`` (see :class:`RemoteTraceback`).

    Takes reuse-runtime's arguments (``TaskFailedError(message, type_name=...)``)
    or, for the Flyte names below it, Flyte's (``OOMError(code, message)``).
    """

    _kind: ErrorKind = "user"
    _code = ""

    def __init__(
        self,
        *args: str | None,
        type_name: str = "",
        remote_traceback: str = "",
        task: str = "",
        worker: str | None = None,
    ) -> None:
        if len(args) >= 2:  # Flyte's (code, message[, worker])
            code, message = str(args[0]), str(args[1])
            worker = args[2] if len(args) > 2 else worker
        else:
            message = str(args[0]) if args else ""
            code = type_name.rsplit(".", 1)[-1] if type_name else ""
        BaseRuntimeError.__init__(
            self, code or self._code or type(self).__name__, self._kind, message, worker
        )
        self.type_name = type_name
        self.remote_traceback = remote_traceback
        self.task = task

    def __str__(self) -> str:
        text = super().__str__()
        if self.type_name:
            text = f"{self.type_name}: {text}"
        if self.task:
            text = f"task {self.task} failed: {text}"
        return text


class RemoteTraceback(ReuseRuntimeError):
    """Expected: holds the formatted traceback of an exception raised in a replica.

    It is attached as ``__cause__`` of the re-raised remote exception, so the
    caller's traceback shows where the error happened remotely.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        # Printed as the cause of the re-raised error: the replica's traceback itself
        # (reuse_runtime.tracebacks leaves out this class's name).
        return self.text.rstrip("\n")


class TaskRaisedError(TaskFailedError, RuntimeUserError):
    """Expected: the task raised an exception whose class cannot be re-created here.

    (Its module does not import in the caller, say.) Its type name, message and
    remote traceback are kept; ``code`` is its class name.
    """


class BadInputError(TaskFailedError, RuntimeUserError):
    """Expected: the task could not be started as sent.

    Garbage pickle bytes, an unknown module or function, an oversized payload.
    """


class BadOutputError(TaskFailedError, RuntimeUserError):
    """Expected: the task ran, but its result or exception could not be sent back."""


class ReplicaLostError(TaskFailedError, RetriesExhaustedError):
    """Expected: the replica running the task died, and the retry budget is spent.

    The message names the cause: a signal, an exit code, or OOM.
    """


class OOMError(ReplicaLostError):
    """Expected: the replica ran out of memory.

    The kernel's OOM killer ended it at its memory limit, which the message
    names. Give the environment more memory (``Resources(memory=...)``) or make
    the task use less.
    """

    _code = "OOMError"


class TaskCancelledError(TaskFailedError, ActionAbortedError):
    """Expected: the task was cancelled by its caller."""


class TaskTimedOutError(TaskFailedError, TaskTimeoutError):
    """Expected: the task ran past its ``timeout`` and was cancelled."""


class BacklogFullError(TaskFailedError, SlowDownError):
    """Expected: the environment's backlog is full, so the task was not accepted.

    Nothing already accepted is affected. Retry later, raise the backlog limit,
    or give the environment more replicas.
    """


class EnvironmentUnavailableError(TaskFailedError, RuntimeSystemError):
    """Expected: the environment could not start a replica (see the message for its stderr)."""

    _kind = "system"


class InternalError(TaskFailedError, RuntimeSystemError):
    """A bug in reuse-runtime: please report it with the message."""

    _kind = "system"


class PolicyError(ReuseRuntimeError, ValueError):
    """Expected: a configuration value is invalid. The message names the field."""


class ConfigError(PolicyError):
    """Expected: a config file cannot be read, or names a setting that does not exist.

    The message names the file and the line.
    """


class ProcessResourceError(ReuseRuntimeError, TypeError):
    """Expected: a value that only means something in its own process was to be pickled.

    An open file, a socket, a lock, a coroutine: it cannot travel to a replica, nor
    back from one. ``what`` names it, ``advice`` says what to send instead (with
    ``{send}`` standing for "pass" or "return"), and ``resource`` is the value.
    """

    def __init__(self, resource: object, what: str, advice: str) -> None:
        super().__init__(f"{what} cannot be pickled: {advice.format(send='send')}")
        self.resource = resource
        self.what = what
        self.advice = advice

    def describe(self, label: str, value: object, where: str, send: str) -> str:
        """One line: ``label`` (the argument or result ``value``) is or holds the resource."""
        verb = "is" if value is self.resource else "holds"
        advice = self.advice.format(send=send)
        return f"{label} {verb} {self.what}, which cannot travel {where}; {advice}"


def raised_at_callers_line(cls: _Class) -> _Class:
    """Make the ``ValueError`` and ``TypeError`` of ``cls(...)`` start at the caller's line.

    For a configuration class whose ``__init__`` (a dataclass's, running its
    ``__post_init__``) checks its arguments: the traceback of a bad value ends at
    the line that passed it, not in generated code (``<string>, line 11``) or in
    the checks, and the one-line report of :mod:`reuse_runtime.sdk.excepthook`
    names that line. Other errors keep their whole traceback.
    """
    init = cls.__init__  # type: ignore[misc]

    @functools.wraps(init)
    def __init__(self: object, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except (ValueError, TypeError) as error:
            # Re-raised from here with its traceback cleared: this frame is the
            # runtime's (hidden from the user), the next one out is the caller's.
            raise error.with_traceback(None) from error.__cause__

    setattr(cls, "__init__", __init__)  # noqa: B010 (mypy refuses to assign a method)
    return cls


class ClosedError(ReuseRuntimeError):
    """Expected: the resource (worker, controller, client) is closed or draining."""


class CodeNotFoundError(ReuseRuntimeError):
    """Expected: a replica cannot find the function a task names."""


class AddressUnavailableError(ReuseRuntimeError, OSError):
    """Expected: a server cannot listen where it was asked to (the message says why)."""


class ControllerUnavailableError(ReuseRuntimeError):
    """Expected: the controller cannot be reached."""


class AuthError(ReuseRuntimeError):
    """Expected: a controller or worker refused this client's token.

    The message says which server, and how to give the client the right token.
    """


class AuthConfigError(ReuseRuntimeError):
    """Expected: the network or auth settings are unsafe or incomplete."""


class EngineUnavailableError(ReuseRuntimeError):
    """Expected: no container engine answers; the message says how to start one."""


class InputError(ReuseRuntimeError, ValueError):
    """Expected: a task's input on the command line is unknown, missing, or does not fit."""


class ScriptFailedError(ReuseRuntimeError):
    """Expected: the user's script raised while it was imported; the message says where."""


class SecretNotFoundError(ReuseRuntimeError, ValueError):
    """Expected: a secret a task needs is set nowhere on this machine (the message says where
    it was looked for)."""


class ScriptImportError(ReuseRuntimeError, RuntimeError):
    """Expected: a script started a run while a replica imported it (no ``__main__`` guard)."""


class RunNotFoundError(ReuseRuntimeError, LookupError):
    """Expected: no run (or action) has that name; the message lists recent runs."""


class RunAlreadyExistsError(ReuseRuntimeError):
    """Expected: a run of that name exists already; pick another name (``with_runcontext(
    name=...)``), or leave naming to the runtime."""


class RunsStoreError(ReuseRuntimeError):
    """Expected: a runs store cannot do what was asked (unreadable, locked, closed); the
    message says why and where."""


class RunsStoreFullError(RunsStoreError):
    """Expected: the controller's runs store cannot record a new run now (its disk is full,
    or it cannot be written); the message names the path. Running tasks go on."""
