"""Flyte's ``flyte.models`` names that programs reading runs use: ``ActionPhase``.

from reuse_runtime.models import ActionPhase

runs = flyte.remote.Run.listall(in_phase=(ActionPhase.FAILED,))
"""

from reuse_runtime.runinfo import ActionPhase

__all__ = ["ActionPhase"]
