"""Numbers from environment variables: a default when unset, one clear error when wrong."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TypeVar

from reuse_runtime.errors import PolicyError

N = TypeVar("N", int, float)


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


def env_size(name: str, default: int, *, least: int, needs: str) -> int:
    """``$name`` as a byte count: bytes, or a size like ``64Mi`` (see
    :func:`~reuse_runtime.policy.parse_bytes`), at least ``least``; ``default`` when
    unset. Otherwise as :func:`env_number`."""
    from reuse_runtime.policy import parse_bytes  # policy reads its settings from here

    return env_number(
        name,
        default,
        lambda raw: parse_bytes(raw.strip(), field_name=name),
        valid=lambda size: size >= least,
        needs=needs,
    )
