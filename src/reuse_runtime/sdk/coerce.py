"""A task's inputs built by its type hints: a dict where a model or dataclass is expected.

Flyte's type engine turns ``flyte.run(task, point={"x": 1})`` into ``Point(x=1)``
when ``task`` declares ``point: Point`` (a pydantic model or a dataclass), also
inside ``list[Point]``, ``dict[str, Point]`` and ``Point | None``; omitted
fields take their defaults. Here the caller does the same before the call is
sent.

Which parameters need it is worked out once per task (:func:`plan`), so a task
with no such parameter pays one check per call (``is not None``) and nothing else.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from reuse_runtime.errors import InputError
from reuse_runtime.sdk.inputs import from_json

#: Builds one value; raises ValueError or TypeError when it does not fit.
Convert = Callable[[Any], Any]


@dataclasses.dataclass(frozen=True)
class Plan:
    """The parameters of a task that take a built value: by position, and by name."""

    task: str
    positional: tuple[tuple[int, str, Convert], ...]
    named: dict[str, Convert]

    def apply(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``args`` and ``kwargs`` with each planned value built; one line naming a misfit."""
        if self.positional and args:
            built = list(args)
            for index, name, convert in self.positional:
                if index < len(built):
                    built[index] = self._convert(name, convert, built[index])
            args = tuple(built)
        if kwargs:
            kwargs = {
                name: self._convert(name, self.named[name], value) if name in self.named else value
                for name, value in kwargs.items()
            }
        return args, kwargs

    def _convert(self, name: str, convert: Convert, value: Any) -> Any:
        try:
            return convert(value)
        except (ValueError, TypeError) as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"task {self.task}: input {name!r} does not fit: {problem}") from None


#: The plan of a task whose hints name a class not defined yet: planned again at its first call.
LATER = Plan("", (), {})


def plan(task: str, fn: Callable[..., Any], *, final: bool = True) -> Plan | None:
    """Which of ``fn``'s parameters take a built value, and how each is built; None for none.

    Hints naming a class not defined yet give :data:`LATER` unless ``final`` (at a
    task's decoration, its module may define the class further down); other hints
    that do not resolve give None: the values are passed as they are.
    """
    try:
        hints = typing.get_type_hints(fn)
        parameters = list(inspect.signature(fn).parameters.values())
    except NameError:
        return None if final else LATER
    except (AttributeError, SyntaxError, TypeError, ValueError):  # hints no one can resolve
        return None
    positional: list[tuple[int, str, Convert]] = []
    named: dict[str, Convert] = {}
    for index, parameter in enumerate(parameters):
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        convert = converter(hints.get(parameter.name, Any))
        if convert is None:
            continue
        if parameter.kind is not parameter.KEYWORD_ONLY:
            positional.append((index, parameter.name, convert))
        if parameter.kind is not parameter.POSITIONAL_ONLY:
            named[parameter.name] = convert
    if not positional and not named:
        return None
    return Plan(task, tuple(positional), named)


def _is_built(annotation: Any) -> bool:
    """A class Flyte builds from a dict: a dataclass or a pydantic (v2) model."""
    return isinstance(annotation, type) and (
        dataclasses.is_dataclass(annotation)
        or callable(getattr(annotation, "model_validate", None))
    )


def converter(annotation: Any) -> Convert | None:
    """How to build a value of ``annotation``; None when there is nothing to build."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return converter(args[0])
    if _is_built(annotation):
        cls = annotation

        def build(value: Any) -> Any:
            if isinstance(value, dict):
                return from_json(value, cls)
            return value  # built already (or left for the task to refuse, as Flyte would)

        return build
    if origin is typing.Union or origin is types.UnionType:
        options = [(a, converter(a)) for a in args if a is not type(None)]
        wanted = [(a, c) for a, c in options if c is not None]
        if not wanted:
            return None

        def either(value: Any) -> Any:
            if value is None:
                return None
            for option, _ in options:
                if isinstance(option, type) and isinstance(value, option):
                    return value
            errors: list[str] = []
            for _, convert in wanted:
                try:
                    return convert(value)
                except (ValueError, TypeError) as exc:
                    errors.append(str(exc))
            raise ValueError(errors[0])

        return either
    if origin in (list, set, frozenset, tuple) and args and args[-1:] != ((),):
        homogeneous = origin is not tuple or args[-1] is Ellipsis
        items = [converter(a) for a in (args[:1] if homogeneous else args)]
        if all(c is None for c in items):
            return None
        kind = origin

        def each(value: Any) -> Any:
            if not isinstance(value, (list, tuple, set, frozenset)):
                return value
            if not homogeneous and len(value) != len(items):
                return value  # for the task to refuse
            if homogeneous:
                convert = items[0]
                assert convert is not None
                built = [convert(v) for v in value]
            else:
                built = [c(v) if c is not None else v for c, v in zip(items, value, strict=True)]
            return built if kind is list else kind(built)

        return each
    if origin is dict and len(args) == 2:
        values = converter(args[1])
        if values is None:
            return None

        def each_value(value: Any) -> Any:
            if not isinstance(value, dict):
                return value
            return {k: values(v) for k, v in value.items()}

        return each_value
    return None


__all__ = ["LATER", "Plan", "converter", "plan"]
