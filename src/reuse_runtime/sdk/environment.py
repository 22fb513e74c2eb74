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
like a plain function. The task and its call path are :mod:`reuse_runtime.sdk.task`'s.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal, ParamSpec, TypeVar, overload

from reuse_runtime import code
from reuse_runtime.errors import PolicyError
from reuse_runtime.images.recipe import OWN_ENVIRONMENT_ENV, OWN_RECIPE_ENV, Image
from reuse_runtime.model import (
    ENVIRONMENT_NAME,
    CodeBundle,
    EnvironmentSpec,
    FunctionRef,
    PoolPolicy,
)
from reuse_runtime.policy import ReusePolicy
from reuse_runtime.resources import Resources
from reuse_runtime.sdk.cache import Cache, CacheRequest
from reuse_runtime.sdk.ignored import note_ignored
from reuse_runtime.sdk.pod import PodTemplate
from reuse_runtime.sdk.retry import RetryStrategy, TimeoutType
from reuse_runtime.sdk.secrets import Secret, SecretRequest, resolve_all, secrets_from_request
from reuse_runtime.sdk.task import MAX_INLINE_IO_BYTES, TaskTemplate
from reuse_runtime.worker.loader import TASK_FUNCTION_ATTR

P = ParamSpec("P")
R = TypeVar("R")

#: Replicas a non-reusable environment may run at once (one fresh process per task).
NON_REUSABLE_MAX_REPLICAS = max(4, 2 * (os.cpu_count() or 1))
_DEFAULT_SCALEDOWN_TTL = 30.0
# Flyte's rule for an environment's name (snake_case or kebab-case), and its longest description.
_FLYTE_NAME = r"[a-z0-9]+([_-][a-z0-9]+)*"
_DESCRIPTION_MAX = 255


def _caller_module() -> str:
    """The module of the first frame outside this one: where an environment is defined."""
    frame = inspect.currentframe()
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return frame.f_globals.get("__name__", "__main__") if frame is not None else "__main__"


class Environment:
    """Flyte's base class of environments; :class:`TaskEnvironment` is the one that runs tasks."""

    name: str
    depends_on: list[Environment]

    def add_dependency(self, *env: Environment) -> None:
        """Record environments this one depends on (Flyte deploys them together).

        Locally every environment starts on demand, so this only records them.
        """
        for e in env:
            if not isinstance(e, Environment):
                raise TypeError(f"Expected Environment, got {type(e)}")
            if e.name == self.name:
                raise ValueError("Cannot add self as a dependency")
        for e in env:
            if e not in self.depends_on:
                self.depends_on.append(e)


def _check_type(name: str, value: object, types: tuple[type, ...], expected: str) -> None:
    if value is not None and not isinstance(value, types):
        raise TypeError(f"Expected {name} to be of type {expected}, got {type(value)}")


def _include(include: Any) -> tuple[str, ...]:
    if isinstance(include, str):
        raise TypeError(
            f"Expected include to be a sequence of str paths, got a bare str ({include!r})."
        )
    try:
        paths = tuple(include or ())
    except TypeError as exc:
        raise TypeError(
            f"Expected include to be a sequence of str paths, got {type(include)}"
        ) from exc
    for path in paths:
        if not isinstance(path, str):
            raise TypeError(f"include entries must be str, got {type(path)}")
    return paths


class TaskEnvironment(Environment):
    """A named environment: its image, resources, secrets, and (optionally) a pool of warm replicas.

    The arguments are Flyte's, in Flyte's order; those with a local meaning have
    it, the rest are recorded (for the container and Kubernetes backends) or, when
    they mean nothing here, accepted with a one-line warning.

    Args:
        name: the environment's name; replicas are named after it, and each task
            is named ``<name>.<function>``.
        depends_on: environments this one depends on (recorded).
        pod_template: a Kubernetes pod template or its name (recorded).
        description: what the environment is for (at most 255 characters).
        secrets: secrets its tasks read from their environment (see ``flyte.Secret``).
        env_vars: environment variables of its replicas.
        resources: what one replica may use.
        interruptible: spot instances; no local meaning (warned about).
        image: the replicas' image: a recipe (:class:`Image`), the name of an image that
            has reuse-runtime installed, or ``"auto"``/``None`` for
            ``Image.from_debian_base()``. Used by the container backend.
        include: extra files to ship with the code (recorded).
        cache: the default cache of its tasks: ``"auto"``, ``"override"``,
            ``"disable"`` or a ``flyte.Cache``.
        reusable: a :class:`ReusePolicy` to keep warm replicas; ``None`` for a
            fresh process per task.
        plugin_config: a Flyte plugin's configuration (Ray, Spark, ...); no local
            meaning (warned about).
        queue: a Flyte scheduling queue; no local meaning (warned about).
        on_start: called once per replica before it takes its first task (warm a
            model here).
        on_stop: called when a replica drains, within ``stop_grace`` seconds.
    """

    def __init__(
        self,
        name: str,
        depends_on: list[Environment] | None = None,
        pod_template: str | PodTemplate | None = None,
        description: str | None = None,
        secrets: SecretRequest | None = None,
        env_vars: dict[str, str] | None = None,
        resources: Resources | None = None,
        interruptible: bool = False,
        image: Image | str | Literal["auto"] | None = "auto",
        include: tuple[str, ...] = (),
        cache: CacheRequest = "disable",
        reusable: ReusePolicy | None = None,
        plugin_config: Any | None = None,
        queue: str | None = None,
        *,
        on_start: Callable[[], Any] | None = None,
        on_stop: Callable[[], Any] | None = None,
        stop_grace: float = 10.0,
    ) -> None:
        # Flyte's checks, in Flyte's order, with Flyte's words: people's tests match them.
        if image and not isinstance(image, (Image, str)):
            raise TypeError(f"Expected image to be of type str or Image, got {type(image)}")
        if secrets and not isinstance(secrets, (str, Secret, list)):
            raise TypeError(f"Expected secrets to be of type SecretRequest, got {type(secrets)}")
        deps = list(depends_on or [])
        for dep in deps:
            if not isinstance(dep, Environment):
                raise TypeError(
                    f"Expected depends_on to be of type List[Environment], got {type(dep)}"
                )
        _check_type("resources", resources, (Resources,), "Resources")
        _check_type("env_vars", env_vars, (dict,), "Dict[str, str]")
        _check_type("pod_template", pod_template, (str, PodTemplate), "str or PodTemplate")
        if isinstance(description, str) and len(description) > _DESCRIPTION_MAX:
            description = description[: _DESCRIPTION_MAX - 8] + "...(tr.)"
        include = _include(include)
        if not re.fullmatch(_FLYTE_NAME, name):
            raise PolicyError(
                f"Environment name '{name}' must be in snake_case or kebab-case format."
            )
        if not ENVIRONMENT_NAME.fullmatch(name):  # what replicas, pods and status can carry
            raise PolicyError(f"Environment name '{name}' is longer than 63 characters.")
        if reusable and not isinstance(reusable, ReusePolicy):
            raise TypeError(f"Expected reusable to be of type ReusePolicy, got {type(reusable)}")
        if cache and not isinstance(cache, (str, Cache)):
            raise TypeError(f"Expected cache to be of type str or Cache, got {type(cache)}")
        # Ours: what Flyte would only find out later, or never.
        for key, value in (env_vars or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"env_vars must map str to str, got {key!r}: {value!r}")
        self.name = name
        self.depends_on = deps
        self.pod_template = pod_template
        self.description = description
        self._secrets = secrets_from_request(secrets)
        self.secrets = secrets
        self.env_vars = env_vars
        self.resources = resources
        self.interruptible = interruptible
        self.image = image
        self.include = include
        self.cache = cache  # checked as Flyte does, when a task takes it
        self.reusable = reusable or None  # Flyte lets reusable=False through: not reusable
        self.plugin_config = plugin_config
        self.queue = queue
        self.on_start = on_start
        self.on_stop = on_stop
        self.stop_grace = stop_grace
        if interruptible:
            note_ignored("TaskEnvironment(interruptible=True)", "local replicas are not preempted")
        if plugin_config is not None:
            note_ignored(
                "TaskEnvironment(plugin_config=...)",
                f"tasks run as plain Python; the {type(plugin_config).__name__} plugin is not used",
            )
        if queue is not None:
            note_ignored("TaskEnvironment(queue=...)", "there is one local queue per environment")
        # The module that defines the environment names its code version.
        self._module = _caller_module()
        self._tasks: dict[str, TaskTemplate[Any, Any]] = {}

    @property
    def tasks(self) -> dict[str, TaskTemplate[Any, Any]]:
        """The environment's tasks, by name (``<env>.<function>``)."""
        return self._tasks

    def clone_with(
        self,
        name: str,
        image: Image | str | Literal["auto"] | None = None,
        resources: Resources | None = None,
        env_vars: dict[str, str] | None = None,
        secrets: SecretRequest | None = None,
        depends_on: list[Environment] | None = None,
        description: str | None = None,
        interruptible: bool | None = None,
        include: tuple[str, ...] | None = None,
        **kwargs: Any,
    ) -> TaskEnvironment:
        """A new environment like this one, under another name, with some settings changed.

        Anything not passed is inherited. ``kwargs`` takes the other
        ``TaskEnvironment`` settings (``cache``, ``reusable``, ``plugin_config``,
        ``queue``, ``pod_template``, ``on_start``, ``on_stop``, ``stop_grace``);
        anything else is a ``TypeError``.

        Example::

            cached = env.clone_with("env_cached", cache="auto")
        """
        allowed = (
            "cache",
            "reusable",
            "plugin_config",
            "queue",
            "pod_template",
            "on_start",
            "on_stop",
            "stop_grace",
        )
        unknown = [k for k in kwargs if k not in allowed]
        if unknown:
            raise TypeError(f"Unexpected keyword arguments: {unknown}")
        settings: dict[str, Any] = {
            "depends_on": list(self.depends_on),
            "pod_template": self.pod_template,
            "description": self.description,
            "secrets": self.secrets,
            "env_vars": self.env_vars,
            "resources": self.resources,
            "interruptible": self.interruptible,
            "image": self.image,
            "include": self.include,
            "cache": self.cache,
            "reusable": self.reusable,
            "plugin_config": self.plugin_config,
            "queue": self.queue,
            "on_start": self.on_start,
            "on_stop": self.on_stop,
            "stop_grace": self.stop_grace,
        }
        given = {
            "image": image,
            "resources": resources,
            "env_vars": env_vars,
            "secrets": secrets,
            "depends_on": depends_on,
            "description": description,
            "interruptible": interruptible,
            "include": include,
        }
        settings.update({k: v for k, v in given.items() if v is not None})
        settings.update(kwargs)
        return TaskEnvironment(name, **settings)

    @overload
    def task(self, _func: Callable[P, R], /) -> TaskTemplate[P, R]: ...

    @overload
    def task(
        self,
        _func: None = None,
        /,
        *,
        short_name: str | None = None,
        cache: CacheRequest | None = None,
        retries: int | RetryStrategy = 0,
        timeout: TimeoutType | float | None = 0,
        docs: Any | None = None,
        pod_template: str | PodTemplate | None = None,
        report: bool = False,
        interruptible: bool | None = None,
        max_inline_io_bytes: int = MAX_INLINE_IO_BYTES,
        queue: str | None = None,
        triggers: tuple[Any, ...] | Any = (),
        links: tuple[Any, ...] | Any = (),
        task_resolver: Any | None = None,
        entrypoint: bool = False,
        produces_artifacts: bool = False,
        name: str | None = None,
    ) -> Callable[[Callable[P, R]], TaskTemplate[P, R]]: ...

    def task(
        self,
        _func: Callable[P, R] | None = None,
        /,
        *,
        short_name: str | None = None,
        cache: CacheRequest | None = None,
        retries: int | RetryStrategy = 0,
        timeout: TimeoutType | float | None = 0,
        docs: Any | None = None,
        pod_template: str | PodTemplate | None = None,
        report: bool = False,
        interruptible: bool | None = None,
        max_inline_io_bytes: int = MAX_INLINE_IO_BYTES,
        queue: str | None = None,
        triggers: tuple[Any, ...] | Any = (),
        links: tuple[Any, ...] | Any = (),
        task_resolver: Any | None = None,
        entrypoint: bool = False,
        produces_artifacts: bool = False,
        name: str | None = None,
    ) -> TaskTemplate[P, R] | Callable[[Callable[P, R]], TaskTemplate[P, R]]:
        """Make a function a task of this environment. Works on ``async def`` and ``def``.

        Args:
            short_name: the name shown in output and status (default: the function's).
            cache: ``"auto"``, ``"override"``, ``"disable"`` or a ``flyte.Cache``
                (default: the environment's).
            retries: times to run the task again after it raises, or a
                ``flyte.RetryStrategy`` (with a backoff).
            timeout: seconds, a timedelta, or a ``flyte.Timeout``: the task is
                cancelled and reported as timed out.
            max_inline_io_bytes: the largest inputs (and result) the task takes,
                in bytes; larger ones raise ``flyte.errors.InlineIOMaxBytesBreached``.
            docs, pod_template, entrypoint, produces_artifacts: recorded.
            report: give the task a ``flyte.report``, shown on its action's page in the
                web UI.
            interruptible, queue, triggers, links, task_resolver: Flyte backend
                features with no local meaning; setting one warns once.
            name: reuse-runtime's older spelling of ``short_name``.
        """
        if self.reusable is not None and pod_template is not None:
            raise ValueError("Cannot set pod_template when environment is reusable.")
        for option, value, why in (
            ("interruptible", interruptible, "local replicas are not preempted"),
            ("queue", queue, "there is one local queue per environment"),
            ("triggers", triggers, "there is no scheduler; start runs yourself"),
            ("links", links, "there is no Flyte UI to show links"),
            ("task_resolver", task_resolver, "tasks are found by module and name"),
        ):
            if value:
                note_ignored(f"@env.task({option}=...)", why)

        def decorate(f: Callable[P, R]) -> TaskTemplate[P, R]:
            template = TaskTemplate(
                f,
                self,
                short_name=short_name or name,
                cache=cache or self.cache,  # Flyte's: cache=False is the environment's
                retries=retries,
                timeout=timeout,
                docs=docs,
                pod_template=pod_template or self.pod_template,
                max_inline_io_bytes=max_inline_io_bytes,
                entrypoint=entrypoint,
                produces_artifacts=produces_artifacts,
                report=report,
                interruptible=self.interruptible if interruptible is None else interruptible,
                queue=queue or self.queue,
            )
            self._tasks[template.name] = template
            return template

        return decorate(_func) if _func is not None else decorate

    def spec(
        self,
        reusable: ReusePolicy | Literal["inherit"] | None = "inherit",
        *,
        resources: Resources | None = None,
        env_vars: dict[str, str] | None = None,
        secrets: list[Secret] | None = None,
        scope: str = "",
        run_env: tuple[tuple[str, str], ...] = (),
        code_bundle: str = "",
    ) -> EnvironmentSpec:
        """The environment as the controller sees it (a task's overrides applied), running
        the project's code bundle ``code_bundle`` (a digest; "" for none)."""
        policy = self.reusable if reusable == "inherit" else reusable
        resources = resources if resources is not None else self.resources
        variables = dict(self.env_vars or {})
        variables.update(env_vars or {})
        variables.update(run_env)
        # Secrets are resolved here, on this machine, and travel in the replicas'
        # environment only (EnvironmentSpec does not show env_vars in its repr).
        variables.update(resolve_all(self._secrets if secrets is None else secrets))
        on_start, on_stop, hooks_bundle = _hook(self.on_start), _hook(self.on_stop), None
        for hook_bundle in (on_start[1], on_stop[1]):
            hooks_bundle = hooks_bundle or hook_bundle
        # The recipe travels as JSON: the controller's container backend builds it.
        image = self.image.to_json() if isinstance(self.image, Image) else (self.image or "")
        if isinstance(self.image, Image) and os.environ.get(OWN_ENVIRONMENT_ENV) == self.name:
            image = os.environ.get(OWN_RECIPE_ENV) or image  # in its own pod: as started
        return EnvironmentSpec(
            name=self.name,
            policy=_pool_policy(policy),
            image="" if image == "auto" else image,
            resources=resources.to_wire() if resources else "",
            code_version=_module_version(self._module),
            working_dir=os.getcwd(),
            python_path=tuple(p for p in sys.path if p and os.path.isdir(p)),
            env_vars=tuple(sorted(variables.items())),
            on_start=on_start[0],
            on_stop=on_stop[0],
            hooks_bundle=hooks_bundle,
            stop_grace=self.stop_grace,
            scope=scope,
            code_bundle=code_bundle,
        )

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


__all__ = ["Environment", "Image", "Resources", "TaskEnvironment", "TaskTemplate"]
