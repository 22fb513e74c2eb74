"""Conditions (``flyte.new_condition``) as plain data: what one is, and its payload rules.

A condition belongs to a run: a task creates it and waits on it, and anyone who
reaches the run's controller signals it with a value of its ``data_type``. The
controller keeps them (``controller/conditions.py``); the SDK's side is
``sdk/condition.py`` and ``sdk/remote_condition.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reuse_runtime.runinfo import ActionPhase

#: A condition's value: what a signal carries and what ``wait()`` returns.
ConditionValue = bool | int | float | str

#: The payload types a condition may declare, by the name that travels.
DATA_TYPES: dict[str, type] = {"bool": bool, "int": int, "float": float, "str": str}

_BOOL_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_BOOL_FALSE = frozenset({"false", "0", "no", "n", "f"})


def type_name(data_type: type) -> str:
    """The name a payload type travels as; raises ``TypeError`` for one not allowed."""
    for name, known in DATA_TYPES.items():
        if data_type is known:
            return name
    raise TypeError(f"Invalid data_type {data_type!r}. Must be one of (bool, int, float, str).")


def a_type(data_type: str) -> str:
    """``"a bool"``, ``"an int"``: a payload type in a sentence."""
    return f"an {data_type}" if data_type == "int" else f"a {data_type}"


def condition_action_id(parent_action_id: str, name: str) -> str:
    """The id of the condition ``name`` created by the action ``parent_action_id``."""
    return f"{parent_action_id}-cond-{name}"


@dataclass(frozen=True)
class ConditionInfo:
    """One condition of a run, as it is now."""

    run: str
    parent_action_id: str
    name: str
    prompt: str = "Approve?"
    prompt_type: str = "text"
    data_type: str = "bool"
    description: str = ""
    #: Seconds from its creation; ``None`` for none.
    timeout: float | None = None
    phase: ActionPhase = ActionPhase.RUNNING
    created: float = 0.0
    ended: float | None = None
    #: Set once it is signaled.
    value: ConditionValue | None = None
    #: Why it ended without a value (it timed out, its run ended).
    reason: str = ""
    webhook_url: str = ""
    #: The webhook's payload as JSON ("" for none).
    webhook_payload: str = ""

    @property
    def action_id(self) -> str:
        return condition_action_id(self.parent_action_id, self.name)

    @property
    def expected_type(self) -> type:
        return DATA_TYPES[self.data_type]

    @property
    def waiting(self) -> bool:
        return not self.phase.is_terminal


def coerce_condition_payload(value: Any, expected: type) -> ConditionValue:
    """``value`` as the condition's declared payload type (Flyte's rules): a ``str``
    is parsed ("true"/"yes"/"1" for a bool); raises ``TypeError`` or ``ValueError``
    with one line for a value that is not one."""
    if expected is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            v = value.strip().lower()
            if v in _BOOL_TRUE:
                return True
            if v in _BOOL_FALSE:
                return False
            raise ValueError(f"could not parse {value!r} as bool")
        raise TypeError(f"expected bool payload, got {type(value).__name__}")
    if expected is int:
        if isinstance(value, bool):
            raise TypeError("expected int payload, got bool")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"could not parse {value!r} as int") from None
        raise TypeError(f"expected int payload, got {type(value).__name__}")
    if expected is float:
        if isinstance(value, bool):
            raise TypeError("expected float payload, got bool")
        if isinstance(value, float):
            return value
        if isinstance(value, int):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise ValueError(f"could not parse {value!r} as float") from None
        raise TypeError(f"expected float payload, got {type(value).__name__}")
    if expected is str:
        if isinstance(value, (bool, int, float, str)):
            return str(value)
        raise TypeError(f"expected str payload, got {type(value).__name__}")
    raise TypeError(f"unsupported expected condition type {expected!r}")
