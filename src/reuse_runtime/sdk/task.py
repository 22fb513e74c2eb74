"""`TaskTemplate`: a function bound to its environment, and the path of a call to it.

* Inside a task (on a replica), calling a task dispatches it through the
  controller to a replica of its environment: the call is serialized
  (:meth:`TaskTemplate.submission`), sent through the replica's client, and
  its result unwrapped, while the parent lends its slot.
* Outside any run, calling it runs the function here, like a plain call.

``@env.task`` makes templates (see :mod:`reuse_runtime.sdk.environment`); a template
knows its environment as a :class:`ParentEnvironment`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import os
import secrets
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, Literal, ParamSpec, Protocol, TypeVar

from reuse_runtime import code, errors, pickling
from reuse_runtime.aio import wait_within
from reuse_runtime.context import TaskContext, current_task
from reuse_runtime.images.recipe import Image
from reuse_runtime.model import (
    CodeBundle,
    EnvironmentSpec,
    FunctionRef,
    RunOptions,
    Submission,
    TaskResult,
    TaskSpec,
    dumps_args,
)
from reuse_runtime.policy import ReusePolicy
from reuse_runtime.resources import Resources
from reuse_runtime.sdk.cache import (
    Cache,
    CacheRequest,
    VersionParameters,
    cache_from_request,
    cache_key,
    inputs_digest,
)
from reuse_runtime.sdk.coerce import LATER, Plan, plan
from reuse_runtime.sdk.ignored import note_ignored
from reuse_runtime.sdk.pod import PodTemplate
from reuse_runtime.sdk.replay import call_key
from reuse_runtime.sdk.replica_client import cancel_child, replica_client
from reuse_runtime.sdk.report import reporting
from reuse_runtime.sdk.retry import (
    RetryStrategy,
    TimeoutType,
    retry_from_request,
    timeout_from_request,
)
from reuse_runtime.sdk.secrets import Secret, SecretRequest, secrets_from_request
from reuse_runtime.sdk.task_context import current_group, custom_context_pairs, in_trace
from reuse_runtime.worker.loader import TASK_FUNCTION_ATTR

P = ParamSpec("P")
R = TypeVar("R")

#: Task ids: a random prefix per process, then a counter. As unique as uuid4 across
#: processes (80 random bits, drawn again in a forked child) at a tenth of the cost.
_task_id_prefix = secrets.token_hex(10)
_task_id_counter = itertools.count(1)


def _reset_task_ids() -> None:
    global _task_id_prefix, _task_id_counter
    _task_id_prefix = secrets.token_hex(10)
    _task_id_counter = itertools.count(1)


os.register_at_fork(after_in_child=_reset_task_ids)


def _new_task_id() -> str:
    """A task id unique across processes: 20 random hex digits and a hex counter."""
    return f"{_task_id_prefix}{next(_task_id_counter):012x}"


#: Flyte's default bound on a task's inline inputs, and on its result: 10 MiB.
MAX_INLINE_IO_BYTES = 10 * 1024 * 1024


class ParentEnvironment(Protocol):
    """What a task takes from its environment: a ``TaskEnvironment`` is one.

    The environment makes its tasks (``@env.task``), so a task knows it by this shape
    only, and this module does not import the environment's.
    """

    @property
    def name(self) -> str: ...

    @property
    def image(self) -> Image | str | None: ...

    @property
    def resources(self) -> Resources | None: ...

    @property
    def reusable(self) -> ReusePolicy | None: ...

    @property
    def env_vars(self) -> dict[str, str] | None: ...

    @property
    def secrets(self) -> SecretRequest | None: ...

    def spec(
        self,
        reusable: ReusePolicy | None,
        *,
        resources: Resources | None = None,
        env_vars: dict[str, str] | None = None,
        secrets: list[Secret] | None = None,
        scope: str = "",
        run_env: tuple[tuple[str, str], ...] = (),
        code_bundle: str = "",
    ) -> EnvironmentSpec:
        """The environment as the controller sees it, with a task's overrides applied."""
        ...


@dataclass(slots=True)
class CallContext:
    """Where a task is called from: its run, its parent, its group and custom context."""

    run_id: str
    parent_task_id: str = ""
    group: str = ""
    custom_context: tuple[tuple[str, str], ...] = ()
    run_options: RunOptions | None = None
    scope_run: str = ""
    #: The digest of the run's code bundle ("" for none): part of its pools' identity.
    code_bundle: str = ""


class TaskTemplate(Generic[P, R]):
    """A task: a function bound to a :class:`TaskEnvironment`, with Flyte's attributes.

    * Inside a task (on a replica), calling it dispatches it through the
      controller. An ``async def`` task returns an awaitable; from a thread
      (a ``def`` parent) the call blocks and returns the value.
    * Outside any run, calling it runs the function here, like a plain call
      (``forward``).
    * ``await task.aio(...)`` always gives an awaitable.

    Attributes: ``name`` (``<env>.<function>``), ``short_name``, ``func``,
    ``parent_env``, ``image``, ``resources``, ``reusable``, ``cache`` (a
    ``flyte.Cache``), ``retries`` (a ``flyte.RetryStrategy``), ``timeout``,
    ``env_vars``, ``secrets``, ``max_inline_io_bytes``, ``docs``,
    ``pod_template``, ``interruptible``, ``queue``, ``report``.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        env: ParentEnvironment,
        *,
        short_name: str | None = None,
        cache: CacheRequest | None = "disable",
        retries: int | RetryStrategy = 0,
        timeout: TimeoutType | float | None = None,
        docs: Any | None = None,
        pod_template: str | PodTemplate | None = None,
        max_inline_io_bytes: int = MAX_INLINE_IO_BYTES,
        entrypoint: bool = False,
        produces_artifacts: bool = False,
        report: bool = False,
        interruptible: bool = False,
        queue: str | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@env.task needs a function, got {type(fn).__name__}")
        functools.update_wrapper(self, fn)
        self.func = fn
        # What a replica runs: with report=True, the function with its report around it.
        setattr(self, TASK_FUNCTION_ATTR, reporting(fn, fn.__name__) if report else fn)
        self.parent_env = env
        self.parent_env_name = env.name
        self.name = f"{env.name}.{fn.__name__}"
        self.short_name = short_name or fn.__name__
        self.image = env.image
        self.resources = env.resources
        self.reusable = env.reusable
        self.env_vars = env.env_vars
        self.secrets = env.secrets
        self.cache: Cache = cache_from_request(cache)
        self.retries: RetryStrategy = retry_from_request(retries)
        self.timeout = timeout if timeout else None
        self._timeout = timeout_from_request(timeout)
        self.docs = docs
        self.pod_template = pod_template
        if isinstance(max_inline_io_bytes, bool) or not isinstance(max_inline_io_bytes, int):
            raise TypeError(f"max_inline_io_bytes must be an int, got {max_inline_io_bytes!r}")
        if max_inline_io_bytes <= 0:
            raise ValueError(f"max_inline_io_bytes must be positive, got {max_inline_io_bytes}")
        self.max_inline_io_bytes = max_inline_io_bytes
        self.entrypoint = entrypoint
        self.produces_artifacts = produces_artifacts
        self.report = report
        self.interruptible = interruptible
        self.queue = queue
        self.is_async = inspect.iscoroutinefunction(fn)
        # Where the environment's overrides differ from the environment's own.
        self._env_resources: Resources | None = None
        self._env_vars_override: dict[str, str] | None = None
        self._secrets_override: list[Secret] | None = None
        self._reference: tuple[FunctionRef | None, bytes | None, CodeBundle | None] | None = None
        self._reference_of = code.generation
        self._site: str | None = None
        self._specs: dict[tuple[str, tuple[tuple[str, str], ...], str], EnvironmentSpec] = {}
        self._cache_version: str | None = None
        # Which inputs are built by their hints (None: none; LATER: at the first call).
        self._inputs: Plan | None = plan(self.short_name, fn, final=False)
        self._settle()

    def _settle(self) -> None:
        """Work out once what every call needs from the settings (they are on the hot path)."""
        self._runtime_s = self._timeout.runtime_seconds
        self._deadline_s = self._timeout.deadline_seconds
        self._cache_on = self.cache.is_enabled()
        backoff = self.retries.backoff
        self._backoff = backoff.to_model() if backoff is not None else None
        self._scoped = self.reusable is not None and self.reusable.scope == "run"

    @property
    def env(self) -> ParentEnvironment:
        """The task's environment (Flyte calls it ``parent_env``)."""
        return self.parent_env

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    def __reduce__(self) -> Any:
        # Module-level tasks travel by reference (a script's, under its bundle name),
        # so a replica gets the task it imported, not a copy of its environment.
        module = getattr(self.func, "__module__", "")
        qualname = getattr(self.func, "__qualname__", "")
        if module and "<" not in qualname:
            holder = sys.modules.get(module)
            if holder is not None and getattr(holder, qualname.split(".")[0], None) is self:
                name = code.bundle_module_name_of(module) or module
                return (pickling.import_attr, (name, qualname))
        return object.__reduce__(self)

    def override(
        self,
        *,
        short_name: str | None = None,
        resources: Resources | None = None,
        cache: CacheRequest | None = None,
        retries: int | RetryStrategy = 0,
        timeout: TimeoutType | float | None = None,
        reusable: ReusePolicy | Literal["off"] | None = None,
        env_vars: dict[str, str] | None = None,
        secrets: SecretRequest | None = None,
        max_inline_io_bytes: int | None = None,
        pod_template: str | PodTemplate | None = None,
        queue: str | None = None,
        interruptible: bool | None = None,
        entrypoint: bool | None = None,
        produces_artifacts: bool | None = None,
        links: tuple[Any, ...] = (),
        plugin_config: Any | None = None,
        **kwargs: Any,
    ) -> TaskTemplate[P, R]:
        """A copy of the task with some settings changed, for the calls made through it.

        ``reusable="off"`` runs each call in a fresh process. As in Flyte,
        ``resources``, ``env_vars`` and ``secrets`` change the environment, so on
        a reusable task they need ``reusable="off"`` in the same call (a
        ``ValueError`` otherwise). ``name``, ``image``, ``docs`` and ``interface``
        cannot be overridden.
        """
        for key in kwargs:
            if key in ("name", "image", "docs", "interface"):
                raise ValueError(f"{key.capitalize()} cannot be overridden")
        if kwargs:
            raise TypeError(f"override() got an unexpected keyword argument {next(iter(kwargs))!r}")
        policy: ReusePolicy | None
        if reusable == "off":
            policy = None
        elif reusable is None:
            policy = self.reusable
        elif isinstance(reusable, ReusePolicy):
            policy = reusable
        else:
            raise TypeError(f"reusable must be a ReusePolicy or 'off', got {reusable!r}")
        if policy is not None:
            for option, value in (
                ("resources", resources),
                ("env", env_vars),
                ("secrets", secrets),
            ):
                if value is not None:
                    raise ValueError(
                        f"Cannot override {option} when reusable is set. Reusable tasks will use "
                        f"the parent env's {option}. You can disable reusability and override "
                        f"{option} if needed. (set reusable='off')"
                    )
        if links:
            note_ignored("override(links=...)", "there is no Flyte UI to show links")
        if plugin_config is not None:
            note_ignored("override(plugin_config=...)", "tasks run as plain Python")
        if interruptible:
            note_ignored("override(interruptible=True)", "local replicas are not preempted")
        if queue is not None:
            note_ignored("override(queue=...)", "there is one local queue per environment")
        # Not copy.copy: __reduce__ names module-level tasks by reference.
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.short_name = short_name or self.short_name
        copy.reusable = policy
        if cache is not None:
            copy.cache = cache_from_request(cache)
            copy._cache_version = None
        if retries:
            copy.retries = retry_from_request(retries)
        if timeout:
            copy.timeout = timeout
            copy._timeout = timeout_from_request(timeout)
        if max_inline_io_bytes:
            copy.max_inline_io_bytes = max_inline_io_bytes
        if pod_template is not None:
            copy.pod_template = pod_template
        if queue is not None:
            copy.queue = queue
        if interruptible is not None:
            copy.interruptible = interruptible
        if entrypoint is not None:
            copy.entrypoint = entrypoint
        if produces_artifacts is not None:
            copy.produces_artifacts = produces_artifacts
        if resources is not None:
            copy.resources = copy._env_resources = resources
        if env_vars is not None:
            copy.env_vars = {**(self.env_vars or {}), **env_vars}
            copy._env_vars_override = env_vars
        if secrets is not None:
            copy.secrets = secrets
            copy._secrets_override = secrets_from_request(secrets)
        copy._specs = {}
        copy._settle()
        return copy

    # ------------------------------------------------------------ calling

    def forward(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function here, as a plain call (what a call outside any run does)."""
        return self.func(*args, **kwargs)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        ctx = current_task.get()
        if ctx is None:
            return self.func(*args, **kwargs)
        _no_tasks_in_trace(self)
        where = _call_context(ctx)
        if _on_loop(ctx.loop):
            if self.is_async:
                return self._dispatch(ctx, where, args, kwargs)  # type: ignore[return-value]
            raise TypeError(
                f"{self.short_name} is a sync task called from async code; use "
                f"`await {self.short_name}.aio(...)` so the event loop keeps running"
            )
        # A sync parent, in its thread: block until the child is done.
        future = asyncio.run_coroutine_threadsafe(
            self._dispatch(ctx, where, args, kwargs), ctx.loop
        )
        return future.result()

    def aio(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        """The call as an awaitable, for async code (a sync task runs in a thread)."""
        ctx = current_task.get()
        if ctx is None:
            return self._local(args, kwargs)
        _no_tasks_in_trace(self)
        return self._dispatch(ctx, _call_context(ctx), args, kwargs)

    async def _local(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        if self.is_async:
            return await self.func(*args, **kwargs)  # type: ignore[no-any-return, misc]
        return await asyncio.to_thread(self.func, *args, **kwargs)

    async def _dispatch(
        self, ctx: TaskContext, where: CallContext, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        client = replica_client()
        # Wait for room first: in a wide gather every call's first step runs before the
        # loop reads its sockets again, so what a waiting call does delays them all.
        await client.room(where.parent_task_id)  # its arguments are serialized next
        env_key = await client.register(self.environment_spec(where))
        submission = self.submission(env_key, args, kwargs, where, parent=ctx)
        task_id = submission.task.task_id
        # Lend the parent's slot while it waits, so children can never starve.
        ctx.children += 1
        if ctx.children == 1 and ctx.holds_slot:
            ctx.lend_slot()
            ctx.holds_slot = False
        try:
            deadline = self._deadline_s
            if deadline is None:
                result = await client.submit(submission)
            else:
                result = await self._within_deadline(client.submit(submission), deadline)
        except asyncio.CancelledError:
            # The parent was cancelled: its child must not run on for nobody.
            cancel_child(client, task_id)
            raise
        except errors.TaskTimedOutError:
            cancel_child(client, task_id)
            raise
        finally:
            ctx.children -= 1
            if ctx.children == 0 and not ctx.holds_slot:
                await ctx.reclaim_slot()
                ctx.holds_slot = True
        return self.unwrap(result)  # type: ignore[return-value]

    async def _within_deadline(
        self, submitted: Awaitable[TaskResult], deadline: float
    ) -> TaskResult:
        try:
            return await wait_within(submitted, deadline)
        except asyncio.TimeoutError:
            raise errors.TaskTimedOutError(
                f"task {self.short_name} passed its deadline of {deadline:g} s",
                type_name="TimeoutError",
                task=self.short_name,
            ) from None

    def unwrap(self, result: TaskResult) -> object:
        """The task's value (or its error, raised); checks ``max_inline_io_bytes``."""
        if result.ok and len(result.value) > self.max_inline_io_bytes:
            raise errors.InlineIOMaxBytesBreached(
                f"the result of task {self.short_name} is {len(result.value)} bytes, over its "
                f"max_inline_io_bytes of {self.max_inline_io_bytes}; pass large data as a "
                f"flyte.io.File, or raise max_inline_io_bytes"
            )
        return result.unwrap(self.short_name)

    # ------------------------------------------------------------ wire form

    def environment_spec(self, where: CallContext | None = None) -> EnvironmentSpec:
        """The task's environment as the controller sees it, for a call from ``where``."""
        scope = ""
        if self._scoped and where is not None:
            scope = where.scope_run or where.run_id
        run_env = where.run_options.env_vars if where and where.run_options else ()
        bundle = where.code_bundle if where is not None else ""
        key = (scope, run_env, bundle)
        spec = self._specs.get(key)
        if spec is None:
            if len(self._specs) >= 64:  # every version of the code makes one: keep a few
                self._specs.clear()
            spec = self._specs[key] = self.parent_env.spec(
                self.reusable,
                resources=self._env_resources,
                env_vars=self._env_vars_override,
                secrets=self._secrets_override,
                scope=scope,
                run_env=run_env,
                code_bundle=bundle,
            )
        return spec

    def task_spec(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        run_id: str,
        parent_task_id: str = "",
        where: CallContext | None = None,
        parent: TaskContext | None = None,
    ) -> TaskSpec:
        """The call as sent; called from a running ``parent``, with its replay key."""
        ref, pickled, bundle = self._wire_reference()
        data = dumps_args(args, kwargs)
        if len(data) > self.max_inline_io_bytes:
            raise errors.InlineIOMaxBytesBreached(
                f"the inputs of task {self.short_name} are {len(data)} bytes, over its "
                f"max_inline_io_bytes of {self.max_inline_io_bytes}; pass large data as a "
                f"flyte.io.File, or raise max_inline_io_bytes"
            )
        if where is None:
            return TaskSpec(
                _new_task_id(), self.short_name, data, ref, pickled, bundle, self._runtime_s,
                run_id, parent_task_id,
            )  # fmt: skip
        # A child gets its replay key: the same on every run of its parent.
        key = call_key(parent, self._call_site(ref), data) if parent is not None else ""
        return TaskSpec(
            _new_task_id(), self.short_name, data, ref, pickled, bundle, self._runtime_s,
            where.run_id, where.parent_task_id, where.group, where.custom_context, 0,
            where.run_options, key,
        )  # fmt: skip

    def submission(
        self,
        env_key: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        where: CallContext,
        *,
        stream_logs: bool = False,
        parent: TaskContext | None = None,
    ) -> Submission:
        """The call as submitted to the controller: the task, its retries and its cache key.

        From a running ``parent``, the task carries its replay key (see sdk/replay.py).
        """
        if self._inputs is not None:  # the one check a task without models pays
            args, kwargs = self._built(args, kwargs)
        spec = self.task_spec(args, kwargs, run_id=where.run_id, where=where, parent=parent)
        options = where.run_options
        cache_key = ""
        if self._cache_on and not (options and options.disable_cache):
            cache_key = self._cache_key(args, kwargs)
        return Submission(
            env_key,
            spec,
            self.retries.count,
            stream_logs,
            cache_key,
            bool(options and options.overwrite_cache),
            self._backoff,
            self.cache.max_age_seconds() if cache_key else 0.0,
        )

    def _built(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The inputs with dicts built into the models and dataclasses the hints name."""
        inputs = self._inputs
        if inputs is LATER:  # a hint named a class defined after the task: it is there now
            inputs = self._inputs = plan(self.short_name, self.func)
        return inputs.apply(args, kwargs) if inputs is not None else (args, kwargs)

    def _call_site(self, ref: FunctionRef | None) -> str:
        """What a call of this task is keyed by in its parent (see sdk/replay.py)."""
        site = self._site
        if site is None:
            site = self._site = str(ref) if ref is not None else self.name
        return site

    def _cache_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        version = self._cache_version
        if version is None:
            try:
                version = self.cache.get_version(VersionParameters(self.func, self.image))
            except (OSError, TypeError):  # no source to read (defined in a REPL, say)
                version = code.reference(self.func.__module__, self.func.__qualname__)[
                    0
                ].code_version
            self._cache_version = version
        digest = inputs_digest(self.func, args, kwargs, self.cache.get_ignored_inputs())
        return cache_key(self.name, version, digest)

    def _wire_reference(self) -> tuple[FunctionRef | None, bytes | None, CodeBundle | None]:
        if self._reference is None or self._reference_of != code.generation:
            self._reference_of = code.generation
            fn = self.func
            if "<locals>" in fn.__qualname__:
                # Not importable by name: travels by value; its globals do not persist.
                runs = getattr(self, TASK_FUNCTION_ATTR)
                self._reference = (None, pickling.dumps(runs), None)
            else:
                ref, bundle = code.reference(fn.__module__, fn.__qualname__)
                self._reference = (ref, None, bundle)
        return self._reference


def _call_context(ctx: TaskContext) -> CallContext:
    """Where a child called now is called from (read at call time, not when it runs)."""
    return CallContext(
        ctx.run_id,
        ctx.task_id,
        current_group(),
        custom_context_pairs(),
        ctx.run_options,
        code_bundle=code.project_bundle(),  # the replica's: the run's version
    )


def _no_tasks_in_trace(task: TaskTemplate[Any, Any]) -> None:
    traced = in_trace.get()
    if traced:
        raise errors.TraceDoesNotAllowNestedTasksError(
            f"Task {task.short_name} is called inside the flyte.trace function {traced}; "
            f"call tasks from the task itself, or call {task.short_name}.forward(...) to run "
            f"it here as a plain function"
        )


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


__all__ = ["CallContext", "ParentEnvironment", "TaskTemplate"]
