"""docs/flyte-api.md tells the truth about reuse_runtime: what it marks supported or warning
exists (each option in its function's signature), what it marks refused at the top level
is absent, and every fixed warning the SDK prints is listed."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any

import reuse_runtime
from tests.docs.blocks import ROOT

PAGE = ROOT / "docs" / "flyte-api.md"
STATES = ("supported", "warning", "refused")
_ROW = re.compile(r"^\|\s*`(?P<name>[^`]+)`\s*\|\s*(?P<state>\w+)\s*\|")
_CALL = re.compile(r"^(?P<callee>[\w.@]+)\((?P<option>\w+)=\.\.\.\)$")
#: The table's spellings of things that are not reached by attribute from the module.
_ALIASES: dict[str, Callable[[], Any]] = {
    "@env.task": lambda: reuse_runtime.TaskEnvironment.task,
    "task.override": lambda: reuse_runtime.TaskTemplate.override,
    "env.clone_with": lambda: reuse_runtime.TaskEnvironment.clone_with,
    "env.add_dependency": lambda: reuse_runtime.TaskEnvironment.add_dependency,
    "env.tasks": lambda: reuse_runtime.TaskEnvironment.tasks,
    "task.aio": lambda: reuse_runtime.TaskTemplate.aio,
    "TaskEnvironment": lambda: reuse_runtime.TaskEnvironment,
}


def _rows() -> list[tuple[str, str]]:
    rows = []
    for line in PAGE.read_text().splitlines():
        if match := _ROW.match(line):
            rows.append((match["name"], match["state"]))
    return rows


def _resolve(name: str) -> Any:
    """The object ``name`` names, ``flyte.`` read as ``reuse_runtime.``; AttributeError if
    there is none."""
    if name in _ALIASES:
        return _ALIASES[name]()
    parts = name.split(".")
    assert parts[0] == "flyte", f"{name}: name it from `flyte.`"
    found: Any = reuse_runtime
    for i, part in enumerate(parts[1:], start=1):
        if not hasattr(found, part) and inspect.ismodule(found):
            # a submodule the package does not import itself (flyte.io it does)
            with contextlib.suppress(ImportError):
                importlib.import_module(".".join(["reuse_runtime", *parts[1 : i + 1]]))
        found = getattr(found, part)
    return found


def _parameters(function: Any) -> set[str]:
    target = function.fget if isinstance(function, property) else function
    return set(inspect.signature(target).parameters)


def test_the_page_has_rows_in_known_states() -> None:
    rows = _rows()
    assert len(rows) > 150
    for name, state in rows:
        assert state in STATES, f"{name}: state {state!r} is not one of {STATES}"
    names = [name for name, _ in rows]
    assert len(names) == len(set(names)), "a name is listed twice"


def test_what_the_page_supports_or_warns_about_exists() -> None:
    wrong = []
    for name, state in _rows():
        if state == "refused" and not _CALL.match(name):
            continue
        call = _CALL.match(name)
        try:
            if call:
                if call["option"] not in _parameters(_resolve(call["callee"])):
                    wrong.append(f"{name}: {call['callee']} takes no {call['option']}")
            else:
                _resolve(name)
        except AttributeError as exc:
            wrong.append(f"{name} ({state}): {exc}")
    assert not wrong, "docs/flyte-api.md lists what reuse_runtime lacks:\n" + "\n".join(wrong)


def test_what_the_page_refuses_at_the_top_level_is_absent() -> None:
    present = []
    for name, state in _rows():
        if state != "refused" or _CALL.match(name) or name.count(".") != 1:
            continue
        if hasattr(reuse_runtime, name.split(".")[1]):
            present.append(name)
    assert not present, f"reuse_runtime now has these: mark them supported: {present}"


def test_every_fixed_warning_of_the_sdk_is_listed() -> None:
    """``note_ignored("Callee(option...`` in src/ appears on the page as a warning row."""
    listed = {name for name, state in _rows() if state == "warning"}
    short = {re.sub(r"^(flyte\.|@env\.|task\.)", "", name) for name in listed}
    pattern = re.compile(r'note_ignored\(\s*"(?P<callee>\w+)\((?P<option>\w+)[=.]')
    found = []
    for path in (ROOT / "src" / "reuse_runtime").rglob("*.py"):
        for match in pattern.finditer(path.read_text()):
            found.append(f"{match['callee']}({match['option']}=...)")
    assert len(found) >= 8
    missing = [call for call in found if call not in short]
    assert not missing, f"warnings the SDK prints that docs/flyte-api.md does not list: {missing}"
