"""The rows of a run's action tree, from the store's finished actions and the live ones.

A parent's children show as:

* its ``flyte.group()`` and ``flyte.map`` calls folded, one row per group with its
  counts per phase (a map of 100,000 calls is one row until opened);
* then the children outside any group: those running first, then the finished
  ones a page at a time (the store's cursor), in the order they ended.

A group opened shows its members the same way. Every list is a page: opening a
run of any size reads a bounded number of rows. Functions here are pure and
blocking (store reads): the UI runs them in its reader threads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from reuse_runtime.store.interface import RunReader
from reuse_runtime.store.phases import ActionPhase
from reuse_runtime.store.views import ActionInfo, RunInfo
from reuse_runtime.ui.live import RunningAction, RunningPage
from reuse_runtime.ui.preview import preview

#: Rows in one page of a list.
PAGE = 50
#: Outputs up to this size are previewed on their row (larger: on the action's page).
ROW_PREVIEW_BYTES = 4096
#: The phases in the order their counts show.
PHASE_ORDER = (
    ActionPhase.RUNNING,
    ActionPhase.QUEUED,
    ActionPhase.SUCCEEDED,
    ActionPhase.FAILED,
    ActionPhase.ABORTED,
    ActionPhase.TIMED_OUT,
)


@dataclass(frozen=True, slots=True)
class ActionRow:
    """One action as a row of the tree (finished, or held by the controller: ``live``)."""

    action_id: str
    parent_id: str
    task: str
    environment: str
    group: str
    phase: ActionPhase
    live: bool
    attempts: int
    replica: str
    created: float | None
    started: float | None
    ended: float | None
    inputs: str = ""
    output: str = ""
    output_size: int | None = None
    error_type: str = ""
    error_message: str = ""
    traceback: str = ""
    children: int = 0

    def duration(self, now: float) -> float | None:
        if self.started is None:
            return None
        return (self.ended if self.ended is not None else now) - self.started

    def queued_for(self) -> float | None:
        if self.created is None or self.started is None:
            return None
        return max(0.0, self.started - self.created)


@dataclass(frozen=True, slots=True)
class GroupRow:
    """A folded ``flyte.group()`` (or ``flyte.map``) under one parent, with its counts."""

    name: str
    counts: tuple[tuple[ActionPhase, int], ...]

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)


@dataclass(frozen=True, slots=True)
class Children:
    """One page of a parent's children (or of one group's members)."""

    parent: str
    group: str | None
    groups: tuple[GroupRow, ...] = ()
    running: tuple[ActionRow, ...] = ()
    #: How many children (members) the controller holds, shown or not.
    running_total: int = 0
    finished: tuple[ActionRow, ...] = ()
    cursor: str | None = None
    phases: tuple[str, ...] = ()
    #: Filters a group's members may be shown by: (phase, count).
    filters: tuple[tuple[ActionPhase, int], ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not (self.groups or self.running or self.finished)


def finished_row(action: ActionInfo, output: bytes | None = None) -> ActionRow:
    error = action.error
    return ActionRow(
        action_id=action.action_id,
        parent_id=action.parent_id,
        task=action.task,
        environment=action.environment,
        group=action.group,
        phase=action.phase,
        live=False,
        attempts=max(1, len(action.attempts)),
        replica=action.replica,
        created=action.created or None,
        started=action.started,
        ended=action.ended,
        inputs=action.inputs_preview,
        output=preview(output) if output is not None else _sized(action.output_size),
        output_size=action.output_size,
        error_type=error.type if error is not None else "",
        error_message=error.message if error is not None else "",
        traceback=error.traceback if error is not None else "",
        children=action.children,
    )


def running_row(action: RunningAction) -> ActionRow:
    return ActionRow(
        action_id=action.action_id,
        parent_id=action.parent_id,
        task=action.task,
        environment=action.environment,
        group=action.group,
        phase=action.phase,
        live=True,
        attempts=max(1, action.attempts),
        replica=action.replica,
        created=action.created,
        started=action.started,
        ended=None,
        children=0,
    )


def root_row(run: RunInfo, found: ActionInfo | None, live: RunningPage) -> ActionRow:
    """The run's root: as recorded when it ended, else as the controller holds it, else
    as the run was submitted."""
    if found is not None:
        return finished_row(found)
    held = next((a for a in live.actions if a.action_id == run.root_action_id), None)
    if held is not None:
        return running_row(held)
    return ActionRow(
        action_id=run.root_action_id,
        parent_id="",
        task=run.task,
        environment=run.environment,
        group="",
        phase=run.phase,
        live=not run.phase.is_terminal,
        attempts=1,
        replica="",
        created=run.created,
        started=run.started,
        ended=run.ended,
        inputs=run.inputs_preview,
        error_type=run.error.type if run.error is not None else "",
        error_message=run.error.message if run.error is not None else "",
        traceback=run.error.traceback if run.error is not None else "",
    )


def children(
    reader: RunReader,
    run: str,
    parent: str,
    live: RunningPage,
    *,
    group: str | None = None,
    phases: Sequence[str] = (),
    cursor: str | None = None,
) -> Children:
    """A page of ``parent``'s children; with ``group``, of that group's members.

    ``live`` is what the controller holds of the parent's children outside any group
    (of the group's members, when one is given), with its counts per group. A page
    past the first (``cursor``) has only finished rows.
    """
    listed = [p for p in phases if p]
    page = reader.list_actions(
        run, parent=parent, group=group or "", phases=listed, limit=PAGE, cursor=cursor
    )
    finished = tuple(_with_outputs(reader, run, page.items))
    done = {row.action_id for row in finished}
    if cursor is not None:
        return Children(parent, group, finished=finished, cursor=page.cursor, phases=tuple(listed))
    held = [a for a in live.actions if a.action_id not in done]
    groups: tuple[GroupRow, ...] = ()
    filters: tuple[tuple[ActionPhase, int], ...] = ()
    if group is None:
        summaries = {g.group: dict(g.counts) for g in reader.groups(run, parent) if g.group}
        for name, phase, n in live.groups:
            if name:
                counts = summaries.setdefault(name, {})
                counts[phase] = counts.get(phase, 0) + n
        groups = tuple(
            GroupRow(name, _ordered(counts)) for name, counts in sorted(summaries.items())
        )
        held = [a for a in held if not a.group]
    else:
        counts = next((dict(g.counts) for g in reader.groups(run, parent) if g.group == group), {})
        for name, phase, n in live.groups:
            if name == group:
                counts[phase] = counts.get(phase, 0) + n
        filters = _ordered(counts)
    wanted = {ActionPhase(p) for p in listed}
    running = tuple(
        running_row(a)
        for a in sorted(held, key=lambda a: a.phase is not ActionPhase.RUNNING)
        if not wanted or a.phase in wanted
    )
    return Children(
        parent,
        group,
        groups=groups,
        running=running,
        running_total=live.total,
        finished=finished,
        cursor=page.cursor,
        phases=tuple(listed),
        filters=filters,
    )


def _with_outputs(reader: RunReader, run: str, actions: Sequence[ActionInfo]) -> list[ActionRow]:
    rows = []
    for action in actions:
        small = action.output_size is not None and action.output_size <= ROW_PREVIEW_BYTES
        output = reader.action_output(run, action.action_id) if small else None
        rows.append(finished_row(action, output))
    return rows


def _ordered(counts: Mapping[ActionPhase, int]) -> tuple[tuple[ActionPhase, int], ...]:
    known = [(phase, counts[phase]) for phase in PHASE_ORDER if counts.get(phase)]
    others = [(p, n) for p, n in counts.items() if p not in PHASE_ORDER and n]
    return tuple(known + others)


def _sized(size: int | None) -> str:
    return "" if size is None else f"<{size} bytes>"
