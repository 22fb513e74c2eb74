"""Options that only mean something on Flyte's backend: accepted, and said so once.

Flyte code passes options this runtime has no local meaning for (a scheduling
``queue``, ``interruptible`` nodes, UI ``links``, ...). They are accepted, so the
code runs unchanged, but never silently: the first use of each prints one line
naming the option, as a :class:`ReuseRuntimeWarning` (filter it with the
``warnings`` module like any other).
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, TextIO

_seen: set[str] = set()


class ReuseRuntimeWarning(UserWarning):
    """An option was accepted that has no effect on this runtime."""


def note_ignored(option: str, why: str, *, stacklevel: int = 3) -> None:
    """Warn once per process that ``option`` has no effect here, and why."""
    if option in _seen:
        return
    _seen.add(option)
    warnings.warn(
        f"{option} has no effect on reuse-runtime: {why}",
        ReuseRuntimeWarning,
        stacklevel=stacklevel,
    )


_format = warnings.formatwarning


def _one_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    # Ours are one readable line, not a file:line header plus a source line.
    if issubclass(category, ReuseRuntimeWarning):
        return f"reuse-runtime: warning: {message}\n"
    return _format(message, category, filename, lineno, line)


def install_format() -> None:
    """Print :class:`ReuseRuntimeWarning` as one line; other warnings are untouched."""
    if warnings.formatwarning is not _one_line:
        warnings.formatwarning = _one_line


def reset_for_tests(stream: TextIO | None = None) -> Any:
    """Forget which options were warned about (tests)."""
    _seen.clear()
    return stream or sys.stderr
