"""Numbers and byte sizes, parsed: from settings, and from environment variables (a
default when unset, one clear error when wrong)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import TypeVar

from reuse_runtime.errors import PolicyError

N = TypeVar("N", int, float)

_UNITS = {
    "": 1,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "t": 10**12,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*$", re.IGNORECASE)


def parse_bytes(value: int | str, *, field_name: str = "size") -> int:
    """Parse a byte count: an int, or a string such as ``"400Mi"``, ``"2Gi"``, ``"1G"``.

    >>> parse_bytes("2Gi")
    2147483648
    """
    if isinstance(value, bool):
        raise PolicyError(f"{field_name} must be bytes (int) or a string like '2Gi', got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise PolicyError(f"{field_name} must not be negative, got {value}")
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            number, unit = match.groups()
            return int(float(number) * _UNITS[(unit or "").lower()])
    raise PolicyError(
        f"{field_name} must be bytes (int) or a string like '400Mi' or '2Gi', got {value!r}"
    )


def env_number(
    name: str,
    default: N,
    parse: Callable[[str], N],
    *,
    valid: Callable[[N], bool],
    needs: str,
    error: type[Exception] = PolicyError,
) -> N:
    """``$name`` parsed by ``parse`` (``int`` or ``float``), or ``default`` when unset or
    empty. A value that does not parse, or fails ``valid``, raises ``error``:
    "NAME must be NEEDS, got 'RAW'"."""
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or not valid(value):
        raise error(f"{name} must be {needs}, got {raw!r}")
    return value


def env_port(name: str, default: int, *, error: type[Exception] = PolicyError) -> int:
    """``$name`` as a port to bind (0 picks a free one), or ``default`` when unset.
    Otherwise as :func:`env_number`."""
    return env_number(
        name,
        default,
        int,
        valid=lambda port: 0 <= port <= 65535,
        needs="a port number (0 picks one)",
        error=error,
    )


def env_size(name: str, default: int, *, least: int, needs: str) -> int:
    """``$name`` as a byte count: bytes, or a size like ``64Mi`` (see :func:`parse_bytes`),
    at least ``least``; ``default`` when unset. Otherwise as :func:`env_number`."""
    return env_number(
        name,
        default,
        lambda raw: parse_bytes(raw.strip(), field_name=name),
        valid=lambda size: size >= least,
        needs=needs,
    )
