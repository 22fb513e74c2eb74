"""The phases of a run and of an action, under Flyte's names and spellings.

``ActionPhase.SUCCEEDED == "succeeded"``, as ``flyte.models.ActionPhase`` has it,
so a phase read from the store compares with a string a user typed
(``Run.listall(in_phase=("failed",))``). The store keeps a phase as a small
integer (:data:`PHASE_CODES`); the numbers are part of the file format.
"""

from __future__ import annotations

import enum


class ActionPhase(str, enum.Enum):
    """Where a run or an action is in its life (Flyte's ``ActionPhase``)."""

    QUEUED = "queued"
    WAITING_FOR_RESOURCES = "waiting_for_resources"
    INITIALIZING = "initializing"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"
    TIMED_OUT = "timed_out"

    @property
    def is_terminal(self) -> bool:
        """True once nothing more will happen: succeeded, failed, aborted or timed out."""
        return PHASE_CODES[self] >= FIRST_TERMINAL

    def __str__(self) -> str:
        return self.value


#: A phase as the store keeps it. Never renumber: these are in every store file.
PHASE_CODES: dict[ActionPhase, int] = {
    ActionPhase.QUEUED: 1,
    ActionPhase.WAITING_FOR_RESOURCES: 2,
    ActionPhase.INITIALIZING: 3,
    ActionPhase.RUNNING: 4,
    ActionPhase.SUCCEEDED: 5,
    ActionPhase.FAILED: 6,
    ActionPhase.ABORTED: 7,
    ActionPhase.TIMED_OUT: 8,
}
#: Codes from here up are terminal phases.
FIRST_TERMINAL = 5
PHASES_BY_CODE: dict[int, ActionPhase] = {code: phase for phase, code in PHASE_CODES.items()}


def parse_phase(value: ActionPhase | str) -> ActionPhase:
    """``value`` as a phase: a member, or its spelling (``"timed_out"``, any case).

    Raises ``ValueError`` naming the phases there are.
    """
    if isinstance(value, ActionPhase):
        return value
    try:
        return ActionPhase(value.strip().lower())
    except ValueError:
        names = ", ".join(phase.value for phase in ActionPhase)
        raise ValueError(f"{value!r} is not a phase; the phases are {names}") from None
