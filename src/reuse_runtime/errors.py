"""One error hierarchy for reuse-runtime.

Every error raised by this package derives from :class:`ReuseRuntimeError`.
Each docstring says whether the error is *expected* (the task or the caller did
something the runtime reports) or a *bug* in reuse-runtime.
"""

from __future__ import annotations


class ReuseRuntimeError(Exception):
    """Base class of every error raised by reuse-runtime."""


class TaskFailedError(ReuseRuntimeError):
    """Expected: a task did not succeed.

    Carries the remote exception's qualified type name, its message and the
    remote traceback text. When the remote exception could be unpickled, the
    caller receives that exception instead, with this error's traceback text
    attached as its ``__cause__`` (see :class:`RemoteTraceback`).
    """

    def __init__(
        self, message: str, *, type_name: str = "", remote_traceback: str = "", task: str = ""
    ) -> None:
        super().__init__(message)
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
        return "the task failed in a replica; its traceback there:\n\n" + self.text


class BadInputError(TaskFailedError):
    """Expected: the task could not be started as sent.

    Garbage pickle bytes, an unknown module or function, an oversized payload.
    """


class BadOutputError(TaskFailedError):
    """Expected: the task ran, but its result or exception could not be sent back."""


class ReplicaLostError(TaskFailedError):
    """Expected: the replica running the task died, and the retry budget is spent.

    The message names the cause: a signal, an exit code, or OOM.
    """


class OOMError(ReplicaLostError):
    """Expected: the replica ran out of memory.

    The kernel's OOM killer ended it at its memory limit, which the message
    names. Give the environment more memory (``Resources(memory=...)``) or make
    the task use less.
    """


class TaskCancelledError(TaskFailedError):
    """Expected: the task was cancelled by its caller."""


class TaskTimedOutError(TaskFailedError):
    """Expected: the task ran past its ``timeout`` and was cancelled."""


class BacklogFullError(TaskFailedError):
    """Expected: the environment's backlog is full, so the task was not accepted.

    Nothing already accepted is affected. Retry later, raise the backlog limit,
    or give the environment more replicas.
    """


class EnvironmentUnavailableError(TaskFailedError):
    """Expected: the environment could not start a replica (see the message for its stderr)."""


class InternalError(TaskFailedError):
    """A bug in reuse-runtime: please report it with the message."""


class PolicyError(ReuseRuntimeError, ValueError):
    """Expected: a configuration value is invalid. The message names the field."""


class ClosedError(ReuseRuntimeError):
    """Expected: the resource (worker, controller, client) is closed or draining."""


class CodeNotFoundError(ReuseRuntimeError):
    """Expected: a replica cannot find the function a task names."""


class ControllerUnavailableError(ReuseRuntimeError):
    """Expected: the controller cannot be reached."""


class AuthConfigError(ReuseRuntimeError):
    """Expected: the network or auth settings are unsafe or incomplete."""


class EngineUnavailableError(ReuseRuntimeError):
    """Expected: no container engine answers; the message says how to start one."""


class ImageBuildError(ReuseRuntimeError):
    """Expected: an environment's image cannot be built; the message says why and what to fix."""
