"""settings.py declares every setting the code reads, and only those, with the code's defaults."""

from __future__ import annotations

import dataclasses
import importlib
import re
from functools import reduce

from reuse_runtime import settings
from reuse_runtime.sdk import config
from tests.helpers import ROOT

SRC = ROOT / "src"
NAME = re.compile(r"REUSE_RUNTIME_[A-Z0-9_]+")


def _names_in_code() -> dict[str, set[str]]:
    """Every ``REUSE_RUNTIME_*`` literal under src/ (settings.py aside), with its files."""
    found: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "reuse_runtime" / "settings.py" or "/wire/v1/" in path.as_posix():
            continue
        for name in NAME.findall(path.read_text()):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_variable_in_the_code_is_declared() -> None:
    declared = {v.name for v in settings.VARIABLES}
    missing = {}
    for name, files in _names_in_code().items():
        if name.endswith("_"):  # a family in a message, like REUSE_RUNTIME_TLS_*
            if not any(d.startswith(name) for d in declared):
                missing[name + "*"] = files
        elif name not in declared:
            missing[name] = files
    assert not missing, f"declare these in src/reuse_runtime/settings.py: {missing}"


def test_every_declared_variable_is_used() -> None:
    used = set(_names_in_code())
    unused = [v.name for v in settings.VARIABLES if v.name not in used]
    assert not unused, f"declared in settings.py but read nowhere in src/: {unused}"


def test_each_variable_is_declared_once_with_a_meaning() -> None:
    names = [v.name for v in settings.VARIABLES]
    assert len(names) == len(set(names))
    for v in settings.VARIABLES:
        assert v.meaning and v.unit, v.name
        assert settings.variable(v.name) is v


def _resolve(source: str) -> object:
    """``module:attr.attr``; a field of a dataclass (slots or not) gives its default."""
    module, _, attribute = source.partition(":")
    *owners, name = attribute.split(".")
    owner = reduce(getattr, owners, importlib.import_module(module))
    if dataclasses.is_dataclass(owner):
        for field in dataclasses.fields(owner):
            if field.name == name:
                return field.default
    return getattr(owner, name)


def test_declared_defaults_are_the_codes() -> None:
    sources = [(s.name, s.default, s.source) for s in settings.VARIABLES if s.source]
    sources += [
        (f"[{c.section}] {c.key}", int(c.default) if c.kind is int else c.default, c.source)
        for c in settings.CONFIG
        if c.source
    ]
    assert len(sources) >= 8
    for name, default, source in sources:
        assert source is not None
        assert _resolve(source) == default, (
            f"{name}: settings.py says {default!r}, {source} differs"
        )


def test_the_config_keys_are_the_ones_the_config_file_accepts() -> None:
    declared = {(c.section, c.key): c.kind for c in settings.CONFIG}
    accepted = {
        (section, key): kinds[0]
        for section, keys in config.KNOWN.items()
        for key, kinds in keys.items()
    }
    assert declared == accepted
