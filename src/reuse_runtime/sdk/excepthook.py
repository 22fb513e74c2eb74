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

from reuse_runtime.tracebacks import trim

_original = sys.excepthook


def excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    if os.environ.get("REUSE_RUNTIME_LOG_LEVEL", "").lower() == "debug":
        _original(kind, value, tb)
        return
    try:
        te = traceback.TracebackException(kind, value, tb, compact=True)
        trim(te)
        sys.stderr.write("".join(te.format()))
    except Exception:
        _original(kind, value, tb)


def install() -> None:
    """Install the hook, unless something else replaced Python's own first."""
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = excepthook
