"""`Cache` and `CachePolicy`: a real local cache of task results, as Flyte spells it.

``@env.task(cache="auto")`` (or ``TaskEnvironment(cache=...)``, or
``task.override(cache=...)``) keeps each successful result under a key made of
the task's name, its cache version and its inputs. A later call with the same
key gets the stored result without running the task. The results live in the
controller (SQLite under the state directory), so every replica and every run
shares them; hits show in the run's log and in ``reuse-runtime status``.

* ``"auto"``: the version is a hash of the function's source (its syntax tree),
  so editing the function invalidates its entries.
* ``"override"``: the version is ``Cache(version_override=...)``; change it to
  invalidate.
* ``"disable"`` (the default): no caching.

``Cache(max_age=timedelta(hours=1))`` (or seconds) reuses only results stored
within that time; an older one is computed again and stored anew.
``with_runcontext(overwrite_cache=True)`` runs the tasks anyway and stores the
new results; ``disable_run_cache=True`` turns caching off for one run.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import pickle
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, Literal, ParamSpec, Protocol, TypeVar, get_args, runtime_checkable

from reuse_runtime import pickling
from reuse_runtime.errors import raised_at_callers_line
from reuse_runtime.sdk.io import cache_identity

P = ParamSpec("P")
FuncOut = TypeVar("FuncOut")
CacheBehavior = Literal["auto", "override", "disable"]

# Spellings people type for the three behaviours, as Flyte accepts them.
_ALIASES: dict[str, CacheBehavior] = {
    "enable": "auto",
    "enabled": "auto",
    "on": "auto",
    "true": "auto",
    "yes": "auto",
    "off": "disable",
    "false": "disable",
    "no": "disable",
    "none": "disable",
}


@dataclass
class VersionParameters(Generic[P, FuncOut]):
    """What a :class:`CachePolicy` may use to compute a version."""

    func: Callable[P, FuncOut] | None
    image: Any = None
    code_bundle: Any = None


@runtime_checkable
class CachePolicy(Protocol):
    """Computes a cache version: implement ``get_version(salt, params) -> str``."""

    def get_version(self, salt: str, params: VersionParameters[..., Any]) -> str: ...


class FunctionBodyPolicy:
    """The default policy: a hash of the function's syntax tree, plus the salt.

    Comments and formatting do not change it; any change to the code does.
    """

    def get_version(self, salt: str, params: VersionParameters[..., Any]) -> str:
        if params.func is None:
            return ""
        source = textwrap.dedent(inspect.getsource(params.func))
        tree = ast.dump(ast.parse(source), include_attributes=False).encode()
        return hashlib.sha256(tree + salt.encode()).hexdigest()


def get_default_policies() -> list[CachePolicy]:
    return [FunctionBodyPolicy()]


@raised_at_callers_line
@dataclass
class Cache:
    """Cache settings of a task.

    Args:
        behavior: ``"auto"``, ``"override"`` or ``"disable"``.
        version_override: the version to use (with ``"override"``).
        serialize: Flyte runs identical concurrent calls once; here each runs,
            and the last result is kept (accepted with a warning).
        ignored_inputs: parameter names left out of the key.
        salt: mixed into the version, to start a fresh namespace.
        policies: how the version is computed (default: :class:`FunctionBodyPolicy`).
        max_age: the oldest stored result to reuse, as a ``timedelta`` or seconds;
            an older one is computed again (and stored anew). ``None`` or zero:
            any age.
    """

    behavior: CacheBehavior
    version_override: str | None = None
    serialize: bool = False
    ignored_inputs: tuple[str, ...] | str = field(default_factory=tuple)
    salt: str = ""
    policies: list[CachePolicy] | CachePolicy | None = None
    max_age: timedelta | int | None = None

    def __post_init__(self) -> None:
        valid = get_args(CacheBehavior)
        if isinstance(self.behavior, str) and self.behavior not in valid:
            aliased = _ALIASES.get(self.behavior.lower())
            if aliased is not None:
                self.behavior = aliased
        if self.behavior not in valid:
            raise ValueError(
                f"Invalid cache behavior: {self.behavior!r}. Must be one of {list(valid)} "
                f"(aliases accepted: {sorted(_ALIASES)})."
            )
        if isinstance(self.max_age, bool) or (
            self.max_age is not None and not isinstance(self.max_age, (int, timedelta))
        ):
            raise TypeError("max_age must be an int (seconds), timedelta, or None")
        if isinstance(self.max_age, int):
            self.max_age = timedelta(seconds=self.max_age)
        if self.max_age is not None and self.max_age < timedelta(0):
            raise ValueError("max_age must be nonnegative")
        # As Flyte keeps them: the attribute as given, a tuple for the key.
        self._ignored_inputs: tuple[str, ...] = (
            (self.ignored_inputs,)
            if isinstance(self.ignored_inputs, str)
            else tuple(self.ignored_inputs)
        )
        if self.serialize:
            from reuse_runtime.sdk.ignored import note_ignored

            note_ignored(
                "Cache(serialize=True)",
                "identical concurrent calls each run; the last result is stored",
            )
        if self.behavior == "disable":
            return
        if self.policies is None:
            self.policies = get_default_policies()
        elif isinstance(self.policies, CachePolicy):
            self.policies = [self.policies]
        if self.version_override is None and not self.policies:
            raise ValueError(
                "If version is not defined then at least one cache policy needs to be set"
            )

    def is_enabled(self) -> bool:
        return self.behavior in ("auto", "override")

    def get_ignored_inputs(self) -> tuple[str, ...]:
        return self._ignored_inputs

    def max_age_seconds(self) -> float:
        """``max_age`` in seconds; 0 when any age will do."""
        return self.max_age.total_seconds() if isinstance(self.max_age, timedelta) else 0.0

    def get_version(self, params: VersionParameters[..., Any] | None = None) -> str:
        """The cache version: the override, or the policies' hash."""
        if not self.is_enabled():
            return ""
        if self.version_override is not None:
            return self.version_override
        if params is None:
            raise ValueError(
                "Version parameters must be provided when version_override is not set."
            )
        policies = self.policies if isinstance(self.policies, list) else [self.policies]
        text = ""
        for policy in policies:
            if policy is None:
                continue
            try:
                text += policy.get_version(self.salt, params)
            except Exception as exc:
                raise ValueError(f"Failed to generate version for cache policy {policy}.") from exc
        return hashlib.sha256(text.encode()).hexdigest()


CacheRequest = CacheBehavior | Cache


def cache_from_request(cache: CacheRequest | None) -> Cache:
    """``"auto"`` / ``"override"`` / ``"disable"`` (or an alias) or a :class:`Cache`.

    Anything else is ``Cache``'s ValueError, as in Flyte.
    """
    if cache is None:
        return Cache(behavior="disable")
    if isinstance(cache, Cache):
        return cache
    return Cache(behavior=cache)


def _canonical(value: object) -> object:
    """The same value with sets and dicts in a stable order, so equal inputs pickle alike.

    A ``File`` or ``Dir`` with a ``hash`` stands for its hash, as in Flyte.
    """
    kind = type(value)
    if kind in (list, tuple):
        return kind(_canonical(v) for v in value)  # type: ignore[attr-defined]
    if kind is dict:
        items = [(_canonical(k), _canonical(v)) for k, v in value.items()]  # type: ignore[attr-defined]
        return ("__dict__", sorted(items, key=repr))
    if kind in (set, frozenset):
        return ("__set__", sorted((_canonical(v) for v in value), key=repr))  # type: ignore[attr-defined]
    return cache_identity(value)


def inputs_digest(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], ignored: tuple[str, ...]
) -> str:
    """A digest of a call's inputs by parameter name (defaults applied, ignored ones left out)."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
        bound.apply_defaults()
        named = dict(bound.arguments)
    except (TypeError, ValueError):
        named = {**{str(i): a for i, a in enumerate(args)}, **kwargs}
    items = sorted((k, _canonical(v)) for k, v in named.items() if k not in ignored)
    try:
        data = pickle.dumps(items, protocol=4)
    except Exception:
        data = pickling.dumps(items, protocol=4)
    return hashlib.sha256(data).hexdigest()


def cache_key(task_name: str, version: str, digest: str) -> str:
    """The key a result is stored under: task, cache version and inputs."""
    return hashlib.sha256(f"{task_name}\0{version}\0{digest}".encode()).hexdigest()


__all__ = [
    "Cache",
    "CacheBehavior",
    "CachePolicy",
    "CacheRequest",
    "FunctionBodyPolicy",
    "VersionParameters",
]
