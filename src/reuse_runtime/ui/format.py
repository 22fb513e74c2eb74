"""How the UI writes times, durations, sizes and ids (Jinja filters and globals).

Every filter returns plain text: Jinja escapes it like any other value.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any
from urllib.parse import quote, urlencode

import jinja2


def duration(seconds: float | None) -> str:
    """``850 ms``, ``12.3 s``, ``4m 05s``, ``2h 03m``; "" for None."""
    if seconds is None:
        return ""
    if seconds < 0:
        seconds = 0.0
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def clock_time(at: float | None) -> str:
    """The local time of ``at`` (epoch seconds): ``14:03:07``, with the date when not today."""
    if not at:
        return ""
    then = time.localtime(at)
    today = time.localtime()
    if then[:3] == today[:3]:
        return time.strftime("%H:%M:%S", then)
    return time.strftime("%Y-%m-%d %H:%M:%S", then)


def iso_time(at: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(at)) if at else ""


def size(n: int | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def path_part(text: str) -> str:
    """``text`` as one segment of a URL path."""
    return quote(text, safe="")


def dom_id(*parts: object) -> str:
    """A stable HTML id for ``parts`` (names and ids may hold any character)."""
    digest = hashlib.blake2b("\x00".join(map(str, parts)).encode(), digest_size=8)
    return "n" + digest.hexdigest()


def query(**values: Any) -> str:
    """``a=1&b=2`` of the values that are set (lists repeat their key)."""
    pairs: list[tuple[str, str]] = []
    for key, value in values.items():
        if value is None or value == "" or value == ():
            continue
        if isinstance(value, (list, tuple)):
            pairs.extend((key, str(v)) for v in value if v)
        else:
            pairs.append((key, str(value)))
    return urlencode(pairs)


def install(env: jinja2.Environment) -> None:
    env.filters.update(duration=duration, clock=clock_time, iso=iso_time, size=size, path=path_part)
    env.globals.update(dom_id=dom_id, query=query)
