"""``flyte.remote``: runs and their actions, read from any process that reaches them.

Flyte's names and signatures: ``Run.get(name)``, ``Run.listall(...)``,
``run.wait()``, ``run.outputs()``, ``run.abort(reason)``,
``Action.listall(for_run_name=...)``, ``Action.get(run_name=..., name=...)``,
``Condition.listall(run_name=...)``, ``Condition.get(name, run_name=...)``,
``condition.signal(payload)``, and their ``.aio`` forms. Runs are read from the
controller this process uses
(``init(endpoint=...)`` or ``$REUSE_RUNTIME_ENDPOINT``), else from the local runs
store the embedded controllers keep::

    import reuse_runtime as flyte

    run = flyte.remote.Run.get("r20261201-120000-abc123")
    run.wait()
    print(run.phase, run.outputs()[0])
"""

from reuse_runtime.runinfo import ActionPhase
from reuse_runtime.sdk.action import (
    Action,
    ActionDetails,
    ActionInputs,
    RunDetails,
    TimeFilter,
)
from reuse_runtime.sdk.outputs import ActionOutputs
from reuse_runtime.sdk.remote_condition import Condition
from reuse_runtime.sdk.run import Run

__all__ = [
    "Action",
    "ActionDetails",
    "ActionInputs",
    "ActionOutputs",
    "ActionPhase",
    "Condition",
    "Run",
    "RunDetails",
    "TimeFilter",
]
