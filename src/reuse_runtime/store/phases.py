"""The phases of a run and of an action, under Flyte's names and spellings.

They are defined in :mod:`reuse_runtime.runinfo` (every layer shares them) and
re-exported here. The store keeps a phase as a small integer (:data:`PHASE_CODES`);
the numbers are part of the file format.
"""

from __future__ import annotations

from reuse_runtime.runinfo import (
    FIRST_TERMINAL,
    PHASE_CODES,
    PHASES_BY_CODE,
    ActionPhase,
    parse_phase,
)

__all__ = ["FIRST_TERMINAL", "PHASES_BY_CODE", "PHASE_CODES", "ActionPhase", "parse_phase"]
