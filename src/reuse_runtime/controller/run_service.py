"""`RunService`: the ``Runs`` service's operations, for the gRPC adapter.

Starting and aborting runs are the :class:`~reuse_runtime.controller.runs.RunBook`'s.
Reads combine two sources: the runs store (what was recorded: every finished run
and action, and the lines kept) and the book's live runs (what is running now:
their phase, their running actions, their newest lines). Store reads block, so
they run in a thread; every wait here is bounded or ends with its run.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import replace

from reuse_runtime.conditions import ConditionInfo, ConditionValue
from reuse_runtime.controller.runs import RING_LINES, OwnedRun, RunBook
from reuse_runtime.errors import RunNotFoundError, RunsStoreError
from reuse_runtime.model import LogLine, TaskSpec
from reuse_runtime.runinfo import (
    ActionInfo,
    ActionPhase,
    LogEntry,
    NewRun,
    Page,
    RunEvent,
    RunFilter,
    RunInfo,
    RunIO,
    error_info_of,
    parse_phase,
    recorded_result,
)
from reuse_runtime.store import RunStore

#: Lines per watch event at most (a run that printed a lot is sent in several).
EVENT_LINES = 1000
#: How often a watch of a run this controller does not run looks at the store.
RECORDED_POLL = 1.0
#: How often ``GetLogs --follow`` looks for new lines in the store.
LOGS_POLL = 0.25
#: A watch's cursor for "the lines printed from now on".
NOW = "now"


class RunService:
    """The controller's runs, as the ``Runs`` service offers them."""

    def __init__(self, book: RunBook) -> None:
        self.book = book

    # ------------------------------------------------------------ writes

    async def create_run(self, run: NewRun) -> RunInfo:
        return await self.book.create_run(run)

    async def abort_run(self, name: str, reason: str, action_id: str = "") -> int:
        return await self.book.abort_run(name, reason, action_id)

    # ------------------------------------------------------------ conditions

    async def create_condition(self, info: ConditionInfo) -> ConditionInfo:
        run = self.book.live.get(info.run)
        if run is None or run.over:
            # Only a run the controller owns ends its conditions (and frees them).
            raise RunNotFoundError(
                f"run {info.run!r} is not running at this controller as a run it owns "
                f"(started with flyte.run): its tasks cannot create conditions"
            )
        return self.book.conditions.create(info)

    async def list_conditions(self, run: str, parent: str | None) -> list[ConditionInfo]:
        found = self.book.conditions.list(run, parent)
        if found:
            return found
        await self.get_run(run)  # a run nobody knows is an error, not "none"
        store = self.book.store
        if store is None or run in self.book.live:
            return found
        return await asyncio.to_thread(store.list_conditions, run, parent)

    async def signal_condition(self, run: str, name: str, value: ConditionValue) -> ConditionInfo:
        return self.book.conditions.signal(run, name, value)

    async def wait_condition(self, run: str, action_id: str, max_wait: float) -> ConditionInfo:
        return await self.book.conditions.wait(run, action_id, max_wait)

    # ------------------------------------------------------------ runs

    def _store(self) -> RunStore:
        if self.book.store is None:
            raise RunsStoreError(
                "this controller keeps no record of runs (it was started with recording off)"
            )
        return self.book.store

    async def _recorded(self, name: str) -> RunInfo:
        store = self.book.store
        found = None if store is None else await asyncio.to_thread(store.get_run, name)
        if found is None:
            raise RunNotFoundError(await self.book.not_found(name))
        return replace(found, url=self.book.url_of(name))

    async def get_run(self, name: str) -> RunInfo:
        run = self.book.live.get(name)
        if run is not None:
            return self.book.info(run)
        return await self._recorded(name)

    async def list_runs(self, where: RunFilter, limit: int, cursor: str | None) -> Page[RunInfo]:
        book = self.book
        page = await asyncio.to_thread(self._store().list_runs, where, limit=limit, cursor=cursor)
        items = [
            book.info(live) if (live := book.live.get(r.name)) is not None else r
            for r in page.items
        ]
        if cursor is None:  # the newest may not be written yet: the live ones say them
            listed = {r.name for r in items}
            newest = items[0].created if items else 0.0
            fresh = [
                book.info(run)
                for run in book.live.values()
                if run.name not in listed and run.created >= newest
            ]
            items = (
                sorted([r for r in fresh if _matches(r, where)], key=lambda r: -r.created) + items
            )
            items = items[:limit]
        return Page(
            tuple(r if r.url else replace(r, url=book.url_of(r.name)) for r in items), page.cursor
        )

    async def watch_run(self, name: str, logs: bool, cursor: str) -> AsyncIterator[RunEvent]:
        """The run's phase when it changes, its lines (``logs``) and, last, its result.

        A live run is followed from memory; ``cursor`` (from an earlier event) resumes
        after the lines already seen. A run this controller does not run (recorded,
        or another process's) is followed in the store until it ends.
        """
        book = self.book
        run = book.live.get(name)
        if run is None:
            async for event in self._watch_recorded(name):
                yield event
            return
        seen = _line_after(cursor, book.epoch, run)
        shown: ActionPhase | None = None
        while True:
            change = run.next_change()
            try:
                lines = _lines_after(run, seen) if logs else []
                if lines:
                    seen = lines[-1][0]
                info = book.info(run) if run.phase is not shown else None
                if lines or info is not None:
                    shown = run.phase
                    yield RunEvent(
                        run=info,
                        lines=tuple(line for _, line in lines),
                        cursor=f"{book.epoch}:{seen}",
                    )
                    if lines and lines[-1][0] < run.last_line:
                        continue  # more waiting
                if run.result is not None:
                    yield RunEvent(result=run.result, cursor=f"{book.epoch}:{seen}")
                    return
                if run.handed_back:
                    return  # the controller is shutting down: the next one resumes it
                await change
            finally:
                change.cancel()

    async def _watch_recorded(self, name: str) -> AsyncIterator[RunEvent]:
        info = await self._recorded(name)
        yield RunEvent(run=info)
        while not info.done:
            await asyncio.sleep(RECORDED_POLL)
            live = self.book.live.get(name)
            if live is not None:  # resumed meanwhile
                async for event in self.watch_run(name, False, ""):
                    yield event
                return
            now = await self._recorded(name)
            if now.phase is not info.phase:
                yield RunEvent(run=now)
            info = now
        output = await asyncio.to_thread(self._store().run_output, name)
        yield RunEvent(result=recorded_result(info, output))

    # ------------------------------------------------------------ actions

    async def list_actions(
        self,
        run: str,
        *,
        parent: str | None,
        group: str | None,
        phases: tuple[ActionPhase, ...],
        limit: int,
        cursor: str | None,
    ) -> Page[ActionInfo]:
        store = self._store()
        live = self.book.live.get(run)
        if live is None:
            await self._recorded(run)  # a name nobody knows: say so
        page = await asyncio.to_thread(
            store.list_actions,
            run,
            parent=parent,
            group=group,
            phases=phases,
            limit=limit,
            cursor=cursor,
        )
        if live is None or page.cursor is not None:
            return page
        # The last page: the actions running now come after the finished ones.
        recorded = {a.action_id for a in page.items}
        running = [
            action
            for action in self._running_actions(live)
            if action.action_id not in recorded
            and (parent is None or action.parent_id == parent)
            and (group is None or action.group == group)
            and (not phases or action.phase in phases)
        ]
        return Page(page.items + tuple(running[: max(0, limit - len(page.items))]), None)

    def _running_actions(self, run: OwnedRun) -> list[ActionInfo]:
        found = []
        for record in self.book.service.tasks.values():
            spec = record.spec
            if spec.run_id != run.name:
                continue
            phase = ActionPhase.RUNNING if record.replica is not None else ActionPhase.QUEUED
            found.append(_action(run.name, spec, record.submission.env_key, phase, record.created))
        return found

    async def get_action(self, run: str, action_id: str) -> ActionInfo:
        store = self._store()
        found = await asyncio.to_thread(store.get_action, run, action_id)
        if found is not None:
            return found
        live = self.book.live.get(run)
        if live is not None:
            for action in self._running_actions(live):
                if action.action_id == action_id:
                    return action
        else:
            await self._recorded(run)
        raise RunNotFoundError(f"run {run!r} has no action {action_id!r}")

    # ------------------------------------------------------------ logs and io

    async def get_logs(
        self, run: str, action_id: str, follow: bool, after: int
    ) -> AsyncIterator[list[LogEntry]]:
        """The lines kept in the store, in order; with ``follow``, new ones as they are
        written, until the run has ended and its last lines were read."""
        store = self._store()
        live = self.book.live.get(run)
        if live is None:
            info = await self._recorded(run)
            ended = info.done
        else:
            ended = False
        while True:
            if action_id:
                batch = await asyncio.to_thread(store.action_logs, run, action_id, after=after)
            else:
                batch = await asyncio.to_thread(store.run_logs, run, after=after)
            if batch:
                after = batch[-1].seq
                yield [self._named(live, entry) for entry in batch]
                continue
            if not follow or ended:
                return
            live = self.book.live.get(run)
            if live is None or live.over:
                # Its last lines may still be on their way to the store: one more look.
                await asyncio.to_thread(store.flush, 5.0)
                ended = True
                continue
            await asyncio.sleep(LOGS_POLL)

    def _named(self, live: OwnedRun | None, entry: LogEntry) -> LogEntry:
        if entry.task or live is None:
            return entry
        task = live.task_names.get(entry.action_id, "")
        return replace(entry, task=task) if task else entry

    async def get_run_io(self, run: str, action_id: str) -> RunIO:
        store = self._store()
        if action_id:
            action = await self.get_action(run, action_id)
            output = await asyncio.to_thread(store.action_output, run, action_id)
            error = action.error
            return RunIO(
                phase=action.phase,
                inputs_preview=action.inputs_preview,
                output=output if error is None and action.phase is ActionPhase.SUCCEEDED else None,
                error=replace(error, pickled=output or b"") if error is not None else None,
            )
        live = self.book.live.get(run)
        if live is not None:
            result = live.result
            return RunIO(
                phase=live.phase,
                inputs_preview=live.new.inputs_preview,
                inputs=live.new.inputs or bytes(live.new.root.task.args),
                output=bytes(result.value) if result is not None and result.ok else None,
                error=error_info_of(result.error)
                if result is not None and result.error is not None
                else None,
            )
        info = await self._recorded(run)
        inputs = await asyncio.to_thread(store.run_inputs, run)
        output = await asyncio.to_thread(store.run_output, run)
        return RunIO(
            phase=info.phase,
            inputs_preview=info.inputs_preview,
            inputs=inputs,
            output=output if info.phase is ActionPhase.SUCCEEDED else None,
            error=replace(info.error, pickled=output or b"") if info.error is not None else None,
        )


def _line_after(cursor: str, epoch: str, run: OwnedRun) -> int:
    """The last line a cursor of this controller saw; 0 (from the start) for any other;
    ``now``: the run's last line (only what it prints from now on)."""
    if cursor == NOW:
        return run.last_line
    made, _, seen = cursor.partition(":")
    return int(seen) if made == epoch and seen.isdigit() else 0


def _lines_after(run: OwnedRun, seen: int) -> list[tuple[int, LogLine]]:
    """The lines after number ``seen``; when the ring has moved past some of them (printed
    faster than this watch read them), a line saying how many first: never a silent gap."""
    ring = run.lines
    if not ring or ring[-1][0] <= seen:
        return []
    first = ring[0][0]
    start = max(0, seen - first + 1)
    lines = list(itertools.islice(ring, start, start + EVENT_LINES))
    if first > seen + 1:
        missed = first - seen - 1
        gap = LogLine(
            task_id="", task_name="reuse-runtime", run_id=run.name, stream="stderr",
            text=(
                f"{missed:,} lines not shown: printed faster than this watch read them (the "
                f"controller keeps the newest {RING_LINES:,} for watchers); the run's record "
                f"keeps each task's first and last lines: reuse-runtime logs {run.name}"
            ),
        )  # fmt: skip
        lines.insert(0, (first - 1, gap))
    return lines


def _matches(run: RunInfo, where: RunFilter) -> bool:
    labels = dict(run.labels)
    return (
        (not where.phases or run.phase in {parse_phase(p) for p in where.phases})
        and where.environment in (None, run.environment)
        and where.task in (None, run.task)
        and (not where.name_contains or where.name_contains in run.name)
        and where.user in (None, run.client.user)
        and all(labels.get(k) == v for k, v in where.labels)
        and all(k in labels for k in where.label_keys)
        and (where.created_after is None or run.created >= where.created_after)
        and (where.created_before is None or run.created <= where.created_before)
    )


def _action(
    run: str, spec: TaskSpec, env_key: str, phase: ActionPhase, created: float
) -> ActionInfo:
    return ActionInfo(
        run=run,
        action_id=spec.task_id,
        parent_id=spec.parent_task_id,
        call_key=spec.call_key,
        task=spec.name,
        environment=env_key.rpartition("-")[0],
        group=spec.group,
        phase=phase,
        created=created or time.time(),
        started=None,
        ended=None,
        replica="",
        inputs_preview="",
        output_size=None,
        error=None,
        attempts=(),
        traces=(),
    )
