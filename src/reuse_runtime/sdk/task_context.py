"""What a running task can ask about itself: `ctx()`, `group()`, `custom_context()`.

``flyte.ctx()`` inside a task gives its run name, its action (the task call's id),
its attempt number and its custom context; outside a task it is a falsy context
whose fields are ``None``, so ``if flyte.ctx(): ...`` tells the two apart.

``with flyte.group("fetch"):`` labels the child tasks called inside the block:
their output lines read ``[fetch/task] ...`` and ``reuse-runtime status`` counts
each group's running, succeeded and failed tasks.

``with flyte.custom_context(key="value"):`` passes string metadata to the child
tasks called inside the block (and on to their children); a task reads it with
``flyte.get_custom_context()``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal

from reuse_runtime.context import current_task
from reuse_runtime.paths import store_dir
from reuse_runtime.sdk.checkpoint import Checkpoint, checkpoint_for

#: The group child calls are made in, inside this task ("" for none).
_group: ContextVar[str] = ContextVar("reuse_runtime_group", default="")
#: custom_context() values added inside this task, over those it was called with.
_custom: ContextVar[dict[str, str] | None] = ContextVar("reuse_runtime_custom", default=None)
#: Set while a flyte.trace function runs: it may not call tasks.
in_trace: ContextVar[str] = ContextVar("reuse_runtime_in_trace", default="")


@dataclass(frozen=True)
class ActionID:
    """A task call (Flyte's "action"): its id, and the run it belongs to."""

    name: str
    run_name: str | None = None
    project: str | None = None
    domain: str | None = None
    org: str | None = None

    def __post_init__(self) -> None:
        if self.run_name is None:
            object.__setattr__(self, "run_name", self.name)


@dataclass(frozen=True)
class GroupData:
    name: str


@dataclass(frozen=True)
class RawDataPath:
    """Where a task may write its data: the file store (see ``flyte.io``)."""

    path: str


@dataclass(frozen=True)
class TaskContext:
    """The running task, as ``flyte.ctx()`` shows it."""

    action: ActionID
    version: str = ""
    raw_data_path: RawDataPath | None = None
    output_path: str = ""
    run_base_dir: str = ""
    group_data: GroupData | None = None
    data: dict[str, Any] = field(default_factory=dict)
    mode: Literal["local", "remote", "hybrid"] = "remote"
    interactive_mode: bool = False
    custom_context: dict[str, str] = field(default_factory=dict)
    disable_run_cache: bool = False
    run_start_time: datetime | None = None
    attempt: int = 1
    task_name: str = ""

    def __bool__(self) -> bool:
        return True

    def replace(self, **kwargs: Any) -> TaskContext:
        return replace(self, **kwargs)

    def __getitem__(self, key: str) -> Any:
        return self.data.get(key)

    def is_in_cluster(self) -> bool:
        return self.mode == "remote"

    @property
    def attempt_number(self) -> int:
        """Which attempt of the task this is, from 0 (Flyte counts from 0)."""
        return max(0, self.attempt - 1)

    @property
    def checkpoint(self) -> Checkpoint:
        """What this attempt saves for the next, and loads from the last (see sdk/checkpoint.py)."""
        return checkpoint_for(self.action.run_name or "", self.action.name, self.attempt)


class _NullTaskContext:
    """``flyte.ctx()`` outside a task: falsy, and every field is ``None``."""

    def __bool__(self) -> bool:
        return False

    def __getattr__(self, name: str) -> None:
        return None

    def __repr__(self) -> str:
        return "NullTaskContext()"


NULL_TASK_CONTEXT: Any = _NullTaskContext()

# Run names -> when they started, and project/domain given to init(); shown by ctx().
_run_start: dict[str, datetime] = {}
_project_domain: tuple[str | None, str | None] = (None, None)


def note_run_started(run_name: str, when: datetime | None = None) -> None:
    _run_start[run_name] = when or datetime.now(timezone.utc)


def set_project_domain(project: str | None, domain: str | None) -> None:
    global _project_domain
    _project_domain = (project, domain)


def ctx() -> Any:
    """The running task's :class:`TaskContext`; outside a task, a falsy null context."""
    task = current_task.get()
    if task is None:
        return NULL_TASK_CONTEXT
    group = task.group
    options = task.run_options
    project, domain = _project_domain
    store = store_dir()
    return TaskContext(
        action=ActionID(task.task_id, task.run_id, project, domain),
        version=os.environ.get("REUSE_RUNTIME_CODE_VERSION", ""),
        raw_data_path=RawDataPath(str(store)),
        output_path=str(store / "runs" / task.run_id / task.task_id),
        run_base_dir=str(store / "runs" / task.run_id),
        group_data=GroupData(group) if group else None,
        custom_context=current_custom_context(),
        disable_run_cache=bool(options and options.disable_cache),
        run_start_time=_run_start.get(task.run_id),
        attempt=task.attempt or 1,
        task_name=task.name,
    )


def current_group() -> str:
    """The group a child task called here belongs to ("" for none)."""
    return _group.get()


def current_custom_context() -> dict[str, str]:
    """The custom context a child task called here receives."""
    return dict(custom_context_pairs())


def custom_context_pairs() -> tuple[tuple[str, str], ...]:
    """The custom context a child task called here receives, as sorted pairs."""
    task = current_task.get()
    base = task.custom_context if task is not None else ()
    extra = _custom.get()
    if not extra:
        return base  # the common case: no copy, no sort
    return tuple(sorted({**dict(base), **extra}.items()))


def get_custom_context() -> dict[str, str]:
    """The custom context of the running task (``{}`` outside a task)."""
    return current_custom_context() if current_task.get() is not None else {}


@contextmanager
def group(name: str) -> Iterator[None]:
    """Label the child tasks called inside the block as the group ``name``.

    Their output lines read ``[name/task] ...``, and ``reuse-runtime status``
    shows the group's running, succeeded and failed counts. Outside a task it
    does nothing.

    Example::

        @env.task
        async def main() -> None:
            with flyte.group("fetch"):
                await asyncio.gather(*(fetch(u) for u in urls))
    """
    if not isinstance(name, str):
        raise TypeError(f"group name must be a string, got {type(name).__name__}")
    token = _group.set(name)
    try:
        yield
    finally:
        _group.reset(token)


@contextmanager
def custom_context(**context: str) -> Iterator[None]:
    """Pass ``context`` (string values) to the child tasks called inside the block.

    They, and their own children, read it with :func:`get_custom_context`.
    """
    for key, value in context.items():
        if not isinstance(value, str):
            raise TypeError(
                f"custom_context values must be strings, got {key}={type(value).__name__}"
            )
    merged = {**(_custom.get() or {}), **context}
    token = _custom.set(merged)
    try:
        yield
    finally:
        _custom.reset(token)
