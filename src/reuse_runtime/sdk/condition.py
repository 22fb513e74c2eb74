"""``flyte.new_condition``: pause a task until someone signals a value.

Flyte's names and signatures. Inside a task, ``new_condition`` registers the
condition with the run's controller, and ``wait()`` blocks until it is signaled
(``flyte.remote.Condition.signal``, ``reuse-runtime signal condition``), then
returns the value as the condition's ``data_type``::

    import reuse_runtime as flyte

    env = flyte.TaskEnvironment(name="approvals")

    @env.task
    async def deploy() -> str:
        approval = await flyte.new_condition.aio("approve", prompt="Deploy?", data_type=bool)
        return "deployed" if await approval.wait.aio() else "rejected"

While it waits the task lends its slot, as it does while it awaits its children.
Past its ``timeout`` ``wait()`` raises ``flyte.errors.ConditionTimedoutError``; a
run aborted while it waits ends the wait (``asyncio.CancelledError``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, Literal, TypeVar

from reuse_runtime.conditions import ConditionInfo, coerce_condition_payload, type_name
from reuse_runtime.context import TaskContext, current_task
from reuse_runtime.errors import ConditionFailedError, ConditionTimedoutError, RunNotFoundError
from reuse_runtime.runinfo import ActionPhase
from reuse_runtime.sdk.ignored import note_ignored

PromptType = Literal["text", "markdown"]
ConditionType = TypeVar("ConditionType", bool, int, float, str)
R = TypeVar("R")


class _Dual(Generic[R]):
    """A coroutine function called blocking (``f(...)``) or awaited (``await f.aio(...)``).

    ``fn`` takes the running task (or ``None``) first: it is read where the call is
    made, since a sync task's call runs on the task's loop, outside its context."""

    def __init__(
        self, fn: Callable[..., Coroutine[Any, Any, R]], name: str, doc: str | None
    ) -> None:
        self._fn = fn
        self.__name__ = name
        self.__doc__ = doc
        # The signature a caller sees: the function's, without the task it is given.
        signature = inspect.signature(fn)
        self.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        ctx = current_task.get()
        return _blocking(ctx, self._fn(ctx, *args, **kwargs), self.__name__)

    def aio(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, R]:
        """The same call, as an awaitable."""
        return self._fn(current_task.get(), *args, **kwargs)


class _DualMethod(Generic[R]):
    def __init__(self, fn: Callable[..., Coroutine[Any, Any, R]]) -> None:
        self._fn = fn
        self.__doc__ = fn.__doc__

    def __get__(self, obj: object | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        fn = self._fn
        return _Dual(lambda ctx, *a, **k: fn(obj, ctx, *a, **k), "wait", fn.__doc__)


def _blocking(ctx: TaskContext | None, coro: Coroutine[Any, Any, R], name: str) -> R:
    """Run ``coro`` to its end from blocking code: on the task's loop from a sync task's
    thread, else on a loop of its own."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if ctx is not None:
        if running is ctx.loop:
            coro.close()
            raise TypeError(
                f"{name}() blocks; in an async task use `await ....{name}.aio(...)` so the "
                f"event loop keeps running"
            )
        return asyncio.run_coroutine_threadsafe(coro, ctx.loop).result()
    if running is None:
        return asyncio.run(coro)
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, asyncio.run(coro)))
        except BaseException as exc:
            box.append((False, exc))

    thread = threading.Thread(target=run, name=f"condition-{name}", daemon=True)
    thread.start()
    thread.join()
    ok, value = box[0]
    if not ok:
        raise value
    result: R = value
    return result


@dataclass
class ConditionWebhook:
    """Where the backend POSTs when a condition is created (Flyte's ``ConditionWebhook``).

    ``{callback_uri}`` in a string value of ``payload`` stands for a URI that signals it.
    reuse-runtime does not send webhooks yet: a condition with one warns so, once.
    """

    url: str
    payload: dict[str, Any] | None = None


@dataclass
class _Condition(Generic[ConditionType]):
    """A condition a task waits on (Flyte's ``_Condition``); made by :func:`new_condition`."""

    name: str
    prompt: str = "Approve?"
    prompt_type: PromptType = "text"
    data_type: type[ConditionType] = bool  # type: ignore[assignment]
    description: str = ""
    timeout: timedelta | int | float | None = None
    webhook: ConditionWebhook | None = None
    _timeout_seconds: float | None = field(default=None, init=False, repr=False)
    _info: ConditionInfo | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        valid_types = (bool, int, float, str)
        if self.data_type not in valid_types:
            raise TypeError(f"Invalid data_type {self.data_type}. Must be one of {valid_types}.")
        if self.timeout is not None:
            if isinstance(self.timeout, timedelta):
                self._timeout_seconds = self.timeout.total_seconds()
            else:
                self._timeout_seconds = float(self.timeout)
            if self._timeout_seconds <= 0:
                raise ValueError("timeout must be positive")

    def _spec(self, ctx: TaskContext) -> ConditionInfo:
        webhook = self.webhook
        return ConditionInfo(
            run=ctx.run_id,
            parent_action_id=ctx.task_id,
            name=self.name,
            prompt=self.prompt,
            prompt_type=self.prompt_type,
            data_type=type_name(self.data_type),
            description=self.description,
            timeout=self._timeout_seconds,
            webhook_url=webhook.url if webhook is not None else "",
            webhook_payload=json.dumps(webhook.payload, default=str)
            if webhook is not None and webhook.payload is not None
            else "",
        )

    async def _register(self, ctx: TaskContext) -> ConditionInfo:
        if self.webhook is not None:
            note_ignored(
                "new_condition(webhook=...)",
                "webhooks are not sent; signal the condition with "
                "flyte.remote.Condition.signal or `reuse-runtime signal condition`",
            )
        self._info = await _runs_client().create_condition(self._spec(ctx))
        return self._info

    async def _wait(self, ctx: TaskContext | None) -> ConditionType:
        """Wait until the condition is signaled; its value, as its ``data_type``.

        Raises ``flyte.errors.ConditionTimedoutError`` past its timeout, and
        ``asyncio.CancelledError`` when its run ends (is aborted) first.
        """
        if ctx is None:
            raise RuntimeError("Conditions can only be awaited within a task context.")
        info = self._info
        if info is None or info.run != ctx.run_id:
            info = await self._register(ctx)
        client = _runs_client()
        ctx.children += 1
        if ctx.children == 1 and ctx.holds_slot:
            ctx.lend_slot()
            ctx.holds_slot = False
        try:
            try:
                info = await client.wait_condition(info.run, info.action_id)
            except RunNotFoundError:
                # A controller that restarted without it: create it again, and wait.
                info = await client.create_condition(self._spec(ctx))
                info = await client.wait_condition(info.run, info.action_id)
        finally:
            ctx.children -= 1
            if ctx.children == 0 and not ctx.holds_slot:
                await ctx.reclaim_slot()
                ctx.holds_slot = True
        self._info = info
        return _outcome(info, self.data_type)

    wait = _DualMethod(_wait)


def _outcome(info: ConditionInfo, data_type: type[ConditionType]) -> ConditionType:
    if info.phase is ActionPhase.SUCCEEDED and info.value is not None:
        value: ConditionType = coerce_condition_payload(info.value, data_type)  # type: ignore[assignment]
        return value
    if info.phase is ActionPhase.TIMED_OUT:
        raise ConditionTimedoutError(f"condition {info.name!r} timed out: {info.reason}")
    if info.phase is ActionPhase.ABORTED:
        raise asyncio.CancelledError(f"condition {info.name!r} ended: {info.reason}")
    raise ConditionFailedError(
        f"condition {info.name!r} ended {info.phase}{': ' + info.reason if info.reason else ''}"
    )


def _runs_client() -> Any:
    """The Runs client of this replica's controller (the one its tasks call children on)."""
    from reuse_runtime.client import ControllerClient
    from reuse_runtime.client.runs import RunsClient
    from reuse_runtime.sdk.replica_client import replica_client

    global _client
    client = replica_client()
    if not isinstance(client, ControllerClient):
        raise RuntimeError(
            "conditions need a controller: this task runs in an in-process test harness"
        )
    if _client is None or _client[0] is not client:
        _client = (client, RunsClient(client))
    return _client[1]


_client: tuple[Any, Any] | None = None


async def _new_condition(
    ctx: TaskContext | None,
    name: str,
    /,
    prompt: str = "Approve?",
    prompt_type: PromptType = "text",
    data_type: type[ConditionType] = bool,  # type: ignore[assignment]
    description: str = "",
    timeout: timedelta | int | float | None = None,
    webhook: ConditionWebhook | None = None,
) -> _Condition[ConditionType]:
    """Create a condition a task can wait on (Flyte's ``flyte.new_condition``).

    Inside a task it is registered with the run's controller at once, so
    ``flyte.remote.Condition.listall(run_name=...)`` lists it; outside any task it is
    only made (as in Flyte), and waiting on it raises ``RuntimeError``.
    """
    condition: _Condition[ConditionType] = _Condition(
        name=name,
        prompt=prompt,
        prompt_type=prompt_type,
        data_type=data_type,
        description=description,
        timeout=timeout,
        webhook=webhook,
    )
    if ctx is not None:
        await condition._register(ctx)
    return condition


new_condition: _Dual[_Condition[Any]] = _Dual(
    _new_condition, "new_condition", _new_condition.__doc__
)

__all__ = ["ConditionWebhook", "new_condition"]
