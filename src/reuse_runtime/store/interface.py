"""What the controller, the SDK and the UI need of a runs store, as protocols.

:class:`~reuse_runtime.store.sqlite.SqliteRunStore` is the store of a state dir; a
server database can stand in later by implementing the same three protocols.

* :class:`RunRecorder`, the controller's side. Each call only queues a record: it
  never blocks, never does I/O, and never raises for an I/O failure (those show
  in :meth:`RunRecorder.accepting` and :meth:`RunRecorder.statistics`). Calls
  from one thread keep their order; the controller calls from its event loop.
* :class:`RunReader`, for the CLI, the UI, ``flyte.remote`` and durable replay.
  Reads see what is committed, block, and are bounded in time; from an event loop,
  run them in a thread.
* :class:`RunStore`: both, with the lifecycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from reuse_runtime.conditions import ConditionInfo
from reuse_runtime.store.phases import ActionPhase
from reuse_runtime.store.records import (
    ActionRecord,
    LogRecord,
    RunEnded,
    RunProgress,
    RunSubmitted,
)
from reuse_runtime.store.views import (
    ActionInfo,
    ActionReport,
    ChildCounts,
    GroupSummary,
    LogEntry,
    Page,
    ReplayOutcome,
    RunFilter,
    RunInfo,
    StoreStatistics,
    UnfinishedRun,
)


class RunRecorder(Protocol):
    """Where the controller records runs, actions and log lines (cheap; never blocks)."""

    def run_submitted(self, record: RunSubmitted) -> None:
        """A run was accepted (call before any of its actions ends)."""

    def run_progress(self, record: RunProgress) -> None:
        """A run moved to a non-terminal phase."""

    def run_ended(self, record: RunEnded) -> None:
        """A run reached its terminal phase (call after its last action ended)."""

    def action_ended(self, record: ActionRecord) -> None:
        """An action reached its terminal phase. The hot path: one call per task."""

    def log_line(self, record: LogRecord) -> None:
        """An action printed a line."""

    def log_lines(self, records: Iterable[LogRecord]) -> None:
        """An action printed these lines."""

    def condition_changed(self, record: ConditionInfo) -> None:
        """A condition (``flyte.new_condition``) was created or ended: keep it as it is."""

    def accepting(self) -> bool:
        """False while records cannot be written (disk full, or broken: see
        ``statistics().reason``): refuse new runs until it is True again."""

    def statistics(self) -> StoreStatistics:
        """A snapshot: what waits, what was written, the state and why."""

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record queued before this call is committed (at most
        ``timeout`` seconds). False if it was not, in time."""


class RunReader(Protocol):
    """What was recorded, for the CLI, the UI, the SDK and durable replay."""

    def get_run(self, name: str) -> RunInfo | None: ...

    def list_runs(
        self, where: RunFilter = ..., *, limit: int = 50, cursor: str | None = None
    ) -> Page[RunInfo]: ...

    def phase_counts(self, run: str) -> dict[ActionPhase, int]: ...

    def run_inputs(self, run: str) -> bytes | None: ...

    def run_output(self, run: str) -> bytes | None: ...

    def list_actions(
        self,
        run: str,
        *,
        parent: str | None = None,
        group: str | None = None,
        phases: Sequence[ActionPhase | str] = (),
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[ActionInfo]: ...

    def get_action(self, run: str, action_id: str) -> ActionInfo | None: ...

    def action_output(self, run: str, action_id: str) -> bytes | None: ...

    def groups(self, run: str, parent: str) -> tuple[GroupSummary, ...]: ...

    def child_counts(self, run: str, parent: str, *, since: int = 0) -> ChildCounts:
        """The finished children of ``parent`` that ended after the mark ``since``, by
        ``(group, phase)``, with the next mark (a page following a run counts on)."""

    def action_logs(
        self, run: str, action_id: str, *, after: int = 0, limit: int = 1000
    ) -> tuple[LogEntry, ...]: ...

    def run_logs(self, run: str, *, after: int = 0, limit: int = 1000) -> tuple[LogEntry, ...]: ...

    def search_logs(self, run: str, text: str, *, limit: int = 100) -> tuple[LogEntry, ...]: ...

    def action_report(self, run: str, action_id: str) -> ActionReport | None:
        """The action's ``flyte.report`` as last flushed, or None."""

    def list_conditions(self, run: str, parent: str | None = None) -> list[ConditionInfo]:
        """The run's conditions as last recorded, oldest first (``parent``: its own)."""

    def replayed(self, run: str, call_key: str) -> ReplayOutcome | None:
        """Durable replay: what the child ``call_key`` of ``run`` ended with, or None."""

    def unfinished_runs(self) -> tuple[UnfinishedRun, ...]:
        """The runs to submit again after a restart, with their roots' submissions."""

    def replay_outcomes(self, run: str) -> dict[str, ReplayOutcome]:
        """Durable replay of a whole run: what each recorded child ended with, by call key
        (the runs unfinished when the store opened; others give ``{}``)."""


class RunStore(RunRecorder, RunReader, Protocol):
    """A runs store: recorder and reader, opened once and closed once."""

    @property
    def notice(self) -> str:
        """What opening had to do (a corrupt file moved aside), in one line, or ""."""

    @property
    def alone(self) -> bool:
        """No other process had the store open when this one opened it."""

    def prune(self, timeout: float = 60.0) -> bool:
        """Run retention now, to its end (at most ``timeout`` seconds)."""

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued (bounded by ``timeout``), then release everything.
        Idempotent; recording afterwards raises ``StoreClosedError``."""
