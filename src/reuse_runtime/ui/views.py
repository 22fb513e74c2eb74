"""What each page and fragment shows: read from the store (in a reader thread) and
from the live controller (on its loop), joined into frozen view models.

The live state is read first, on the loop (its protocol's contract); the store
reads that follow run in the UI's reader threads. An action the store has (it
ended) wins over the controller's view of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from reuse_runtime.conditions import ConditionInfo
from reuse_runtime.model import RunProgress
from reuse_runtime.store.interface import RunReader
from reuse_runtime.store.phases import ActionPhase
from reuse_runtime.store.records import Attempt, Trace
from reuse_runtime.store.views import ActionReport, LogEntry, Page, RunFilter, RunInfo
from reuse_runtime.ui import tree
from reuse_runtime.ui.context import UiContext
from reuse_runtime.ui.live import RunningPage

#: Runs in one page of the list.
RUNS_PAGE = 50
#: Log lines read at a time.
LOG_PAGE = 1000
#: Bars the timeline draws at most (finished, then running).
TIMELINE_BARS = 2000
TIMELINE_RUNNING = 500
#: Outputs previewed on an action's page up to this size.
PANEL_PREVIEW_BYTES = 64 * 1024


# ------------------------------------------------------------------ runs


@dataclass(frozen=True, slots=True)
class RunsListing:
    runs: tuple[RunInfo, ...]
    cursor: str | None


def runs_listing(ctx: UiContext, where: RunFilter, cursor: str | None) -> RunsListing:
    page: Page[RunInfo] = ctx.reader.list_runs(where, limit=RUNS_PAGE, cursor=cursor)
    return RunsListing(page.items, page.cursor)


# ------------------------------------------------------------------ a run


@dataclass(frozen=True, slots=True)
class RunHeader:
    """A run's state: as recorded, with what the controller holds of it now."""

    run: RunInfo
    progress: RunProgress | None
    counts: tuple[tuple[ActionPhase, int], ...]
    can_abort: bool
    #: Aborted, and not ended yet: its actions are being cancelled.
    aborting: bool = False
    #: Its conditions waiting for a signal (``flyte.new_condition``).
    conditions: tuple[ConditionInfo, ...] = ()
    #: A signal can be sent from here (a controller serves this UI).
    can_signal: bool = False

    @property
    def live(self) -> bool:
        return not self.run.phase.is_terminal

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)


async def run_header(ctx: UiContext, name: str) -> RunHeader | None:
    info = await ctx.off_loop(ctx.reader.get_run, name)
    if info is None:
        return None
    progress = ctx.live.progress(name) if ctx.live is not None else None
    counts = dict(info.counts)
    if progress is not None and progress.found and not progress.ended and not info.done:
        if progress.running:
            counts[ActionPhase.RUNNING] = counts.get(ActionPhase.RUNNING, 0) + progress.running
        waiting = progress.total - progress.finished - progress.running
        if waiting > 0:
            counts[ActionPhase.QUEUED] = counts.get(ActionPhase.QUEUED, 0) + waiting
    ordered = tuple((p, counts[p]) for p in tree.PHASE_ORDER if counts.get(p))
    aborting = ctx.live is not None and not info.done and ctx.live.aborting(name)
    pending: tuple[ConditionInfo, ...] = ()
    if not info.done:
        found = await ctx.off_loop(ctx.reader.list_conditions, name)
        pending = tuple(c for c in found if c.waiting)
    return RunHeader(
        info,
        progress if progress is not None and progress.found else None,
        ordered,
        can_abort=ctx.abort is not None and not info.done and not aborting,
        aborting=aborting,
        conditions=pending,
        can_signal=ctx.signal is not None and not aborting,
    )


@dataclass(frozen=True, slots=True)
class RootTree:
    """The tree as a run's page opens: its root (the one child of "") and the root's
    children, shown."""

    top: tree.Children
    root_id: str
    children: tree.Children
    live: bool


async def root_tree(ctx: UiContext, run: RunInfo) -> RootTree:
    live_root = live_kids = RunningPage()
    if ctx.live is not None and not run.done:
        live_root = ctx.live.running(run.name, parent="", group="", limit=1)
        live_kids = ctx.live.running(run.name, parent=run.root_action_id, limit=tree.RUNNING)
    return await ctx.off_loop(_root_tree, ctx, run, live_root, live_kids)


def _root_tree(
    ctx: UiContext, run: RunInfo, live_root: RunningPage, live_kids: RunningPage
) -> RootTree:
    return RootTree(
        _top(ctx, run, live_root),
        run.root_action_id,
        tree.children(ctx.reader, ctx.counts, run.name, run.root_action_id, live_kids),
        live=not run.done,
    )


def _top(ctx: UiContext, run: RunInfo, live: RunningPage, part: str = "") -> tree.Children:
    """The tree's top: the run's root, as recorded, on a replica, or else as submitted (in
    the live part, until it is recorded)."""
    top = _children(ctx, run.name, "", live, None, (), None, part)
    # The root's inputs are the run's (an action's own are not recorded).
    if top.finished.rows:
        rows = tuple(_with_run_inputs(row, run) for row in top.finished.rows)
        top = dataclasses.replace(top, finished=dataclasses.replace(top.finished, rows=rows))
    if top.live.running:
        running = tuple(_with_run_inputs(row, run) for row in top.live.running)
        top = dataclasses.replace(top, live=dataclasses.replace(top.live, running=running))
    if part == "finished" or top.live.running or top.finished.rows:
        return top
    if part == "live" and ctx.reader.get_action(run.name, run.root_action_id) is not None:
        return top
    root = tree.root_row(run, None, RunningPage())
    return dataclasses.replace(top, live=tree.LivePart(running=(root,), running_total=1))


def _with_run_inputs(row: tree.ActionRow, run: RunInfo) -> tree.ActionRow:
    if row.inputs or row.action_id != run.root_action_id:
        return row
    return dataclasses.replace(row, inputs=run.inputs_preview)


async def children(
    ctx: UiContext,
    run: RunInfo,
    parent: str,
    *,
    group: str | None,
    phases: tuple[str, ...],
    cursor: str | None,
    part: str,
) -> tree.Children:
    """A parent's children, or one part of them (``part``: "live" or "finished")."""
    held = RunningPage()
    if ctx.live is not None and not run.done and part != "finished":
        held = ctx.live.running(run.name, parent=parent, limit=tree.RUNNING)
    if not parent:
        return await ctx.off_loop(_top, ctx, run, held, part)
    return await ctx.off_loop(_children, ctx, run.name, parent, held, group, phases, cursor, part)


def _children(
    ctx: UiContext,
    run: str,
    parent: str,
    held: RunningPage,
    group: str | None,
    phases: tuple[str, ...],
    cursor: str | None,
    part: str,
) -> tree.Children:
    live = tree.LivePart()
    finished = tree.FinishedPart()
    if part != "finished":
        counted = ctx.counts.counts(ctx.reader, run, parent)
        live = tree.live_part(counted, held, group=group, phases=phases)
    if part != "live":
        finished = tree.finished_part(
            ctx.reader, run, parent, group=group, phases=phases, cursor=cursor
        )
    return tree.Children(parent, group, live, finished, phases)


# ------------------------------------------------------------------ an action


@dataclass(frozen=True, slots=True)
class ActionPanel:
    """An action's page: what it is, how it went, what it printed, and its report."""

    run: RunInfo
    row: tree.ActionRow
    attempts: tuple[Attempt, ...]
    traces: tuple[Trace, ...]
    output: str
    logs: tuple[LogEntry, ...]
    report: ActionReport | None

    @property
    def last_seq(self) -> int:
        return self.logs[-1].seq if self.logs else 0

    @property
    def live(self) -> bool:
        return self.row.live


async def action_panel(
    ctx: UiContext, run: str, action_id: str, *, facts_only: bool = False
) -> ActionPanel | None:
    """The action's page; ``facts_only``: without its log and report (what its facts'
    poll needs)."""
    held = None
    if ctx.live is not None:
        held = ctx.live.action(run, action_id)
    return await ctx.off_loop(_action_panel, ctx.reader, run, action_id, held, facts_only)


def _action_panel(
    reader: RunReader, run: str, action_id: str, held: Any, facts_only: bool
) -> ActionPanel | None:
    info = reader.get_run(run)
    if info is None:
        return None
    found = reader.get_action(run, action_id)
    attempts: tuple[Attempt, ...] = ()
    traces: tuple[Trace, ...] = ()
    output = ""
    if found is not None:
        data = None
        if found.output_size is not None and found.output_size <= PANEL_PREVIEW_BYTES:
            data = reader.action_output(run, action_id)
        row = _with_run_inputs(tree.finished_row(found, data), info)
        output = row.output
        attempts, traces = found.attempts, found.traces
    elif held is not None:
        row = _with_run_inputs(tree.running_row(held), info)
    elif action_id == info.root_action_id:
        row = tree.root_row(info, None, RunningPage())
    else:
        return None
    if facts_only:
        return ActionPanel(info, row, attempts, traces, output, (), None)
    logs = reader.action_logs(run, action_id, limit=LOG_PAGE)
    report = reader.action_report(run, action_id)
    return ActionPanel(info, row, attempts, traces, output, logs, report)


@dataclass(frozen=True, slots=True)
class LogTail:
    lines: tuple[LogEntry, ...]
    after: int
    #: Keep polling: the action may print more.
    more: bool


async def log_tail(ctx: UiContext, run: str, action_id: str, after: int) -> LogTail:
    held = ctx.live.action(run, action_id) is not None if ctx.live is not None else False
    lines = await ctx.off_loop(ctx.reader.action_logs, run, action_id, after=after, limit=LOG_PAGE)
    last = lines[-1].seq if lines else after
    if not held and not lines:
        # Not at the controller: ended (its last lines may still be on their way in) or
        # never started. Keep polling while its run is live.
        info = await ctx.off_loop(ctx.reader.get_run, run)
        held = info is not None and not info.done
    return LogTail(lines, last, more=held or len(lines) == LOG_PAGE)


def search(reader: RunReader, run: str, action_id: str, text: str) -> tuple[LogEntry, ...]:
    """The action's kept lines containing ``text`` (any case)."""
    wanted = text.casefold()
    found: list[LogEntry] = []
    after = 0
    while True:
        lines = reader.action_logs(run, action_id, after=after, limit=LOG_PAGE)
        found.extend(line for line in lines if wanted in line.text.casefold())
        if len(lines) < LOG_PAGE or len(found) >= LOG_PAGE:
            return tuple(found[:LOG_PAGE])
        after = lines[-1].seq


# ------------------------------------------------------------------ the timeline


async def timeline(ctx: UiContext, name: str) -> dict[str, Any] | None:
    held = RunningPage()
    if ctx.live is not None:
        held = ctx.live.running(name, limit=TIMELINE_RUNNING)
    return await ctx.off_loop(_timeline, ctx.reader, name, held, ctx.clock())


def _timeline(reader: RunReader, name: str, held: RunningPage, now: float) -> dict[str, Any] | None:
    """Bars per replica over time (seconds from the run's creation): every attempt of
    the first finished actions, then the running ones."""
    info = reader.get_run(name)
    if info is None:
        return None
    page = reader.list_actions(name, limit=TIMELINE_BARS)
    origin = info.created
    bars: list[dict[str, Any]] = []
    for action in page.items:
        tries = action.attempts or (
            Attempt(1, action.replica, action.started or 0.0, action.ended or 0.0, action.phase),
        )
        for attempt in tries:
            if not attempt.started:
                continue
            end = (attempt.ended or now) - origin
            bars.append(_bar(action.action_id, action.task, attempt.replica, attempt.phase,
                             attempt.started - origin, end))  # fmt: skip
    finished = {bar["id"] for bar in bars}
    for running in held.actions:
        if running.started is not None and running.action_id not in finished:
            bars.append(_bar(running.action_id, running.task, running.replica, running.phase,
                             running.started - origin, now - origin))  # fmt: skip
    total = sum(info.counts.values()) + held.total
    replicas = sorted({bar["replica"] for bar in bars})
    end = (info.ended or now) - origin
    return {
        "run": name,
        "live": not info.done,
        "end": round(end, 3),
        "shown": len({bar["id"] for bar in bars}),
        "total": total,
        "replicas": replicas,
        "bars": bars,
    }


def _bar(
    action_id: str, task: str, replica: str, phase: ActionPhase, start: float, end: float
) -> dict[str, Any]:
    return {
        "id": action_id,
        "task": task,
        "replica": replica or "(no replica)",
        "phase": phase.value,
        "start": round(start, 3),
        "end": round(max(start, end), 3),
    }


def _small(data: bytes | None) -> bytes | None:
    return data if data is not None and len(data) <= tree.ROW_PREVIEW_BYTES else None
