"""``flyte.remote.Condition``: a run's conditions, listed and signaled from any process.

Flyte's names and signatures: ``Condition.listall(run_name=...)``,
``Condition.get(name, run_name=...)``, ``condition.signal(payload)``, and their
``.aio`` forms. They go to the controller this process uses; a run of another
process's embedded controller is read from the local runs store (and can only be
signaled from that process)::

    from reuse_runtime.remote import Condition

    for condition in Condition.listall(run_name="r20261201-120000-abc123"):
        print(condition.name, condition.phase, condition.expected_type)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from reuse_runtime.conditions import (
    ConditionInfo,
    ConditionValue,
    a_type,
    coerce_condition_payload,
)
from reuse_runtime.sdk.aio import BlockingClassMethod, BlockingMethod, IteratingMethod
from reuse_runtime.sdk.runsource import default_source

#: The payload types a signal may carry (Flyte's ``ConditionPayload``).
ConditionPayload = ConditionValue


@dataclass
class Condition:
    """A condition created in a run by ``flyte.new_condition`` (Flyte's ``Condition``)."""

    info: ConditionInfo

    @property
    def name(self) -> str:
        """The condition's name, as created."""
        return self.info.name

    @property
    def action_name(self) -> str:
        """Its id within the run: ``<creating action>-cond-<name>``."""
        return self.info.action_id

    @property
    def run_name(self) -> str:
        return self.info.run

    @property
    def parent_action_name(self) -> str:
        """The action (task) that created it and waits on it."""
        return self.info.parent_action_id

    @property
    def phase(self) -> str:
        """Flyte's spelling: ``ACTION_PHASE_RUNNING`` while it waits, then
        ``ACTION_PHASE_SUCCEEDED`` (signaled), ``_TIMED_OUT`` or ``_ABORTED``."""
        return f"ACTION_PHASE_{self.info.phase.name}"

    @property
    def prompt(self) -> str:
        return self.info.prompt

    @property
    def prompt_type(self) -> str:
        return self.info.prompt_type

    @property
    def description(self) -> str:
        return self.info.description

    @property
    def expected_type(self) -> type | None:
        """The Python type its payload must have (``bool``, ``int``, ``float`` or ``str``)."""
        return self.info.expected_type

    @property
    def value(self) -> ConditionValue | None:
        """The value it was signaled with (``None`` while it waits)."""
        return self.info.value

    @staticmethod
    def _listall(
        cls: type[Condition], run_name: str, action_name: str | None = None, limit: int = 100
    ) -> Iterator[Condition]:
        """The run's conditions, oldest first (``action_name``: those that action created)."""
        for info in default_source().conditions(run_name, action_name):
            yield cls(info)

    listall = IteratingMethod(_listall, classmethod=True)

    @staticmethod
    def _get(
        cls: type[Condition], name: str, /, run_name: str, action_name: str | None = None
    ) -> Condition | None:
        """The run's condition ``name`` (or the one whose action id it is), or ``None``."""
        for info in default_source().conditions(run_name, action_name):
            if name in (info.name, info.action_id):
                return cls(info)
        return None

    get = BlockingClassMethod(_get)

    def _signal(self, payload: ConditionPayload) -> None:
        """Signal the condition with ``payload``, as its ``expected_type`` (a ``str`` is
        parsed, as Flyte's CLI does); the task waiting on it goes on with the value.

        Raises ``TypeError`` or ``ValueError`` (one line) for a payload that is not one.
        """
        if not isinstance(payload, (bool, int, float, str)):
            raise TypeError(
                f"payload must be bool, int, float, or str, got {type(payload).__name__}"
            )
        try:
            value = coerce_condition_payload(payload, self.info.expected_type)
        except (TypeError, ValueError) as exc:
            raise type(exc)(
                f"condition {self.name!r} of run {self.run_name} expects "
                f"{a_type(self.info.data_type)}: {exc}"
            ) from None
        self.info = default_source().signal_condition(self.run_name, self.action_name, value)

    signal = BlockingMethod(_signal)

    def __repr__(self) -> str:
        return (
            f"Condition(name={self.name!r}, run={self.run_name!r}, action={self.action_name!r}, "
            f"phase={self.phase!r}, type={self.info.data_type})"
        )


__all__ = ["Condition", "ConditionPayload"]
