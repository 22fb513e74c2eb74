"""The Flyte-shaped authoring API: `TaskEnvironment`, `@env.task`, `Resources`, `Image`.

The names and signatures mirror ``flyte``'s, so existing code ports by changing
one import::

    import reuse_runtime as flyte

    env = flyte.TaskEnvironment(name="demo", reusable=flyte.ReusePolicy(replicas=2))

    @env.task
    async def square(x: int) -> int:
        return x * x

Calling a task inside another task dispatches it through the controller to a
replica of its environment. Calling it outside any run executes it locally,
like a plain function.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import os
import secrets
import sys
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, Generic, Literal, ParamSpec, TypeVar, overload

import cloudpickle

from reuse_runtime import code
from reuse_runtime.context import TaskContext, current_task
from reuse_runtime.errors import PolicyError
from reuse_runtime.images.recipe import Image
from reuse_runtime.model import (
    ENVIRONMENT_NAME,
    CodeBundle,
    EnvironmentSpec,
    FunctionRef,
    PoolPolicy,
    Submission,
    TaskSpec,
    dumps_args,
)
from reuse_runtime.policy import ReusePolicy
from reuse_runtime.resources import Resources
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


#: Replicas a non-reusable environment may run at once (one fresh process per task).
NON_REUSABLE_MAX_REPLICAS = max(4, 2 * (os.cpu_count() or 1))
_DEFAULT_SCALEDOWN_TTL = 30.0


class TaskEnvironment:
    """A named environment: its image, resources, and (optionally) a pool of warm replicas.

    Args:
        name: the environment's name; replicas are named after it.
        resources: what one replica may use.
        reusable: a :class:`ReusePolicy` to keep warm replicas, or ``None`` for a
            fresh process per task.
        image: the replicas' image: a recipe (:class:`Image`), the name of an image that
            has reuse-runtime installed, or ``None``/``"auto"`` for
            ``Image.from_debian_base()``. Used by the container backend.
        env_vars: environment variables for the replicas.
        on_start: called once per replica before it takes its first task (warm a model here).
        on_stop: called when a replica drains, within ``stop_grace`` seconds.
    """

    def __init__(
        self,
        name: str,
        resources: Resources | None = None,
        reusable: ReusePolicy | None = None,
        image: Image | str | None = None,
        *,
        env_vars: dict[str, str] | None = None,
        on_start: Callable[[], Any] | None = None,
        on_stop: Callable[[], Any] | None = None,
        stop_grace: float = 10.0,
        **_flyte_only: Any,
    ) -> None:
        if not isinstance(name, str) or not ENVIRONMENT_NAME.fullmatch(name):
            raise PolicyError(
                f"TaskEnvironment name must be 1 to 63 letters, digits, '-', '_' or '.', "
                f"starting with a letter or digit; got {name!r}"
            )
        if image == "auto":
            image = None
        if image is not None and not isinstance(image, (Image, str)):
            raise PolicyError(f"image must be an Image, an image name or None, got {image!r}")
        if resources is not None and not isinstance(resources, Resources):
            raise PolicyError(f"resources must be a Resources, got {type(resources).__name__}")
        if reusable is not None and not isinstance(reusable, ReusePolicy):
            raise PolicyError(
                f"reusable must be a ReusePolicy or None, got {type(reusable).__name__}"
            )
        self.name = name
        self.resources = resources
        self.reusable = reusable
        self.image = image
        self.env_vars = dict(env_vars or {})
        self.on_start = on_start
        self.on_stop = on_stop
        self.stop_grace = stop_grace
        # The module that defines the environment names its code version.
        frame = inspect.currentframe()
        caller = frame.f_back if frame is not None else None
        self._module = caller.f_globals.get("__name__", "__main__") if caller else "__main__"
        self.tasks: dict[str, TaskTemplate[Any, Any]] = {}
        self._specs: dict[Any, EnvironmentSpec] = {}

    @overload
    def task(self, fn: Callable[P, R], /) -> TaskTemplate[P, R]: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        retries: int = 0,
        timeout: float | timedelta | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> Callable[[Callable[P, R]], TaskTemplate[P, R]]: ...

    def task(
        self,
        fn: Callable[P, R] | None = None,
        /,
        *,
        retries: int = 0,
        timeout: float | timedelta | None = None,
        name: str | None = None,
        **_flyte_only: Any,
    ) -> TaskTemplate[P, R] | Callable[[Callable[P, R]], TaskTemplate[P, R]]:
        """Make ``fn`` a task of this environment. Works on ``async def`` and ``def``.

        Args:
            retries: times to run the task again after it raises.
            timeout: seconds (or a timedelta) after which the task is cancelled
                and reported as timed out.
        """

        def decorate(f: Callable[P, R]) -> TaskTemplate[P, R]:
            template = TaskTemplate(f, self, retries=retries, timeout=timeout, name=name)
            self.tasks[template.name] = template
            return template

        return decorate(fn) if fn is not None else decorate

    def spec(
        self, reusable: ReusePolicy | Literal["inherit"] | None = "inherit"
    ) -> EnvironmentSpec:
        """The environment as the controller sees it."""
        policy = self.reusable if reusable == "inherit" else reusable
        cached = self._specs.get(id(policy))
        if cached is not None:
            return cached
        on_start, on_stop, hooks_bundle = _hook(self.on_start), _hook(self.on_stop), None
        for hook_bundle in (on_start[1], on_stop[1]):
            hooks_bundle = hooks_bundle or hook_bundle
        image = self.image.to_json() if isinstance(self.image, Image) else self.image or ""
        spec = EnvironmentSpec(
            name=self.name,
            policy=_pool_policy(policy),
            image=image,
            resources=self.resources.to_wire() if self.resources else "",
            code_version=_module_version(self._module),
            working_dir=os.getcwd(),
            python_path=tuple(p for p in sys.path if p and os.path.isdir(p)),
            env_vars=tuple(sorted(self.env_vars.items())),
            on_start=on_start[0],
            on_stop=on_stop[0],
            hooks_bundle=hooks_bundle,
            stop_grace=self.stop_grace,
        )
        self._specs[id(policy)] = spec
        return spec

    def __repr__(self) -> str:
        return f"TaskEnvironment(name={self.name!r}, reusable={self.reusable!r})"


def _pool_policy(policy: ReusePolicy | None) -> PoolPolicy:
    if policy is None:
        return PoolPolicy(
            min_replicas=0,
            max_replicas=NON_REUSABLE_MAX_REPLICAS,
            concurrency=1,
            scaledown_ttl=0.0,
            idle_ttl=0.0,
            max_tasks=1,
            reusable=False,
        )
    scaledown = policy.get_scaledown_ttl()
    lifetime = policy.max_lifetime
    return PoolPolicy(
        min_replicas=policy.min_replicas,
        max_replicas=policy.max_replicas,
        concurrency=policy.concurrency,
        scaledown_ttl=scaledown.total_seconds()
        if scaledown is not None
        else _DEFAULT_SCALEDOWN_TTL,
        idle_ttl=_seconds(policy.idle_ttl),
        max_tasks=policy.max_tasks or 0,
        max_rss=int(policy.max_rss or 0),
        max_lifetime=_seconds(lifetime) if lifetime is not None else 0.0,
        reusable=True,
    )


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _module_version(module_name: str) -> str:
    bundle = code.bundle_for(module_name)
    if bundle is not None:
        return bundle.digest
    module = sys.modules.get(module_name)
    return code.module_version(module) if module is not None else ""


def _hook(fn: Callable[[], Any] | None) -> tuple[FunctionRef | None, CodeBundle | None]:
    if fn is None:
        return None, None
    target = getattr(fn, TASK_FUNCTION_ATTR, fn)
    return code.reference(target.__module__, target.__qualname__)


class TaskTemplate(Generic[P, R]):
    """A task: a function bound to a :class:`TaskEnvironment`.

    * Inside a task (on a replica), calling it dispatches it through the
      controller. An ``async def`` task returns an awaitable; from a thread
      (a ``def`` parent) the call blocks and returns the value.
    * Outside any run, calling it runs the function here, like a plain call.
    * ``await task.aio(...)`` always gives an awaitable.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        env: TaskEnvironment,
        *,
        retries: int = 0,
        timeout: float | timedelta | None = None,
        name: str | None = None,
        reusable: ReusePolicy | Literal["inherit"] | None = "inherit",
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@env.task needs a function, got {type(fn).__name__}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise PolicyError(f"retries must be a non-negative int, got {retries!r}")
        functools.update_wrapper(self, fn)
        self.func = fn
        setattr(self, TASK_FUNCTION_ATTR, fn)
        self.env = env
        self.retries = retries
        self.timeout = _seconds(timeout) if timeout is not None else None
        if self.timeout is not None and self.timeout <= 0:
            raise PolicyError(f"timeout must be positive, got {timeout!r}")
        self.name = name or fn.__name__
        self.is_async = inspect.iscoroutinefunction(fn)
        self._reusable = reusable
        self._reference: tuple[FunctionRef | None, bytes | None, CodeBundle | None] | None = None

    def __repr__(self) -> str:
        return f"<task {self.name} of environment {self.env.name!r}>"

    def override(
        self,
        *,
        reusable: ReusePolicy | Literal["off"] | None = None,
        retries: int | None = None,
        timeout: float | timedelta | None = None,
        **_flyte_only: Any,
    ) -> TaskTemplate[P, R]:
        """A copy with another reuse policy, retries or timeout.

        ``reusable="off"`` runs each call in a fresh process.
        """
        policy: ReusePolicy | Literal["inherit"] | None = self._reusable
        if reusable == "off":
            policy = None
        elif reusable is not None:
            if not isinstance(reusable, ReusePolicy):
                raise PolicyError(f"reusable must be a ReusePolicy or 'off', got {reusable!r}")
            policy = reusable
        copy = TaskTemplate(
            self.func,
            self.env,
            retries=self.retries if retries is None else retries,
            timeout=self.timeout if timeout is None else timeout,
            name=self.name,
            reusable=policy,
        )
        copy._reference = self._reference
        return copy

    # ------------------------------------------------------------ calling

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        ctx = current_task.get()
        if ctx is None:
            return self.func(*args, **kwargs)
        if _on_loop(ctx.loop):
            if self.is_async:
                return self._dispatch(ctx, args, kwargs)  # type: ignore[return-value]
            raise TypeError(
                f"{self.name} is a sync task called from async code; use "
                f"`await {self.name}.aio(...)` so the event loop keeps running"
            )
        # A sync parent, in its thread: block until the child is done.
        future = asyncio.run_coroutine_threadsafe(self._dispatch(ctx, args, kwargs), ctx.loop)
        return future.result()

    def aio(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        """The call as an awaitable, for async code."""
        ctx = current_task.get()
        if ctx is None:
            return self._local(args, kwargs)
        return self._dispatch(ctx, args, kwargs)

    async def _local(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        if self.is_async:
            return await self.func(*args, **kwargs)  # type: ignore[no-any-return, misc]
        return await asyncio.to_thread(self.func, *args, **kwargs)

    async def _dispatch(self, ctx: TaskContext, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        from reuse_runtime.sdk.runtime import cancel_child, replica_client

        client = replica_client()
        env_key = await client.register(self.environment_spec())
        spec = self.task_spec(args, kwargs, run_id=ctx.run_id, parent_task_id=ctx.task_id)
        # Lend the parent's slot while it waits, so children can never starve.
        ctx.children += 1
        if ctx.children == 1 and ctx.holds_slot:
            ctx.lend_slot()
            ctx.holds_slot = False
        try:
            result = await client.submit(Submission(env_key, spec, retries=self.retries))
        except asyncio.CancelledError:
            # The parent was cancelled: its child must not run on for nobody.
            cancel_child(client, spec.task_id)
            raise
        finally:
            ctx.children -= 1
            if ctx.children == 0 and not ctx.holds_slot:
                await ctx.reclaim_slot()
                ctx.holds_slot = True
        return result.unwrap(self.name)  # type: ignore[return-value]

    # ------------------------------------------------------------ wire form

    def environment_spec(self) -> EnvironmentSpec:
        return self.env.spec(self._reusable)

    def task_spec(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        run_id: str,
        parent_task_id: str = "",
    ) -> TaskSpec:
        ref, pickled, bundle = self._wire_reference()
        return TaskSpec(
            task_id=_new_task_id(),
            name=self.name,
            args=dumps_args(args, kwargs),
            ref=ref,
            pickled=pickled,
            bundle=bundle,
            timeout=self.timeout,
            run_id=run_id,
            parent_task_id=parent_task_id,
        )

    def _wire_reference(self) -> tuple[FunctionRef | None, bytes | None, CodeBundle | None]:
        if self._reference is None:
            fn = self.func
            if "<locals>" in fn.__qualname__:
                # Not importable by name: travels by value; its globals do not persist.
                self._reference = (None, bytes(cloudpickle.dumps(fn)), None)
            else:
                ref, bundle = code.reference(fn.__module__, fn.__qualname__)
                self._reference = (ref, None, bundle)
        return self._reference


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


__all__ = ["Image", "Resources", "TaskEnvironment", "TaskTemplate"]
