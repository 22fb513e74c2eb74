"""The runs store: every run and action a controller ran, durably, with their logs.

The controller records each run when it is accepted and when it ends, each action
once, when it ends, and each line an action prints; the CLI, the web UI and
``flyte.remote`` read them back; a restarted controller finds its unfinished runs
and the children they had finished (durable replay). By default the store is
``<state dir>/runs.sqlite``, written by one thread in batches, off the
controller's event loop::

    from reuse_runtime.store import SqliteRunStore, StoreSettings

    with SqliteRunStore.open(StoreSettings.from_env()) as store:
        for run in store.list_runs(limit=10).items:
            print(run.name, run.phase)

Modules: :mod:`~.phases` (Flyte's phases), :mod:`~.records` (what is recorded),
:mod:`~.views` (what reads return), :mod:`~.interface` (the protocols),
:mod:`~.sqlite` (the store), and its parts: :mod:`~.writer`, :mod:`~.batch`,
:mod:`~.reads`, :mod:`~.retention`, :mod:`~.blobs`, :mod:`~.lockfile`,
:mod:`~.opening`, :mod:`~.schema`, :mod:`~.settings`.
"""

from reuse_runtime.store.errors import (
    StoreClosedError,
    StoreError,
    StoreLockedError,
    ValueMissingError,
)
from reuse_runtime.store.interface import RunReader, RunRecorder, RunStore
from reuse_runtime.store.phases import ActionPhase, parse_phase
from reuse_runtime.store.reads import SqliteRunReader
from reuse_runtime.store.records import (
    REPORT_STREAM,
    ActionRecord,
    Attempt,
    ClientInfo,
    ErrorInfo,
    LogRecord,
    RunEnded,
    RunProgress,
    RunSubmitted,
    Trace,
)
from reuse_runtime.store.settings import StoreSettings
from reuse_runtime.store.sqlite import SqliteRunStore
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

__all__ = [
    "REPORT_STREAM",
    "ActionInfo",
    "ActionPhase",
    "ActionRecord",
    "ActionReport",
    "Attempt",
    "ChildCounts",
    "ClientInfo",
    "ErrorInfo",
    "GroupSummary",
    "LogEntry",
    "LogRecord",
    "Page",
    "ReplayOutcome",
    "RunEnded",
    "RunFilter",
    "RunInfo",
    "RunProgress",
    "RunReader",
    "RunRecorder",
    "RunStore",
    "RunSubmitted",
    "SqliteRunReader",
    "SqliteRunStore",
    "StoreClosedError",
    "StoreError",
    "StoreLockedError",
    "StoreSettings",
    "StoreStatistics",
    "Trace",
    "UnfinishedRun",
    "ValueMissingError",
    "parse_phase",
]
