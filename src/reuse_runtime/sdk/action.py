"""``flyte.remote``'s action side: ``Action``, ``ActionDetails``, ``ActionInputs``,
``RunDetails`` and ``TimeFilter``, under Flyte's names and signatures.

An action is one task call of a run (the run's root is one too). What is read
comes from a :class:`~reuse_runtime.sdk.runsource.RunSource`: the controller, or,
with none, the local runs store. Each blocking call has its ``.aio`` form where
Flyte has one::

    from reuse_runtime.remote import Action

    for action in Action.listall(for_run_name="r20261201-120000-abc123", in_phase=("failed",)):
        print(action.name, action.task_name, action.phase)
"""

from __future__ import annotations

import pickle
import sys
from collections import UserDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from reuse_runtime.runinfo import ActionInfo, ActionPhase, LogEntry, RunInfo, RunIO, parse_phase
from reuse_runtime.sdk.aio import BlockingClassMethod, BlockingMethod, IteratingMethod
from reuse_runtime.sdk.outputs import ActionOutputs
from reuse_runtime.sdk.runsource import RunSource, default_source


@dataclass
class TimeFilter:
    """Entries at or after ``after`` and before ``before`` (Flyte's ``TimeFilter``)."""

    after: datetime | None = None
    before: datetime | None = None

    def bounds(self) -> tuple[float | None, float | None]:
        """As seconds since the epoch (a naive datetime is taken as UTC, as Flyte does)."""
        return _seconds(self.after), _seconds(self.before)


def _seconds(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


#: Flyte's name for a run's root action: what the root's ``name`` reads, and accepted
#: wherever an action is named (its recorded id is the controller's, as every action's).
ROOT_ACTION = "a0"


def action_id_of(source: RunSource, run: str, name: str) -> str:
    """The recorded id of action ``name`` of ``run`` (``a0``: the root's)."""
    return source.get(run).root_action_id if name == ROOT_ACTION else name


def _phases(in_phase: tuple[ActionPhase | str, ...] | None) -> tuple[ActionPhase, ...]:
    return tuple(parse_phase(p) for p in in_phase or ())


def _when(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=timezone.utc)


class ActionInputs(UserDict[str, Any]):
    """A run's (or an action's) inputs by name, as a dict (Flyte's ``ActionInputs``)."""


def inputs_of(io: RunIO) -> ActionInputs:
    """The inputs a run recorded: by name, or (an older record) its arguments."""
    if io.inputs is None:
        return ActionInputs()
    value = pickle.loads(io.inputs)
    if isinstance(value, dict):
        return ActionInputs(value)
    args, kwargs = value
    return ActionInputs({**{f"arg{i}": v for i, v in enumerate(args)}, **kwargs})


def outputs_of(io: RunIO, task: str) -> ActionOutputs:
    """The outputs of a run (or action) that succeeded; raises the error of one that did not."""
    from reuse_runtime.runinfo import remote_error_of

    if io.error is not None:
        raise remote_error_of(io.error).to_exception(task)
    if io.phase is not ActionPhase.SUCCEEDED:
        raise RuntimeError(f"{task} has no outputs yet: it is {io.phase}")
    if io.output is None:
        raise RuntimeError(f"the outputs of {task} were too large to keep")
    return ActionOutputs.of(pickle.loads(io.output))


def print_logs(
    entries: Iterator[LogEntry], *, max_lines: int | None, show_ts: bool, raw: bool
) -> None:
    """Lines as ``[task] text``; with ``max_lines``, only the last ones."""
    shown: list[str] | None = [] if max_lines else None
    for line in log_lines(entries, show_ts=show_ts, label=True):
        if shown is None:
            print(line, flush=True)
        else:
            shown.append(line)
            if len(shown) > (max_lines or 0):
                del shown[0]
    for line in shown or ():
        print(line)
    sys.stdout.flush()


def run_actions(
    source: RunSource,
    run: str,
    most: int = sys.maxsize,
    *,
    parent: str | None = None,
    phases: tuple[ActionPhase, ...] = (),
) -> tuple[list[ActionInfo], bool]:
    """The run's actions (``parent``: its children; ``phases``: only those), oldest
    first, ``most`` at most, read page by page; and whether there were more."""
    found: list[ActionInfo] = []
    cursor = None
    while len(found) < most:
        page = source.actions(
            run, parent=parent, phases=phases, limit=min(1000, most - len(found)), cursor=cursor
        )
        found.extend(page.items)
        cursor = page.cursor
        if cursor is None:
            return found, False
    return found, True


def log_lines(entries: Iterator[LogEntry], *, show_ts: bool, label: bool) -> Iterator[str]:
    for entry in entries:
        text = entry.text
        if label and entry.task:
            text = f"[{entry.task}] {text}"
        if entry.dropped_before:
            yield f"... {entry.dropped_before} lines not kept ..."
        if show_ts:
            stamp = datetime.fromtimestamp(entry.at, tz=timezone.utc).isoformat(
                timespec="milliseconds"
            )
            text = f"{stamp} {text}"
        yield text


class Action:
    """One task call of a run, as recorded (Flyte's ``flyte.remote.Action``)."""

    def __init__(
        self, info: ActionInfo, source: RunSource | None = None, root: str | None = None
    ) -> None:
        self._info = info
        self._source = source
        self._root = root  # the run's root action id, read when first needed

    def _from(self) -> RunSource:
        if self._source is None:
            self._source = default_source()
        return self._source

    # ------------------------------------------------------------ finding actions

    @staticmethod
    def _listall(
        cls: type[Action],
        for_run_name: str,
        in_phase: tuple[ActionPhase | str, ...] | None = None,
        parent_name: str | None = None,
        sort_by: tuple[str, Literal["asc", "desc"]] | None = None,
        created_at: TimeFilter | None = None,
        updated_at: TimeFilter | None = None,
    ) -> Iterator[Action]:
        """Every action of run ``for_run_name`` (``in_phase``: only those; ``parent_name``:
        only its children), oldest first, or by ``sort_by=("created_at", "desc")``."""
        source = default_source()
        root = source.get(for_run_name).root_action_id
        after, before = created_at.bounds() if created_at is not None else (None, None)
        parent = root if parent_name == ROOT_ACTION else parent_name
        infos, _ = run_actions(source, for_run_name, parent=parent, phases=_phases(in_phase))
        found = [
            cls(info, source, root)
            for info in infos
            if (after is None or info.created >= after)
            and (before is None or info.created < before)
        ]
        key, direction = sort_by or ("created_at", "asc")
        order = {"created_at": lambda a: a._info.created, "name": lambda a: a.name}.get(
            key, lambda a: a._info.created
        )
        yield from sorted(found, key=order, reverse=direction == "desc")

    listall = IteratingMethod(_listall, classmethod=True)

    @staticmethod
    def _get(
        cls: type[Action],
        uri: str | None = None,
        /,
        run_name: str | None = None,
        name: str | None = None,
    ) -> Action:
        """Action ``name`` of run ``run_name`` (or ``uri``, ``RUN/ACTION``)."""
        if uri:
            run_name, _, name = uri.rpartition("/")
        if not run_name or not name:
            raise ValueError("Action.get needs run_name= and name= (or a 'RUN/ACTION' uri)")
        source = default_source()
        return cls(source.action(run_name, action_id_of(source, run_name, name)), source)

    get = BlockingClassMethod(_get)

    # ------------------------------------------------------------ what it is

    @property
    def name(self) -> str:
        """Its name in the run: ``a0`` for the root, as in Flyte; else its id."""
        return self._info.action_id if self._info.parent_id else ROOT_ACTION

    @property
    def action_id(self) -> str:
        """The id the controller recorded it under (the root's too)."""
        return self._info.action_id

    @property
    def run_name(self) -> str:
        return self._info.run

    @property
    def phase(self) -> ActionPhase:
        return self._info.phase

    @property
    def task_name(self) -> str | None:
        return self._info.task or None

    @property
    def parent_name(self) -> str | None:
        """The action that called this one (``a0``: the root); None for the root."""
        parent = self._info.parent_id
        if not parent:
            return None
        if self._root is None:
            self._root = self._from().get(self.run_name).root_action_id
        return ROOT_ACTION if parent == self._root else parent

    @property
    def group(self) -> str:
        return self._info.group

    @property
    def start_time(self) -> datetime:
        return _when(self._info.started or self._info.created) or datetime.now(timezone.utc)

    @property
    def end_time(self) -> datetime | None:
        return _when(self._info.ended)

    @property
    def attempts(self) -> int:
        return max(1, len(self._info.attempts))

    @property
    def error_info(self) -> Any:
        """Why it did not succeed (kind, type, message, traceback), or None."""
        return self._info.error

    @property
    def info(self) -> ActionInfo:
        """Everything recorded of it."""
        return self._info

    def done(self) -> bool:
        return self._info.phase.is_terminal

    def __repr__(self) -> str:
        return (
            f"Action(run={self.run_name!r}, name={self.name!r}, task={self.task_name!r}, "
            f"phase={self.phase.value!r})"
        )

    # ------------------------------------------------------------ what it did

    def _sync(self) -> Action:
        self._info = self._from().action(self.run_name, self.action_id)
        return self

    sync = BlockingMethod(_sync)

    def _details(self) -> ActionDetails:
        return ActionDetails(self._from().action(self.run_name, self.action_id), self._source)

    details = BlockingMethod(_details)

    def _outputs(self) -> ActionOutputs:
        io = self._from().io(self.run_name, self.action_id)
        return outputs_of(io, self._info.task or self.action_id)

    outputs = BlockingMethod(_outputs)

    def _inputs(self) -> ActionInputs:
        root = not self._info.parent_id
        return inputs_of(self._from().io(self.run_name, "" if root else self.action_id))

    inputs = BlockingMethod(_inputs)

    def _abort(self, reason: str = "Manually aborted from the SDK.") -> None:
        """Abort this action and what it called; its caller gets ``ActionAbortedError``.
        The root's abort is the run's."""
        self._from().abort(self.run_name, reason, self.action_id)

    abort = BlockingMethod(_abort)

    def _get_logs(
        self, attempt: int | None = None, filter_system: bool = False, show_ts: bool = False
    ) -> Iterator[str]:
        entries = self._from().logs(self.run_name, self.action_id)
        return log_lines(entries, show_ts=show_ts, label=False)

    get_logs = IteratingMethod(_get_logs)

    def _show_logs(
        self,
        attempt: int | None = None,
        max_lines: int = 30,
        show_ts: bool = False,
        raw: bool = False,
        filter_system: bool = False,
    ) -> None:
        entries = self._from().logs(self.run_name, self.action_id)
        print_logs(entries, max_lines=None if raw else max_lines, show_ts=show_ts, raw=raw)

    show_logs = BlockingMethod(_show_logs)


class ActionDetails(Action):
    """An action with what it did (Flyte's ``ActionDetails``): the same reads as
    :class:`Action`; ``is_running``, ``runtime`` and ``error_info`` besides."""

    @property
    def is_running(self) -> bool:
        return self._info.phase is ActionPhase.RUNNING

    @property
    def runtime(self) -> float:
        """Seconds it ran (so far)."""
        start = self._info.started or self._info.created
        end = self._info.ended or datetime.now(timezone.utc).timestamp()
        return max(0.0, end - start)


class RunDetails:
    """A run with what it did (Flyte's ``RunDetails``)."""

    def __init__(self, info: RunInfo, source: RunSource | None = None) -> None:
        self.info = info
        self._source = source

    @staticmethod
    def _get(cls: type[RunDetails], name: str | None = None) -> RunDetails:
        if not name:
            raise ValueError("RunDetails.get needs the run's name")
        source = default_source()
        return cls(source.get(name), source)

    get = BlockingClassMethod(_get)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def task_name(self) -> str | None:
        return self.info.task or None

    @property
    def action_id(self) -> str:
        return self.info.root_action_id

    @property
    def phase(self) -> ActionPhase:
        return self.info.phase

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.info.labels)

    def done(self) -> bool:
        return self.info.done

    def _from(self) -> RunSource:
        if self._source is None:
            self._source = default_source()
        return self._source

    async def inputs(self) -> ActionInputs:
        import asyncio

        return inputs_of(await asyncio.to_thread(self._from().io, self.name))

    async def outputs(self) -> ActionOutputs:
        import asyncio

        io = await asyncio.to_thread(self._from().io, self.name)
        return outputs_of(io, self.info.task or self.name)

    def __repr__(self) -> str:
        return (
            f"RunDetails(name={self.name!r}, phase={self.phase.value!r}, task={self.task_name!r})"
        )
