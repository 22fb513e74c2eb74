"""Where tasks go: :class:`RuntimeConfig`, and the config file it can be read from.

The config file holds ``[controller]`` settings in TOML, read strictly::

    [controller]
    endpoint = "10.0.0.5:50050"   # a standalone controller (or "dns:///10.0.0.5:50050")
    token = "..."                 # or $REUSE_RUNTIME_TOKEN
    max_backlog = 100000          # tasks that may wait per environment
    backend = "container"         # the embedded controller's replicas: local (default) or container
    replica_loss_budget = 2

A misspelled section or setting is an error naming the file and the line, never
a silent default, and so is an endpoint that is not an address
(:func:`~reuse_runtime.address.parse_address`). A Flyte config (``config.yaml``)
is not read: it is accepted with a warning, and tasks run where reuse-runtime's
own settings say.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reuse_runtime.address import parse_address
from reuse_runtime.errors import ConfigError

#: Section -> setting -> the types it takes.
KNOWN: dict[str, dict[str, tuple[type, ...]]] = {
    "controller": {
        "endpoint": (str,),
        "token": (str,),
        "max_backlog": (int,),
        "replica_loss_budget": (int,),
        "metrics_port": (int,),
        "backend": (str,),
        "container_network": (str,),
    },
}


@dataclass(frozen=True)
class RuntimeConfig:
    """Where tasks go. ``endpoint=None`` means an embedded controller in this process."""

    endpoint: str | None = None
    token: str | None = None
    max_backlog: int | None = None
    replica_loss_budget: int | None = None
    #: Where the embedded controller runs replicas: "local" or "container".
    backend: str | None = None
    #: The container backend's network: "bridge", "host", or a network's name.
    container_network: str | None = None
    # The embedded controller serves Prometheus metrics on this port (0 picks one).
    metrics_port: int | None = None


def is_flyte_config(path: Path) -> bool:
    """Whether ``path`` looks like a Flyte config (YAML), not ours (TOML)."""
    return path.suffix.lower() in (".yaml", ".yml")


def _line_of(lines: list[str], pattern: str, start: int = 0) -> int:
    regex = re.compile(pattern)
    for number, line in enumerate(lines[start:], start=start + 1):
        if regex.match(line):
            return number
    return 0


def _hint(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_config(path: Path) -> dict[str, Any]:
    """The ``[controller]`` settings of a TOML config file, checked key by key.

    Raises :class:`ConfigError` naming the file and line of anything unknown or
    of the wrong type, and for a file that cannot be read or parsed.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError names the line itself
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    lines = text.splitlines()
    for section, value in data.items():
        known_keys = KNOWN.get(section)
        if known_keys is None or not isinstance(value, dict):
            line = _line_of(lines, rf"^\s*\[+\s*{re.escape(section)}\s*\]") or _line_of(
                lines, rf"^\s*{re.escape(section)}\s*="
            )
            where = f"{path}:{line}" if line else str(path)
            if known_keys is None:
                raise ConfigError(
                    f"{where}: unknown section [{section}]{_hint(section, list(KNOWN))}; "
                    f"known sections: {', '.join(f'[{k}]' for k in KNOWN)}"
                )
            raise ConfigError(f"{where}: [{section}] must be a table")
        start = _line_of(lines, rf"^\s*\[\s*{re.escape(section)}\s*\]")
        for key, setting in value.items():
            line = _line_of(lines, rf"^\s*{re.escape(key)}\s*=", max(0, start))
            where = f"{path}:{line}" if line else str(path)
            types = known_keys.get(key)
            if types is None:
                raise ConfigError(
                    f"{where}: unknown setting {key!r} in [{section}]"
                    f"{_hint(key, list(known_keys))}; known: {', '.join(sorted(known_keys))}"
                )
            if isinstance(setting, bool) or not isinstance(setting, types):
                kind = types[0].__name__
                article = "an" if kind[0] in "aeiou" else "a"
                raise ConfigError(
                    f"{where}: [{section}] {key} must be {article} {kind}, got {setting!r}"
                )
            if key == "endpoint":  # checked here, where the message can name the line
                parse_address(str(setting), f"{where}: [{section}] {key}")
    return dict(data.get("controller", {}))
