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

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reuse_runtime.store.interface import RunReader
from reuse_runtime.store.phases import ActionPhase
from reuse_runtime.store.views import ActionInfo, RunInfo
from reuse_runtime.ui.live import RunningAction, RunningPage
from reuse_runtime.ui.preview import preview

#: Rows in one page of a list.
PAGE = 50
#: Running children shown at most (the rest are counted).
RUNNING = 20
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
class LivePart:
    """What changes while a parent runs: its groups' counts, its children on replicas,
    how many wait for one. A page polls it."""

    groups: tuple[GroupRow, ...] = ()
    running: tuple[ActionRow, ...] = ()
    #: Children (members) on replicas, shown or not, and those waiting for one.
    running_total: int = 0
    waiting: int = 0
    #: Filters a group's members may be shown by: (phase, count).
    filters: tuple[tuple[ActionPhase, int], ...] = ()


@dataclass(frozen=True, slots=True)
class FinishedPart:
    """A page of the finished children (members), in the order they ended."""

    rows: tuple[ActionRow, ...] = ()
    cursor: str | None = None

    @property
    def full(self) -> bool:
        """A whole page: it no longer changes (what ends later goes on later pages)."""
        return len(self.rows) >= PAGE


@dataclass(frozen=True, slots=True)
class Children:
    """A parent's children (or one group's members): the live part and a finished page."""

    parent: str
    group: str | None
    live: LivePart
    finished: FinishedPart
    phases: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        live = self.live
        return not (live.groups or live.running or live.waiting or self.finished.rows)


class CountsCache:
    """Each parent's finished children counted by ``(group, phase)``, kept between a page's
    polls and read on from the store's mark: a poll reads what ended since the last one,
    not every child of a fan-out. Shared by the reader threads."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._found: OrderedDict[tuple[str, str], tuple[int, dict[tuple[str, ActionPhase], int]]]
        self._found = OrderedDict()
        self._lock = threading.Lock()

    def counts(
        self, reader: RunReader, run: str, parent: str
    ) -> dict[tuple[str, ActionPhase], int]:
        key = (run, parent)
        with self._lock:
            mark, known = self._found.get(key, (0, {}))
        found = reader.child_counts(run, parent, since=mark)
        merged = dict(known)
        for counted, n in found.counts.items():
            merged[counted] = merged.get(counted, 0) + n
        with self._lock:
            kept = self._found.get(key)
            if kept is None or kept[0] < found.mark:
                self._found[key] = (found.mark, merged)
            self._found.move_to_end(key)
            while len(self._found) > self._size:
                self._found.popitem(last=False)
        return merged


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


def live_part(
    counted: Mapping[tuple[str, ActionPhase], int],
    live: RunningPage,
    *,
    group: str | None = None,
    phases: Sequence[str] = (),
) -> LivePart:
    """The live part of a parent's children (``group``: of that group's members), from its
    finished children's counts and what the controller holds (``live``: its children on
    replicas, in every group, and how many wait)."""
    on_replicas: dict[str, dict[ActionPhase, int]] = {}
    for name, phase, n in live.groups:
        held = on_replicas.setdefault(name, {})
        held[phase] = held.get(phase, 0) + n
    wanted = {ActionPhase(p) for p in phases if p}
    running = tuple(
        running_row(a)
        for a in live.actions
        if (a.group == (group or "")) and (not wanted or a.phase in wanted)
    )
    if group is None:
        by_group: dict[str, dict[ActionPhase, int]] = {}
        for (name, phase), n in counted.items():
            if name:
                by_group.setdefault(name, {})[phase] = n
        for name, held in on_replicas.items():
            if name:
                for phase, n in held.items():
                    mine = by_group.setdefault(name, {})
                    mine[phase] = mine.get(phase, 0) + n
        groups = tuple(GroupRow(name, _ordered(c)) for name, c in sorted(by_group.items()))
        return LivePart(groups, running, live.total, live.waiting)
    counts = {phase: n for (name, phase), n in counted.items() if name == group}
    for phase, n in on_replicas.get(group, {}).items():
        counts[phase] = counts.get(phase, 0) + n
    return LivePart((), running, len(running), 0, _ordered(counts))


def finished_part(
    reader: RunReader,
    run: str,
    parent: str,
    *,
    group: str | None = None,
    phases: Sequence[str] = (),
    cursor: str | None = None,
) -> FinishedPart:
    """A page of ``parent``'s finished children outside any group (``group``: its members)."""
    page = reader.list_actions(
        run, parent=parent, group=group or "", phases=[p for p in phases if p], limit=PAGE,
        cursor=cursor,
    )  # fmt: skip
    return FinishedPart(tuple(_with_outputs(reader, run, page.items)), page.cursor)


def children(
    reader: RunReader,
    counts: CountsCache,
    run: str,
    parent: str,
    live: RunningPage,
    *,
    group: str | None = None,
    phases: Sequence[str] = (),
) -> Children:
    """``parent``'s children (``group``: that group's members): both parts, first page."""
    finished = finished_part(reader, run, parent, group=group, phases=phases)
    done = {row.action_id for row in finished.rows}
    held = dataclasses.replace(
        live, actions=tuple(a for a in live.actions if a.action_id not in done)
    )
    counted = counts.counts(reader, run, parent)
    part = live_part(counted, held, group=group, phases=phases)
    return Children(parent, group, part, finished, tuple(p for p in phases if p))


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
