"""What ``Run.outputs()`` returns: Flyte's ``ActionOutputs``, a tuple of the task's outputs.

Flyte 2 returns a task's outputs as a tuple in every mode, so ``run.outputs()[0]``
is the value of a task with one output, and a task that returns a tuple (or a
``NamedTuple``) gives its items. ``named_outputs`` maps the output names
(``o0``, ``o1``, ... or the ``NamedTuple``'s fields) to the values, which are
also attributes.
"""

from __future__ import annotations

import typing
from functools import cached_property
from typing import Any


class ActionOutputs(tuple):  # type: ignore[type-arg]
    """A task's outputs, as a tuple; ``named_outputs`` gives them by name."""

    _fields: tuple[str, ...]

    def __new__(
        cls, data: tuple[Any, ...], fields: list[str] | tuple[str, ...] | None = None
    ) -> ActionOutputs:
        obj = super().__new__(cls, data)
        names = tuple(fields) if fields is not None else tuple(f"o{i}" for i in range(len(obj)))
        if len(names) != len(obj):
            raise ValueError(f"{len(names)} output names for {len(obj)} outputs")
        obj._fields = names
        for name, value in zip(names, obj, strict=True):
            obj.__dict__.setdefault(name, value)
        return obj

    @classmethod
    def of(cls, value: Any) -> ActionOutputs:
        """A task's return value as its outputs: a tuple is its items, anything else one output."""
        if isinstance(value, tuple):
            fields = getattr(type(value), "_fields", None)
            names = fields if isinstance(fields, tuple) and len(fields) == len(value) else None
            return cls(tuple(value), names)
        return cls((value,))

    @cached_property
    def named_outputs(self) -> dict[str, Any]:
        """The outputs by name: ``{"o0": ..., "o1": ...}``."""
        return dict(zip(self._fields, self, strict=True))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={value!r}" for name, value in zip(self._fields, self, strict=True)
        )
        return f"ActionOutputs({shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (tuple(self), self._fields))


def declares_no_output(func: Any) -> bool:
    """Whether ``func`` is annotated ``-> None``: a task with no outputs."""
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # an annotation that does not resolve: judge by the value
        return False
    return "return" in hints and hints["return"] is type(None)
