"""Tracebacks a user can read: their own frames, not reuse-runtime's.

An uncaught exception that passed through reuse-runtime (a task's error raised
by ``Run.outputs()``, say) prints the user's frames and the task's remote
traceback, without the runtime's own frames in between. Set
``REUSE_RUNTIME_LOG_LEVEL=debug`` to see every frame.
"""

from __future__ import annotations

import os
import sys
import traceback
from types import TracebackType

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_original = sys.excepthook


def _trim(te: traceback.TracebackException, seen: set[int]) -> None:
    if id(te) in seen:
        return
    seen.add(id(te))
    frames = [f for f in te.stack if not f.filename.startswith(_PACKAGE)]
    te.stack = traceback.StackSummary.from_list(frames)
    for chained in (te.__cause__, te.__context__):
        if chained is not None:
            _trim(chained, seen)


def excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    if os.environ.get("REUSE_RUNTIME_LOG_LEVEL", "").lower() == "debug":
        _original(kind, value, tb)
        return
    try:
        te = traceback.TracebackException(kind, value, tb, compact=True)
        _trim(te, set())
        sys.stderr.write("".join(te.format()))
    except Exception:
        _original(kind, value, tb)


def install() -> None:
    """Install the hook, unless something else replaced Python's own first."""
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = excepthook
