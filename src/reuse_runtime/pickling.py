"""Pickling that keeps a script's classes themselves on both sides of a task call.

A script run as ``__main__`` is imported in replicas under its bundle name
(``_reuse_main_<stem>``, see :mod:`reuse_runtime.code`). So that a dataclass or
an exception defined in the script is the *same* class in the driver and in the
task (``isinstance``, ``==`` and ``except MyError`` all work):

* the driver registers its ``__main__`` module under the bundle name too
  (:func:`alias_main`), so results naming ``_reuse_main_x.Point`` unpickle to
  ``__main__.Point``;
* :func:`dumps` pickles the driver's ``__main__`` classes and functions by
  reference, under the bundle name, where plain cloudpickle would copy them by
  value and the replica would get a look-alike class.

Replicas pickle bundle classes by reference as any importable module's.
"""

from __future__ import annotations

import importlib
import io
import sys
import types
from typing import Any

import cloudpickle

_main_alias: str | None = None


def alias_main(module_name: str) -> None:
    """Make ``module_name`` another name of this process's ``__main__`` module."""
    global _main_alias
    main = sys.modules.get("__main__")
    if main is None:
        return
    sys.modules.setdefault(module_name, main)
    if sys.modules[module_name] is main:
        _main_alias = module_name


def import_attr(module: str, qualname: str) -> Any:
    """``module.qualname``, importing the module: how :func:`dumps` names script objects."""
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def _by_reference(obj: object) -> tuple[Any, ...] | None:
    alias = _main_alias
    if alias is None or getattr(obj, "__module__", None) != "__main__":
        return None
    qualname = getattr(obj, "__qualname__", "")
    if not qualname or "<" in qualname:  # <locals>, <lambda>: not reachable by name
        return None
    try:
        found = import_attr("__main__", qualname)
    except (AttributeError, ImportError):
        return None
    return (import_attr, (alias, qualname)) if found is obj else None


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, (type, types.FunctionType)):
            reduced = _by_reference(obj)
            if reduced is not None:
                return reduced
        return super().reducer_override(obj)


def dumps(obj: object, protocol: int | None = None) -> bytes:
    """``cloudpickle.dumps``, naming the script's own classes and functions by reference."""
    if _main_alias is None:
        return bytes(cloudpickle.dumps(obj, protocol=protocol))
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=protocol or cloudpickle.DEFAULT_PROTOCOL).dump(obj)
    return buffer.getvalue()
