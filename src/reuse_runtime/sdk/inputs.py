"""A task's inputs from the command line: ``name=value`` or ``--name value``.

``reuse-runtime run FILE TASK n=10 --point '{"x": 1}'`` converts each value by
the task's annotations, in the forms ``flyte run`` takes:

- ``str`` takes the text as it is; ``int`` and ``float`` parse it; ``bool``
  takes ``true``/``false`` (also ``t``, ``yes``, ``y``, ``on``, ``1`` and their
  opposites), and ``--flag`` alone is true, ``--no-flag`` false.
- dataclasses, pydantic models, ``NamedTuple``, ``TypedDict``, lists, tuples,
  sets and dicts take JSON (or a Python literal), or the path of a JSON or YAML
  file holding it; nested types are built field by field. A JSON object for a
  parameter whose default is a dataclass or model fills in the fields it omits.
- ``Optional`` takes ``None``/``null``; a ``Union`` tries its types, ``str``
  last; ``Literal`` takes one of its values; an enum takes a member's name.
- ``datetime`` takes ISO 8601, ``now``, ``today``, and ``now - P1D`` forms;
  ``date`` likewise; ``timedelta`` takes ``P1DT2H``, ``1:30``, ``10 minutes``,
  ``1 day | 2 hours``, or seconds.
- ``flyte.io.File`` and ``Dir`` take a local path (copied into the store),
  also inside JSON.

Unannotated parameters take JSON or a Python literal, or the text. An unknown or
missing parameter, or a value that does not fit, is one line naming the
parameter and the type it takes.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime
import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reuse_runtime.errors import InputError
from reuse_runtime.sdk.io import Dir, File

# click's BOOL spellings, which `flyte run` uses.
_TRUE = {"true", "t", "1", "yes", "y", "on"}
_FALSE = {"false", "f", "0", "no", "n", "off"}
_NONE = {"None", "none", "null", ""}
_EMPTY = inspect.Parameter.empty
_SHOWN = 60  # characters of a bad value an error quotes


def _type_name(annotation: Any) -> str:
    if annotation in (_EMPTY, Any):
        return "Any"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    # list[tests.app.Point] | None -> list[Point] | None
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])", "", str(annotation))


def _a(name: str) -> str:
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=repr)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


# ---------------------------------------------------------------- what a type is


def _is_union(origin: Any) -> bool:
    return origin is typing.Union or origin is types.UnionType


def _is_model(annotation: Any) -> bool:
    """A pydantic (v2) model class, recognised without importing pydantic."""
    return isinstance(annotation, type) and callable(getattr(annotation, "model_validate", None))


def _is_named_tuple(annotation: Any) -> bool:
    return (
        isinstance(annotation, type)
        and issubclass(annotation, tuple)
        and hasattr(annotation, "_fields")
    )


def _is_typed_dict(annotation: Any) -> bool:
    return typing.is_typeddict(annotation)


def _hints(cls: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an unresolvable forward reference: use what is there
        return {
            k: v for k, v in getattr(cls, "__annotations__", {}).items() if not isinstance(v, str)
        }


def _by_precedence(options: Sequence[Any]) -> list[Any]:
    """A union's types in the order ``flyte run`` tries them: ``str`` last."""
    return [o for o in options if o is not str] + [o for o in options if o is str]


# ---------------------------------------------------------------- text -> value


def _duration(text: str) -> datetime.timedelta:
    """``P1DT2H3M4S``, ``1:24``, ``:45``, ``10 days``, ``1 hour | 30 minutes``, or seconds."""
    iso = re.fullmatch(
        r"P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
        r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?",
        text.strip(),
    )
    if iso and text.strip() != "P":
        return datetime.timedelta(**{k: float(v) for k, v in iso.groupdict().items() if v})
    total = datetime.timedelta()
    for part in text.strip().strip("[]").split("|"):
        part = part.strip().lower()
        clock = re.fullmatch(r"(?:(\d*):)?(\d+(?:\.\d+)?)", part)
        units = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(week|day|hour|minute|second)s?", part)
        if clock:
            total += datetime.timedelta(minutes=int(clock[1] or 0), seconds=float(clock[2]))
        elif units:
            total += datetime.timedelta(**{units[2] + "s": float(units[1])})
        else:
            raise ValueError("not a duration (P1DT2H, 1:30, 10 minutes, or seconds)")
    return total


def _datetime(text: str) -> datetime.datetime:
    """ISO 8601, ``now``, ``today``, or one of those ``+``/``-`` a duration."""
    shifted = re.fullmatch(r"(.+?)\s+([-+])\s+(.+)", text.strip())
    if shifted:
        base, delta = _datetime(shifted[1]), _duration(shifted[3])
        return base - delta if shifted[2] == "-" else base + delta
    if text == "now":
        return datetime.datetime.now()
    if text == "today":
        return datetime.datetime.combine(datetime.date.today(), datetime.time())
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not a datetime (ISO 8601, now, today, or now - P1D)") from None


def _local_file(text: str) -> Any:
    if "://" in text:
        return File.from_existing_remote(text)
    if not Path(text).is_file():
        raise ValueError("not a file (a File takes the path of a local file)")
    return File.from_local_sync(text)


def _local_dir(text: str) -> Any:
    if "://" in text:
        return Dir.from_existing_remote(text)
    if not Path(text).is_dir():
        raise ValueError("not a directory (a Dir takes the path of a local directory)")
    return Dir.from_local_sync(text)


def _json_text(text: str) -> Any:
    """JSON (as ``flyte run`` reads it), else a Python literal, else a JSON or YAML file."""
    try:
        return json.loads(text)
    except ValueError as exc:
        problem = exc
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    path = Path(text)
    if len(text) < 4096 and path.is_file():
        if path.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ValueError("a YAML file, and reading one needs PyYAML installed") from None
            try:
                return yaml.safe_load(path.read_text())
            except yaml.YAMLError as exc:
                raise ValueError(f"not valid YAML ({_one_line(exc)})") from None
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(f"a file that is not valid JSON ({exc})") from None
    raise ValueError(f"not valid JSON ({problem})")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def convert_value(text: str, annotation: Any, default: Any = _EMPTY) -> Any:
    """``text`` from the command line as a value of ``annotation``; ValueError when it is not.

    ``default`` is the parameter's default: a JSON object for a dataclass or
    model fills in the fields it leaves out from it, as ``flyte run`` does.
    """
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return convert_value(text, typing.get_args(annotation)[0], default)
    if annotation in (_EMPTY, Any, object):
        try:
            return _json_text(text)
        except ValueError:
            return text
    if _is_union(origin):
        args = typing.get_args(annotation)
        options = [a for a in args if a is not type(None)]
        if len(options) < len(args) and text in _NONE:
            return None
        if len(options) == 1:
            return convert_value(text, options[0], default)
        for option in _by_precedence(options):
            try:
                return convert_value(text, option)
            except (ValueError, TypeError, OSError):
                continue
        raise ValueError(f"not {' or '.join(_a(_type_name(o)) for o in options)}")
    if origin is typing.Literal:
        for choice in typing.get_args(annotation):
            if str(choice) == text:
                return choice
        raise ValueError(f"not one of {', '.join(map(str, typing.get_args(annotation)))}")
    scalar = _SCALARS.get(annotation)
    if scalar is not None:
        return scalar(text)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        for member in annotation:
            if text in (member.name, str(member.value)):
                return member
        raise ValueError(f"not one of {', '.join(m.name for m in annotation)}")
    if annotation is File or origin is File:
        return _local_file(text)
    if annotation is Dir or origin is Dir:
        return _local_dir(text)
    if not _is_structured(annotation):
        try:  # a type with no JSON form: its value as a literal, else the text
            return _json_text(text)
        except ValueError:
            return text
    value = _json_text(text)
    if isinstance(value, dict) and default is not _EMPTY and default is not None:
        value = {**_fields_of(default), **value}
    try:
        return from_json(value, annotation)
    except _Misfit:
        raise
    except (ValueError, TypeError, OSError) as exc:
        raise _Misfit("", _one_line(exc)) from None


def _bool(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError("not a bool (true or false)")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("not an int") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("not a float") from None


def _date(text: str) -> datetime.date:
    return _datetime(text).date()


_SCALARS: dict[Any, Callable[[str], Any]] = {
    str: str,
    bool: _bool,
    int: _int,
    float: _float,
    datetime.datetime: _datetime,
    datetime.date: _date,
    datetime.timedelta: _duration,
}


def _is_structured(annotation: Any) -> bool:
    """Whether a value of ``annotation`` is written as JSON."""
    container = typing.get_origin(annotation) or annotation
    return (
        container in (list, tuple, set, frozenset, dict)
        or (isinstance(annotation, type) and dataclasses.is_dataclass(annotation))
        or _is_model(annotation)
        or _is_named_tuple(annotation)
        or _is_typed_dict(annotation)
    )


def _fields_of(default: Any) -> dict[str, Any]:
    """A dataclass's or model's fields, for filling in a partial JSON object."""
    if dataclasses.is_dataclass(default) and not isinstance(default, type):
        return {f.name: getattr(default, f.name) for f in dataclasses.fields(default)}
    if callable(getattr(default, "model_dump", None)):
        return dict(default.model_dump())
    return {}


# ---------------------------------------------------------------- JSON -> value


def from_json(value: Any, annotation: Any) -> Any:
    """A value parsed from JSON, built into ``annotation``; ValueError when it does not fit.

    Strings convert as command-line text does, so a ``datetime``, a ``File``
    path or an enum's name work inside a JSON document too.
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return from_json(value, args[0])
    if annotation in (_EMPTY, Any, object):
        return value
    if _is_union(origin):
        options = [a for a in args if a is not type(None)]
        if value is None and len(options) < len(args):
            return None
        if len(options) == 1:
            return from_json(value, options[0])
        for option in _by_precedence(options):
            try:
                return from_json(value, option)
            except (ValueError, TypeError, OSError):
                continue
        raise ValueError(
            f"{_shown(value)} is not {' or '.join(_a(_type_name(o)) for o in options)}"
        )
    if (
        isinstance(annotation, type)
        and not args
        and not _is_typed_dict(annotation)  # which isinstance() refuses
        and isinstance(value, annotation)
        and not (isinstance(value, bool) and annotation is not bool)
    ):
        return value  # already built (a default's field)
    if isinstance(value, str) and not _is_structured(annotation):
        try:
            return convert_value(value, annotation)
        except ValueError as exc:
            raise ValueError(f"{_shown(value)} is {exc}") from None
    if origin is typing.Literal:
        if value in args:
            return value
        raise ValueError(f"{_shown(value)} is not one of {', '.join(map(str, args))}")
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        try:
            return annotation(value)
        except ValueError:
            raise ValueError(
                f"{_shown(value)} is not one of {', '.join(m.name for m in annotation)}"
            ) from None
    if annotation is bool:
        return _exactly(value, bool, "a bool")
    if annotation is int:
        return _exactly(value, int, "an int")
    if annotation is float:
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return _exactly(value, float, "a float")
    if annotation is str:
        return _exactly(value, str, "a str")
    if annotation is datetime.timedelta and isinstance(value, (int, float)):
        return datetime.timedelta(seconds=value)
    if annotation in (File, Dir) or origin in (File, Dir):
        return _stored_from_json(value, origin or annotation)
    container = origin or annotation
    if container in (list, set, frozenset) or (container is tuple and args[-1:] in ((), (...,))):
        items = _exactly(
            value, (list, tuple, set, frozenset), f"a JSON array for {container.__name__}"
        )
        item = args[0] if args else Any
        built = [_at(f"[{i}]", v, item) for i, v in enumerate(items)]
        return built if container is list else container(built)
    if container is tuple:
        return _tuple_from_json(value, args)
    if container is dict:
        mapping = _exactly(value, dict, "a JSON object")
        key, item = args if len(args) == 2 else (Any, Any)
        return {
            _key(k, key): _at(f"[{json.dumps(k, default=repr)}]", v, item)
            for k, v in mapping.items()
        }
    if _is_model(annotation):
        return _model_from_json(value, annotation)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return _dataclass_from_json(value, annotation)
    if _is_named_tuple(annotation):
        return _named_tuple_from_json(value, annotation)
    if _is_typed_dict(annotation):
        return _typed_dict_from_json(value, annotation)
    return value  # a type with no JSON form: as parsed


def _exactly(value: Any, kind: Any, name: str) -> Any:
    if isinstance(value, kind) and not (isinstance(value, bool) and kind in (int, float)):
        return value
    raise ValueError(f"{_shown(value)} is not {name}")


class _Misfit(ValueError):
    """A part of a JSON value that does not fit its type; ``path`` says which part."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path.lstrip('.')}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


def _at(where: str, value: Any, annotation: Any) -> Any:
    """``from_json`` for a part of a value; its errors say where the part is."""
    try:
        return from_json(value, annotation)
    except _Misfit as exc:
        raise _Misfit(where + exc.path, exc.problem) from None
    except (ValueError, TypeError, OSError) as exc:
        raise _Misfit(where, _one_line(exc)) from None


def _key(key: Any, annotation: Any) -> Any:
    if annotation in (_EMPTY, Any, object, str) or not isinstance(key, str):
        return key
    try:
        return convert_value(key, annotation)  # JSON keys are strings: {"1": ...} for int keys
    except ValueError as exc:
        raise ValueError(f"key {key!r} is {exc}") from None


def _stored_from_json(value: Any, kind: Any) -> Any:
    """A path (copied into the store), or ``{"path": ...}``/``{"uri": ...}`` (used where it is)."""
    if isinstance(value, str):
        return _local_file(value) if kind is File else _local_dir(value)
    if isinstance(value, dict) and isinstance(value.get("path") or value.get("uri"), str):
        known = {f.name for f in dataclasses.fields(kind)}
        fields = {k: v for k, v in value.items() if k in known}
        fields["path"] = value.get("path") or value.get("uri")
        return kind(**fields)
    raise ValueError(f"{_shown(value)} is not a path of {_a(kind.__name__)}")


def _tuple_from_json(value: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    if isinstance(value, dict):  # flyte's form for a tuple: {"item_0": ..., "item_1": ...}
        value = [value.get(f"item_{i}", _EMPTY) for i in range(len(args))]
        missing = [f"item_{i}" for i, v in enumerate(value) if v is _EMPTY]
        if missing:
            raise ValueError(f"the tuple has no {', '.join(missing)}")
    items = _exactly(value, (list, tuple), "a JSON array")
    if len(items) != len(args):
        raise ValueError(f"{_shown(value)} has {len(items)} items, not {len(args)}")
    return tuple(_at(f"[{i}]", v, t) for i, (v, t) in enumerate(zip(items, args, strict=True)))


def _build(cls: Any, value: Any, hints: dict[str, Any], required: set[str]) -> dict[str, Any]:
    """The fields of a ``cls`` from a JSON object, each built by its type."""
    fields = _exactly(value, dict, f"a JSON object for {cls.__name__}")
    unknown = [k for k in fields if k not in hints]
    if unknown:
        raise ValueError(
            f"{cls.__name__} has no field {', '.join(map(repr, unknown))}; its fields: "
            f"{', '.join(hints) or 'none'}"
        )
    missing = [k for k in hints if k in required and k not in fields]
    if missing:
        raise ValueError(f"{cls.__name__} needs {', '.join(missing)}")
    return {k: _at(f".{k}", v, hints[k]) for k, v in fields.items()}


def _made(cls: Any, make: Callable[[], Any]) -> Any:
    try:
        return make()
    except (TypeError, ValueError) as exc:  # the class's own checks (__post_init__)
        raise ValueError(
            f"{cls.__name__}(...) raised {type(exc).__name__}: {_one_line(exc)}"
        ) from None


def _dataclass_from_json(value: Any, cls: Any) -> Any:
    fields = [f for f in dataclasses.fields(cls) if f.init]
    hints = _hints(cls)
    types_ = {f.name: hints.get(f.name, Any) for f in fields}
    required = {
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    built = _build(cls, value, types_, required)
    return _made(cls, lambda: cls(**built))


def _named_tuple_from_json(value: Any, cls: Any) -> Any:
    hints = _hints(cls)
    types_ = {name: hints.get(name, Any) for name in cls._fields}
    if isinstance(value, (list, tuple)):
        if len(value) > len(types_):
            raise ValueError(f"{_shown(value)} has more items than {cls.__name__}'s fields")
        value = dict(zip(types_, value, strict=False))  # the rest take their defaults
    required = {name for name in types_ if name not in cls._field_defaults}
    built = _build(cls, value, types_, required)
    return _made(cls, lambda: cls(**built))


def _typed_dict_from_json(value: Any, cls: Any) -> Any:
    hints = _hints(cls)
    required = set(getattr(cls, "__required_keys__", hints))
    return _build(cls, value, hints, required)


def _model_from_json(value: Any, cls: Any) -> Any:
    """A pydantic model validates (and builds its nested fields) itself."""
    try:
        return cls.model_validate(value)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        errors: list[dict[str, Any]] = (
            exc.errors() if callable(getattr(exc, "errors", None)) else []  # type: ignore[attr-defined]
        )
        if not errors:
            raise ValueError(f"{cls.__name__} rejects it: {_one_line(exc)}") from None
        first = errors[0]
        path = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in first.get("loc", ())
        )
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        got = f"{_shown(first['input'])}: " if "input" in first and path else ""
        raise _Misfit(path, f"{got}{first.get('msg', 'invalid')}{more}") from None


# ---------------------------------------------------------------- the command line


def _is_option_value(text: str) -> bool:
    """Whether ``text`` after ``--name`` is its value, not the next argument."""
    return not text.startswith("--") and re.match(r"[A-Za-z_]\w*=", text) is None


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
                if following is not None and _is_option_value(following):
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
    annotation is an error naming the parameter and the type it takes.
    """
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

    def annotation_of(name: str) -> Any:
        parameter = signature.parameters.get(name)
        return hints.get(name, parameter.annotation if parameter else Any)

    kwargs: dict[str, Any] = {}
    for key, text in _split_params(params):
        if (
            text is None
            and key not in signature.parameters
            and key.startswith("no_")
            and annotation_of(key[3:]) is bool
            and key[3:] in signature.parameters
        ):
            key, text = key[3:], "false"  # --no-flag
        parameter = signature.parameters.get(key)
        if parameter is None and not accepts_any:
            raise InputError(
                f"task {task.short_name} has no parameter {key!r}; its parameters: "
                f"{', '.join(named) or 'none'}"
            )
        annotation = annotation_of(key)
        if text is None:
            if annotation is not bool:
                raise InputError(f"parameter {key} of task {task.short_name} needs a value")
            text = "true"
        try:
            kwargs[key] = convert_value(
                text, annotation, parameter.default if parameter else _EMPTY
            )
        except _Misfit as exc:
            where = f"{key}{exc.path}: " if exc.path else ""
            raise InputError(
                f"parameter {key} of task {task.short_name} takes {_type_name(annotation)}; "
                f"{where}{exc.problem}"
            ) from None
        except (ValueError, TypeError, OSError) as exc:
            raise InputError(
                f"parameter {key} of task {task.short_name} takes {_type_name(annotation)}; "
                f"{_shown(text)} is {_one_line(exc)}"
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
