"""Durable replay, the controller's half: a parent's finished children, by call key.

While a parent task lives (until its terminal result), the controller keeps what
each of its children ended with, under the child's call key
(:mod:`reuse_runtime.sdk.replay`). When the parent runs again (its replica died,
or it raised and has ``retries`` left), it makes the same calls; a call whose
key is in the log is answered at once with the recorded result, and does not run.

* **Replayed:** a child's own outcome: it succeeded, raised, timed out, could not
  start or send its result, or was quarantined for killing replicas.
* **Not replayed:** a child that did not finish: cancelled, handed back by a
  controller shutting down, lost with the controller. It runs again.
* **Nested:** a child that was itself a parent and did not finish keeps its own
  log inside its parent's, so its finished children are replayed when it is
  called again.
* **Not kept across a controller restart:** the log lives in the controller's
  memory, with the parent's record. A parent re-sent to a new controller runs
  all its children again.
* The parent's own code always runs again, side effects included: only child
  calls are replayed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reuse_runtime.model import ErrorKind, TaskResult, TaskState

#: Outcomes that belong to the child itself, so replaying them is faithful.
_REPLAYED_ERRORS = frozenset(
    {
        ErrorKind.USER,
        ErrorKind.BAD_INPUT,
        ErrorKind.BAD_OUTPUT,
        ErrorKind.TIMED_OUT,
        ErrorKind.REPLICA_LOST,
    }
)


def replayable(result: TaskResult) -> bool:
    if result.state is TaskState.SUCCEEDED:
        return True
    return result.error is not None and result.error.kind in _REPLAYED_ERRORS


@dataclass(slots=True)
class ReplayLog:
    """What the children of one parent did, while the parent lives."""

    done: dict[str, TaskResult] = field(default_factory=dict)
    # The logs of children that are parents themselves, until they finish. Every call
    # with the same key shares one: a child called again while its first call is still
    # being cancelled continues from what both of them finished.
    nested: dict[str, ReplayLog] = field(default_factory=dict)

    def lookup(self, key: str) -> TaskResult | None:
        return self.done.get(key)

    def record(self, key: str, result: TaskResult) -> None:
        """A child with call key ``key`` ended with ``result``."""
        if result.state is TaskState.SUCCEEDED or replayable(result):
            self.done[key] = result
            if self.nested:
                self.nested.pop(key, None)

    def nested_log(self, key: str, create: bool) -> ReplayLog | None:
        """The log of the child called ``key`` (made if ``create``)."""
        if create:
            return self.nested.setdefault(key, ReplayLog())
        return self.nested.get(key)
