"""Tracebacks a user can read: their own frames, not reuse-runtime's.

An uncaught exception that passed through reuse-runtime (a task's error raised
by ``Run.outputs()``, say) prints the user's frames and the task's remote
traceback, without the runtime's own frames in between. Set
``REUSE_RUNTIME_LOG_LEVEL=debug`` to see every frame.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import os
import re
import sys
import traceback
from types import ModuleType, TracebackType
from typing import Any

from reuse_runtime.errors import BaseRuntimeError, ReuseRuntimeError
from reuse_runtime.tracebacks import trim

_original = sys.excepthook
#: The module whose ``__all__`` is the public API that :func:`hint` suggests names from;
#: the package passes itself to :func:`install` (this module does not import it).
_api: ModuleType | None = None


def excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    if os.environ.get("REUSE_RUNTIME_LOG_LEVEL", "").lower() == "debug":
        _original(kind, value, tb)
        return
    if getattr(value, "__reuse_runtime_shown__", False):
        return  # a Ctrl-C in Run.wait(), said in one line there
    run = getattr(value, "__reuse_runtime_run__", "")
    if run:
        sys.stderr.write(f"{where(value)}{kind.__name__} from run {run}, shown above\n")
        return
    if isinstance(value, ReuseRuntimeError) and not isinstance(value, BaseRuntimeError):
        # A setting or a situation to fix (a config, a port, a secret): its message
        # says what to do, and the line of the user's code that met it is enough.
        sys.stderr.write(one_line(value) + "\n")
        return
    try:
        te = traceback.TracebackException(kind, value, tb, compact=True)
        trim(te)
        text = "".join(te.format())
        suggestion = hint(value)
        if suggestion:
            text = text.rstrip("\n") + suggestion + "\n"
        sys.stderr.write(text)
    except Exception:
        _original(kind, value, tb)


def install(api: ModuleType) -> None:
    """Install the hook, unless something else replaced Python's own first.

    ``api`` is the package, whose ``__all__`` names the calls :func:`hint` knows.
    """
    global _api
    _api = api
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = excepthook


_UNEXPECTED = re.compile(r"^(?P<func>[\w.]+)\(\) got an unexpected keyword argument '(?P<arg>\w+)'")


def _parameters() -> dict[str, list[str]]:
    """Qualified name -> parameter names, for every callable of the public API."""
    found: dict[str, list[str]] = {}

    def add(fn: Any) -> None:
        fn = getattr(fn, "_fn", fn)  # the blocking functions with .aio
        if callable(fn) and hasattr(fn, "__qualname__"):
            with contextlib.suppress(TypeError, ValueError):
                found[fn.__qualname__] = list(inspect.signature(fn).parameters)

    names: list[str] = list(getattr(_api, "__all__", ()))
    for name in names:
        obj = getattr(_api, name, None)
        if isinstance(obj, type):
            for member in vars(obj).values():
                add(getattr(member, "__func__", member))
        elif obj is not None:
            add(obj)
    return found


def hint(error: BaseException) -> str:
    """For a misspelled keyword argument of reuse-runtime's API: " (did you mean 'x'?)"."""
    if not isinstance(error, TypeError):
        return ""
    match = _UNEXPECTED.match(str(error))
    if match is None:
        return ""
    try:
        known = _parameters().get(match["func"], [])
    except Exception:
        return ""
    close = difflib.get_close_matches(match["arg"], [k for k in known if k != "self"], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def where(error: BaseException) -> str:
    """``file, line N: `` of the innermost frame of the user's code, or ""."""
    te = traceback.TracebackException(type(error), error, error.__traceback__, compact=True)
    trim(te)
    if not te.stack:
        return ""
    frame = te.stack[-1]
    return f"{os.path.basename(frame.filename)}, line {frame.lineno}: "


def one_line(error: BaseException) -> str:
    """``file, line N: Type: message`` at the innermost frame of the user's code."""
    return f"{where(error)}{type(error).__name__}: {error}{hint(error)}"
