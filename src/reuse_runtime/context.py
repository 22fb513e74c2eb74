"""The running task, as seen from inside a replica.

The executor sets :data:`current_task` around every task it runs. The SDK reads
it to dispatch child tasks through the controller, and the output capture reads
it to route ``print()`` to the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from reuse_runtime.model import EnvironmentSpec, LogLine, RunOptions, Submission, TaskResult
from reuse_runtime.security import Security

if TYPE_CHECKING:
    import hashlib


@dataclass(eq=False)
class TaskContext:
    """What a running task knows about itself. Mutable; owned by the executor."""

    task_id: str
    run_id: str
    name: str
    # Thread-safe: sync tasks print from their thread.
    emit: Callable[[LogLine], None]
    # Lend the task's slot while it awaits child tasks; take it back after.
    lend_slot: Callable[[], None]
    reclaim_slot: Callable[[], Awaitable[None]]
    loop: asyncio.AbstractEventLoop
    # Tracing: the task's parent ("" for a run's root) and the replica it runs on.
    parent_task_id: str = ""
    replica_id: str = ""
    children: int = 0
    holds_slot: bool = True
    partial: dict[str, str] = field(default_factory=dict)
    # Its identity as a child call (empty for a top-level task); see sdk/replay.py.
    call_key: str = ""
    # Calls made so far in this run of it, by (task, arguments' hash or digest): their order.
    calls: dict[tuple[str, int | bytes], int] | None = None
    # BLAKE2b over its identity, copied to key each of its calls (see sdk/replay.py).
    key_prefix: hashlib.blake2b | None = None
    #: The ``flyte.group()`` the task was called in ("" for none).
    group: str = ""
    #: ``flyte.custom_context()`` values the task was called with, as sorted pairs.
    custom_context: tuple[tuple[str, str], ...] = ()
    #: Which attempt this is, from 1 (0 when the controller did not say).
    attempt: int = 0
    #: ``flyte.with_runcontext()`` options of the run; its children inherit them.
    run_options: RunOptions | None = None

    @property
    def label(self) -> str:
        """How the task's output lines are prefixed: its name, within its group."""
        return f"{self.group}/{self.name}" if self.group else self.name


current_task: ContextVar[TaskContext | None] = ContextVar("reuse_runtime_task", default=None)


@dataclass(frozen=True)
class ControllerEndpoint:
    """Where tasks running in this replica send their child tasks, and how."""

    address: str
    security: Security = field(default_factory=Security)


_endpoint: ControllerEndpoint | None = None


def set_controller_endpoint(endpoint: ControllerEndpoint | None) -> None:
    global _endpoint
    _endpoint = endpoint


def controller_endpoint() -> ControllerEndpoint | None:
    return _endpoint


class ChildTaskClient(Protocol):
    """Where a task's child calls go: the controller's client, or a test harness."""

    async def register(self, env: EnvironmentSpec) -> str: ...

    async def room(self, parent_task_id: str = "") -> None:
        """Wait until a child's arguments may be serialized (bytes flow control)."""
        ...

    def submit(self, submission: Submission) -> asyncio.Future[TaskResult]: ...

    async def cancel(self, *, task_id: str = "", run_id: str = "") -> int: ...

    def cancel_soon(self, task_id: str) -> None:
        """Cancel one child without waiting (its parent stopped waiting for it)."""
        ...


_in_process_client: ChildTaskClient | None = None


def set_in_process_client(client: ChildTaskClient | None) -> None:
    """Send child calls of tasks in this process to ``client`` (``reuse_runtime.testing``)."""
    global _in_process_client
    _in_process_client = client


def in_process_client() -> ChildTaskClient | None:
    return _in_process_client
