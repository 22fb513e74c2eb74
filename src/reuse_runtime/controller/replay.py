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
* **Bounded in bytes:** the values kept, across every log of a controller, stay
  within a budget (``$REUSE_RUNTIME_REPLAY_BYTES``, 64 MiB): a child that finishes
  while the budget is spent is not kept, and runs again if its parent does. A log
  gives its bytes back when its parent ends.
* **Not kept across a controller restart:** the log lives in the controller's
  memory, with the parent's record. A parent re-sent to a new controller runs
  all its children again.
* The parent's own code always runs again, side effects included: only child
  calls are replayed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import structlog

from reuse_runtime.envvars import env_size
from reuse_runtime.model import ErrorKind, TaskResult, TaskState

log = structlog.get_logger("reuse_runtime.controller")

REPLAY_BYTES_ENV = "REUSE_RUNTIME_REPLAY_BYTES"
#: What the logs of one controller keep at most, in result bytes (values and errors).
REPLAY_BYTES = 64 * 1024 * 1024

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


def default_replay_bytes() -> int:
    """``$REUSE_RUNTIME_REPLAY_BYTES`` (bytes, or a size like ``256Mi``; 0 keeps
    nothing), or :data:`REPLAY_BYTES`."""
    return env_size(
        REPLAY_BYTES_ENV,
        REPLAY_BYTES,
        least=0,
        needs="a size in bytes, like 67108864 or 64Mi (0 keeps nothing)",
    )


def result_bytes(result: TaskResult) -> int:
    """What keeping ``result`` costs, roughly: its value, or its error's texts."""
    error = result.error
    if error is None:
        return len(result.value) + 64
    return len(error.pickled) + len(error.message) + len(error.traceback) + 64


class ReplayBudget:
    """The bytes every replay log of one controller may keep, together."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.refused = 0  # results not kept because the budget was spent
        self._warned = False

    def take(self, size: int) -> bool:
        if self.used + size > self.limit:
            self.refused += 1
            if not self._warned:
                self._warned = True
                log.warning(
                    f"the replay log is full ({self.limit} bytes of child results): children "
                    f"finishing while it is are not kept, and run again if their parent does; "
                    f"{REPLAY_BYTES_ENV} sets its size"
                )
            return False
        self.used += size
        return True

    def give_back(self, size: int) -> None:
        self.used -= size


@dataclass(slots=True)
class ReplayLog:
    """What the children of one parent did, while the parent lives."""

    done: dict[str, TaskResult] = field(default_factory=dict)
    # The logs of children that are parents themselves, until they finish. Every call
    # with the same key shares one: a child called again while its first call is still
    # being cancelled continues from what both of them finished.
    nested: dict[str, ReplayLog] = field(default_factory=dict)
    # Where the bytes of ``done`` are counted; None: unbounded (a log on its own).
    budget: ReplayBudget | None = None
    held: int = 0

    def __del__(self) -> None:
        # The parent ended (or a nested log finished): its bytes are free for others.
        if self.held and self.budget is not None:
            self.budget.give_back(self.held)

    def lookup(self, key: str) -> TaskResult | None:
        return self.done.get(key)

    def record(self, key: str, result: TaskResult) -> None:
        """A child with call key ``key`` ended with ``result``; kept if the budget allows."""
        if result.state is TaskState.SUCCEEDED or replayable(result):
            budget = self.budget
            if budget is not None:
                earlier = self.done.pop(key, None)
                if earlier is not None:
                    self.held -= result_bytes(earlier)
                    budget.give_back(result_bytes(earlier))
                size = result_bytes(result)
                if not budget.take(size):
                    return
                self.held += size
            if type(result.value) is memoryview:
                # A view of the message it came in, which it would keep whole: a copy.
                result = replace(result, value=bytes(result.value))
            self.done[key] = result
            if self.nested:
                self.nested.pop(key, None)

    def nested_log(self, key: str, create: bool) -> ReplayLog | None:
        """The log of the child called ``key`` (made if ``create``)."""
        if create:
            found = self.nested.get(key)
            if found is None:
                found = self.nested[key] = ReplayLog(budget=self.budget)
            return found
        return self.nested.get(key)
