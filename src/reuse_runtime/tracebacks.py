"""Tracebacks that show the user's frames, not reuse-runtime's.

A task's error travels with its traceback text, and a driver's uncaught error
is printed by :mod:`reuse_runtime.sdk.excepthook`. Both leave out the frames of
reuse-runtime itself (and of asyncio and threads), in every chained exception,
so what is left is the user's code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import traceback

from reuse_runtime.errors import RemoteTraceback
from reuse_runtime.pickling import BUNDLE_PREFIX

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
#: Frames from these places are the runtime's, not the user's.
HIDDEN = (
    _PACKAGE_DIR,
    os.path.dirname(asyncio.__file__) + os.sep,
    os.path.dirname(threading.__file__) + os.sep + "concurrent",
    dataclasses.__file__,  # dataclasses.replace(), say, on its way to a class's checks
)


class _InTheReplica(Exception):
    """How a task's remote traceback is introduced where it is printed as a cause."""


_InTheReplica.__module__ = "builtins"
_InTheReplica.__qualname__ = "In the replica"


def _as_replica_traceback(te: traceback.TracebackException) -> None:
    """Show a :class:`RemoteTraceback` as "In the replica:" and the replica's traceback."""
    attrs = vars(te)
    kind = attrs.get("exc_type", attrs.get("_exc_type"))
    if kind is not RemoteTraceback:
        return
    for name in ("exc_type", "_exc_type"):
        if name in attrs:
            setattr(te, name, _InTheReplica)
    if "exc_type_str" in attrs:  # Python 3.13
        setattr(te, "exc_type_str", "In the replica")  # noqa: B010
    setattr(te, "_str", "\n" + str(attrs.get("_str", "")))  # noqa: B010


def _as_the_scripts_class(te: traceback.TracebackException) -> None:
    """Name a class of the user's script as Python names a ``__main__`` class: no module.

    In a replica the script is the module ``_reuse_main_<stem>``, a name the user
    never wrote.
    """
    attrs = vars(te)
    kind = attrs.get("exc_type", attrs.get("_exc_type"))
    module = getattr(kind, "__module__", "")
    if not isinstance(kind, type) or not str(module).startswith(BUNDLE_PREFIX):
        return
    if "exc_type_str" in attrs:  # Python 3.13
        setattr(te, "exc_type_str", kind.__qualname__)  # noqa: B010
    elif not issubclass(kind, SyntaxError):
        shown = type(kind.__name__, (Exception,), {"__module__": "__main__"})
        shown.__qualname__ = kind.__qualname__
        for name in ("exc_type", "_exc_type"):
            if name in attrs:
                setattr(te, name, shown)


def trim(te: traceback.TracebackException, hidden: tuple[str, ...] = HIDDEN) -> None:
    """Drop hidden frames from ``te`` and every exception chained to it."""
    seen: set[int] = set()
    pending = [te]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        frames = [f for f in current.stack if not f.filename.startswith(hidden)]
        current.stack = traceback.StackSummary.from_list(frames)
        _as_replica_traceback(current)
        _as_the_scripts_class(current)
        pending.extend(c for c in (current.__cause__, current.__context__) if c is not None)
        pending.extend(getattr(current, "exceptions", None) or ())


def format_exception(exc: BaseException) -> str:
    """``exc``'s traceback as text, without the runtime's frames."""
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True)
    trim(te)
    return "".join(te.format())
