"""A task's inputs from the command line: ``name=value`` or ``--name value``.

``reuse-runtime run FILE TASK n=10 --labels '["a", "b"]'`` converts each value
by the task's annotations: ``str`` takes the text as it is, ``int``, ``float``
and ``bool`` parse it, containers take a Python or JSON literal, ``Optional``
takes ``None``, enums take a member's name, ``flyte.io.File`` and ``Dir`` take a
local path (copied into the store). Unannotated parameters take a Python
literal, or the text. An unknown or missing parameter, or a value that does not
fit, is an error naming the parameter.
"""

from __future__ import annotations

import ast
import inspect
import json
from collections.abc import Sequence
from typing import Any

from reuse_runtime.errors import InputError

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        try:
            return json.loads(text)
        except ValueError:
            return text


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def convert_value(text: str, annotation: Any) -> Any:
    """``text`` from the command line as a value of ``annotation``; ValueError when it is not."""
    import datetime
    import enum
    import types
    import typing

    from reuse_runtime.sdk.io import Dir, File

    if annotation in (inspect.Parameter.empty, Any, object):
        return _literal(text)
    origin = typing.get_origin(annotation)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(options) < len(typing.get_args(annotation)) and text in ("None", "null", ""):
            return None
        for option in options:
            try:
                return convert_value(text, option)
            except ValueError:
                continue
        raise ValueError(f"not a {' or '.join(_type_name(o) for o in options)}")
    if origin is typing.Literal:
        for choice in typing.get_args(annotation):
            if str(choice) == text:
                return choice
        raise ValueError(f"not one of {', '.join(map(str, typing.get_args(annotation)))}")
    if annotation is str:
        return text
    if annotation is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError("not a bool (true or false)")
    if annotation in (int, float):
        try:
            return annotation(text)
        except ValueError:
            raise ValueError(f"not {'an int' if annotation is int else 'a float'}") from None
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        for member in annotation:
            if text in (member.name, str(member.value)):
                return member
        raise ValueError(f"not one of {', '.join(m.name for m in annotation)}")
    if annotation is datetime.datetime:
        return datetime.datetime.fromisoformat(text)
    if annotation is datetime.timedelta:
        return datetime.timedelta(seconds=float(text))
    if annotation is File or origin is File:
        return File.from_local_sync(text)
    if annotation is Dir or origin is Dir:
        return Dir.from_local_sync(text)
    container = origin or annotation
    if container in (list, tuple, set, frozenset, dict):
        value = _literal(text)
        if container in (tuple, set, frozenset) and isinstance(value, (list, tuple, set)):
            value = container(value)
        if not isinstance(value, container):
            raise ValueError(f"not a {container.__name__} (write it as a Python or JSON literal)")
        return value
    return _literal(text)


def _split_params(params: Sequence[str]) -> list[tuple[str, str | None]]:
    """``k=v``, ``--k v``, ``--k=v`` and ``--flag`` as (name, text) pairs."""
    pairs: list[tuple[str, str | None]] = []
    items = list(params)
    i = 0
    while i < len(items):
        item = items[i]
        if item.startswith("--"):
            key, sep, value = item[2:].partition("=")
            key = key.replace("-", "_")
            if not sep:
                following = items[i + 1] if i + 1 < len(items) else None
                if (
                    following is not None
                    and not following.startswith("--")
                    and "=" not in following
                ):
                    pairs.append((key, following))
                    i += 2
                    continue
                pairs.append((key, None))
            else:
                pairs.append((key, value))
        else:
            key, sep, value = item.partition("=")
            if not sep:
                raise InputError(f"arguments look like name=value, got {item!r}")
            pairs.append((key, value))
        if not pairs[-1][0].isidentifier():
            raise InputError(f"{pairs[-1][0]!r} is not a parameter name")
        i += 1
    return pairs


def task_inputs(task: Any, params: Sequence[str]) -> dict[str, Any]:
    """The command line's arguments for ``task``, converted by its annotations.

    An unknown parameter, a missing one, or a value that does not fit its
    annotation is an error naming the parameter.
    """
    import typing

    fn = task.func
    signature = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    named = [
        n
        for n, p in signature.parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    kwargs: dict[str, Any] = {}
    for key, text in _split_params(params):
        parameter = signature.parameters.get(key)
        if parameter is None and not accepts_any:
            raise InputError(
                f"task {task.short_name} has no parameter {key!r}; its parameters: "
                f"{', '.join(named) or 'none'}"
            )
        annotation = hints.get(key, parameter.annotation if parameter else Any)
        if text is None:
            if annotation is not bool:
                raise InputError(f"parameter {key} of task {task.short_name} needs a value")
            text = "true"
        try:
            kwargs[key] = convert_value(text, annotation)
        except (ValueError, TypeError, OSError) as exc:
            raise InputError(
                f"parameter {key} of task {task.short_name} takes {_type_name(annotation)}; "
                f"{text!r} is {exc}"
            ) from None
    missing = [
        n
        for n in named
        if n not in kwargs and signature.parameters[n].default is inspect.Parameter.empty
    ]
    if missing:
        raise InputError(
            f"task {task.short_name} needs "
            + ", ".join(f"{n}=<{_type_name(hints.get(n, Any))}>" for n in missing)
        )
    return kwargs
