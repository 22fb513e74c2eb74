"""`RunBook`: the runs a controller owns, from ``CreateRun`` to their end, durably.

A run created with ``CreateRun`` belongs to the controller, not to a client's
``Submit`` stream: its root task is submitted on a session of the run's own
(:class:`~reuse_runtime.controller.service.SubmitSession`), which no client can
close, so the run goes on when the client that created it exits, is killed, or
loses its network. Its children are submitted by its replicas as before, and a
parent that stops waiting for its children still cancels them (issue 10).

* **Recorded.** The run is recorded when it is accepted, again when its root
  starts running and when it ends, with its output or error; every action of it
  once, at its end (the one per-task cost: a tuple appended to the store's queue);
  every line its tasks print.
* **Followed.** Its lines are kept in a ring (the newest :data:`RING_LINES`) that
  ``WatchRun`` streams from, with a cursor a client passes back to resume; the
  phase and, last, the root's result follow. Reads of recorded runs are in
  :mod:`~reuse_runtime.controller.run_reads`.
* **Resumed.** A controller started on a state dir finishes the runs the last one
  left unfinished (killed, or stopped with SIGTERM): it submits their roots again,
  with their task ids, so their children's call keys are the same, and answers
  every child recorded as finished from the store (durable replay), without
  running it again.
* **Refused** when the store cannot record (disk full): ``RESOURCE_EXHAUSTED``
  naming the path; running tasks go on.

An embedded controller shares its store with the user's other scripts: its runs
cannot outlive it, so those it leaves unfinished are recorded as aborted, and
unfinished runs it finds on a store no other process holds are too.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import quote

import structlog

from reuse_runtime.aio import TaskSet
from reuse_runtime.controller.conditions import ConditionBook
from reuse_runtime.controller.records import RunCounts, TaskRecord
from reuse_runtime.controller.replay import replayable
from reuse_runtime.errors import (
    BadInputError,
    ClosedError,
    RunAlreadyExistsError,
    RunNotFoundError,
    RunsStoreFullError,
)
from reuse_runtime.model import REPORT_STREAM, ErrorKind, LogLine, TaskResult, TaskState
from reuse_runtime.runinfo import (
    PHASE_OF_STATE,
    ActionPhase,
    Attempt,
    ErrorInfo,
    NewRun,
    RunInfo,
    error_info_of,
    remote_error_of,
    state_of_phase,
)
from reuse_runtime.store import (
    ActionRecord,
    LogRecord,
    ReplayOutcome,
    RunEnded,
    RunProgress,
    RunStore,
    RunSubmitted,
)
from reuse_runtime.wire.runs import decode_new_run, encode_new_run

if TYPE_CHECKING:
    from reuse_runtime.controller.service import ControllerService, SubmitSession

log = structlog.get_logger("reuse_runtime.controller")

#: Output lines of a run kept in memory for its watchers (older ones are in the store).
RING_LINES = 10_000
#: Ended runs kept in memory, with their results, for watchers that come a moment late.
ENDED_KEPT = 256
#: What a run's name may be: it names files and URLs.
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
#: A new run is refused with less free space than this where the store is (a full disk).
MIN_FREE_BYTES = 256 * 1024
#: Task names remembered per run, for its lines read back before their actions end.
_TASK_NAMES = 50_000

_RECORDED_STREAMS = frozenset({"stdout", "stderr"})


@dataclass(eq=False)
class OwnedRun:
    """One run the controller owns, while it runs and for a while after."""

    new: NewRun
    session: SubmitSession
    created: float
    phase: ActionPhase = ActionPhase.QUEUED
    started: float = 0.0
    ended: float = 0.0
    result: TaskResult | None = None
    #: The controller shut down before it ended: the next one resumes it.
    handed_back: bool = False
    #: Why it was aborted ("" while it was not).
    aborted: str = ""
    counts: RunCounts | None = None
    #: (number, line), the newest RING_LINES; numbers count from 1 at this controller.
    lines: deque[tuple[int, LogLine]] = field(default_factory=lambda: deque(maxlen=RING_LINES))
    last_line: int = 0
    task_names: dict[str, str] = field(default_factory=dict)
    _waiters: list[asyncio.Future[None]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.new.name

    @property
    def root_id(self) -> str:
        return self.new.root.task.task_id

    @property
    def over(self) -> bool:
        """Nothing more will come of it here: it ended, or went back at a shutdown."""
        return self.result is not None or self.handed_back

    def changed(self) -> None:
        """Wake its watchers."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def next_change(self) -> asyncio.Future[None]:
        """A future set at the next change (take it before reading, so none is missed)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter


class RunBook:
    """The runs of one controller. Lives on the controller's loop.

    Call-order contract: :meth:`resume` once after the service is built and before
    the server takes requests; :meth:`close` once, after the service has closed.
    """

    def __init__(
        self,
        service: ControllerService,
        store: RunStore | None,
        *,
        resumable: bool,
        url_base: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.store = store
        #: The store is this controller's alone: a restart on it finishes its runs.
        self.resumable = resumable
        #: Where run pages are served (a web UI), e.g. "http://host:8080"; "" for none.
        self.url_base = url_base
        self.clock = clock
        self.live: dict[str, OwnedRun] = {}
        #: Names this controller instance's line numbers: a cursor of another is stale.
        self.epoch = secrets.token_hex(4)
        self._ended_names: deque[str] = deque()
        self._tasks = TaskSet("runs")
        self._record = self._record_action if store is not None else None
        #: The conditions (``flyte.new_condition``) of its runs' tasks.
        self.conditions = ConditionBook(
            on_change=store.condition_changed if store is not None else None, clock=clock
        )

    # ------------------------------------------------------------ what a run looks like

    def url_of(self, name: str) -> str:
        """The run's page: the one place a run's URL is made."""
        return f"{self.url_base.rstrip('/')}/runs/{quote(name)}" if self.url_base else ""

    def info(self, run: OwnedRun) -> RunInfo:
        """A live run as it is now."""
        root = run.new.root.task
        result = run.result
        counts: dict[ActionPhase, int] = {}
        children = run.counts
        if children is not None:
            for phase, n in (
                (ActionPhase.SUCCEEDED, children.succeeded),
                (ActionPhase.FAILED, children.failed),
                (ActionPhase.RUNNING, children.running),
            ):
                if n:
                    counts[phase] = n
        own = run.phase if run.phase.is_terminal or run.phase is ActionPhase.RUNNING else None
        if own is not None:
            counts[own] = counts.get(own, 0) + 1
        error = None
        if result is not None and result.error is not None:
            error = replace(error_info_of(result.error), pickled=b"")
        return RunInfo(
            name=run.name,
            phase=run.phase,
            task=root.name,
            environment=run.new.environment.name,
            root_action_id=root.task_id,
            client=run.new.client,
            created=run.created,
            started=run.started or None,
            ended=run.ended or None,
            inputs_preview=run.new.inputs_preview,
            inputs_size=len(root.args),
            output_size=len(result.value) if result is not None and result.ok else None,
            error=error,
            labels=run.new.labels,
            counts=counts,
            url=self.url_of(run.name),
        )

    # ------------------------------------------------------------ creating and resuming

    async def create_run(self, new: NewRun) -> RunInfo:
        """Accept a run and start its root; refused when the name is taken, the store
        cannot record, or the controller is shutting down."""
        if not RUN_NAME.fullmatch(new.name):
            raise BadInputError(
                f"a run's name is 1 to 100 letters, digits, '-', '_' or '.', starting with a "
                f"letter or digit; got {new.name[:120]!r}"
            )
        if self.service.draining:
            raise ClosedError("the controller is shutting down; try again when it is back")
        store = self.store
        if store is not None:
            self._has_room(store)
            self._not_taken(new.name)
            existing = await asyncio.to_thread(store.get_run, new.name)
            if existing is not None:
                raise _exists(new.name, existing.phase, existing.created)
        self._not_taken(new.name)
        run = self._start(new, self.clock(), fresh=True)
        return self.info(run)

    def _has_room(self, store: RunStore) -> None:
        """Refuse a new run while its records could not be written (a full disk)."""
        if not store.accepting():
            stats = store.statistics()
            raise RunsStoreFullError(
                f"the controller cannot record a new run: {stats.reason or stats.state}"
            )
        path = store.statistics().path
        try:
            found = os.statvfs(os.path.dirname(path) or ".")
        except OSError:
            return
        free = found.f_bavail * found.f_frsize
        if free < MIN_FREE_BYTES:
            raise RunsStoreFullError(
                f"the controller cannot record a new run: no space left for the runs store at "
                f"{path} ({free} bytes free); running tasks go on, and new runs are taken "
                f"again when there is room"
            )

    def _not_taken(self, name: str) -> None:
        found = self.live.get(name)
        if found is not None:
            raise _exists(name, found.phase, found.created)

    def _start(self, new: NewRun, created: float, *, fresh: bool) -> OwnedRun:
        service = self.service
        key = service.register_environment(new.environment)
        root = replace(new.root, env_key=key, stream_logs=True)
        if fresh and self.store is not None:
            self.store.run_submitted(
                RunSubmitted(
                    name=new.name,
                    task=root.task.name,
                    environment=new.environment.name,
                    root_action_id=root.task.task_id,
                    created=created,
                    client=new.client,
                    inputs=new.inputs or root.task.args,
                    inputs_preview=new.inputs_preview,
                    labels=tuple(sorted(new.labels)),
                    submission=encode_new_run(new),
                )
            )
        session = service.open_session(f"run:{new.name}")
        run = OwnedRun(new, session, created)
        self.live[new.name] = run
        session.submit(root)
        session.close_input()
        record = service.tasks.get(root.task.task_id)
        if record is not None:
            record.created = created
            counts = record.run
            if counts is not None:
                counts.record = self._record
                counts.on_root_dispatched = partial(self._running, run)
                run.counts = counts
        self._tasks.spawn(self._follow(run), f"run:{new.name}")
        return run

    async def resume(self) -> int:
        """Finish what the last controller on this store left unfinished (see the module's
        docstring); returns how many runs were resumed."""
        store = self.store
        if store is None:
            return 0
        unfinished = await asyncio.to_thread(store.unfinished_runs)
        if not unfinished:
            return 0
        if not self.resumable:
            if store.alone:  # their processes are gone: nobody can finish them
                for run in unfinished:
                    self._end_recorded(
                        run.name,
                        ActionPhase.ABORTED,
                        ErrorInfo(
                            "CANCELLED",
                            "CancelledError",
                            "the process that ran it exited before it finished",
                        ),
                    )
            return 0
        resumed = 0
        for found in unfinished:
            try:
                new = decode_new_run(found.submission)
                outcomes = await asyncio.to_thread(store.replay_outcomes, found.name)
                self.service.restored[found.name] = _replay_log(outcomes)
                self.conditions.restore(await asyncio.to_thread(store.list_conditions, found.name))
                self._start(new, found.created, fresh=False)
                resumed += 1
            except Exception as exc:
                log.error("cannot resume run", run=found.name, error=f"{type(exc).__name__}: {exc}")
                self.service.restored.pop(found.name, None)
                self._end_recorded(
                    found.name,
                    ActionPhase.FAILED,
                    ErrorInfo("INTERNAL", type(exc).__name__, f"it could not be resumed: {exc}"),
                )
        log.info(
            "resumed the runs the last controller left unfinished",
            runs=resumed,
            replayed_children=sum(len(r) for r in self.service.restored.values()),
        )
        return resumed

    def _end_recorded(self, name: str, phase: ActionPhase, error: ErrorInfo) -> None:
        if self.store is not None:
            self.store.run_ended(RunEnded(name, phase, self.clock(), error=error))

    # ------------------------------------------------------------ a run's life

    def _running(self, run: OwnedRun) -> None:
        """Its root was dispatched to a replica (each attempt; the first one counts)."""
        if run.phase is not ActionPhase.QUEUED:
            return
        run.phase = ActionPhase.RUNNING
        run.started = self.clock()
        if self.store is not None:
            self.store.run_progress(RunProgress(run.name, ActionPhase.RUNNING, run.started))
        run.changed()

    async def _follow(self, run: OwnedRun) -> None:
        """The run's session: its lines, its root's result, or its root handed back."""
        session = run.session
        try:
            async for results, lines in session.batches():
                if lines:
                    self._lines(run, lines)
                if session.take_returned():
                    run.handed_back = True
                    run.changed()
                for result in results:
                    if result.task_id == run.root_id:
                        self._ended(run, result)
        finally:
            self.service.sessions.discard(session)

    def _lines(self, run: OwnedRun, lines: list[LogLine]) -> None:
        ring, names, n = run.lines, run.task_names, run.last_line
        name = run.name
        now = self.clock()
        recorded = []
        if len(names) > _TASK_NAMES:
            names.clear()
        for line in lines:
            if line.stream == REPORT_STREAM:
                # A flyte.report (its whole HTML): the store keeps it for the web UI; it is
                # no line to follow.
                recorded.append(LogRecord(name, line.task_id, REPORT_STREAM, line.text, now))
                continue
            n += 1
            ring.append((n, line))
            names[line.task_id] = line.task_name
            if line.stream in _RECORDED_STREAMS:
                recorded.append(LogRecord(name, line.task_id, line.stream, line.text, now))
        run.last_line = n
        if recorded and self.store is not None:
            self.store.log_lines(recorded)
        run.changed()

    def _ended(self, run: OwnedRun, result: TaskResult) -> None:
        if run.aborted and result.state is TaskState.CANCELLED:
            result = TaskResult.failure(
                result.task_id,
                ErrorKind.CANCELLED,
                "CancelledError",
                f"run {run.name} was aborted: {run.aborted}",
                state=TaskState.CANCELLED,
                attempts=result.attempts,
            )
        run.result = result
        run.phase = PHASE_OF_STATE[result.state]
        run.ended = self.clock()
        self.service.restored.pop(run.name, None)
        if self.store is not None:
            error = result.error
            self.store.run_ended(
                RunEnded(
                    run.name,
                    run.phase,
                    run.ended,
                    output=result.value if result.ok else b"",
                    error=None if error is None else error_info_of(error),
                )
            )
        run.changed()
        self.conditions.run_over(run.name, f"its run ended ({run.phase})")
        self._ended_names.append(run.name)
        while len(self._ended_names) > ENDED_KEPT:
            gone = self._ended_names.popleft()
            if self.live.get(gone) is not None and self.live[gone].over:
                del self.live[gone]
                self.conditions.forget(gone)

    def _record_action(self, record: TaskRecord, result: TaskResult) -> None:
        """An action of a recorded run ended: the hot path (see the module's docstring).

        One attempt (the common case) is the action itself; a retried action lists every
        attempt, the last one with the action's outcome."""
        spec = record.spec
        error = result.error
        ended = time.time()
        phase = PHASE_OF_STATE[result.state]
        info = None if error is None else error_info_of(error)
        started = record.started
        tries = record.tries
        attempts: tuple[Attempt, ...] = ()
        if tries is not None:
            last = Attempt(record.attempts, result.replica_id, started, ended, phase, info)
            attempts = (*tries, last)
            started = tries[0].started
        assert self.store is not None
        # tuple.__new__ with every field: half the cost of the named tuple's constructor.
        self.store.action_ended(
            tuple.__new__(
                ActionRecord,
                (
                    spec.run_id,
                    spec.task_id,
                    spec.parent_task_id,
                    spec.call_key,
                    spec.name,
                    record.submission.env_key.rpartition("-")[0],
                    spec.group,
                    phase,
                    record.created,
                    started,
                    ended,
                    result.replica_id,
                    "",
                    result.value if error is None else b"",
                    info,
                    attempts,
                    (),
                ),
            )
        )

    async def not_found(self, name: str) -> str:
        """One line for a run name nobody knows, naming the recent runs."""
        names = [run for run in reversed(self.live) if run != name][:5]
        if self.store is not None and len(names) < 5:
            try:
                page = await asyncio.to_thread(self.store.list_runs, limit=5)
                names += [r.name for r in page.items if r.name not in names][: 5 - len(names)]
            except Exception as exc:  # the listing is a courtesy: the answer stands
                log.warning("cannot list recent runs", error=str(exc))
        recent = ", ".join(names) if names else "none yet"
        return f"no run named {name!r}; recent runs: {recent}"

    # ------------------------------------------------------------ aborting and closing

    async def abort_run(self, name: str, reason: str, action_id: str = "") -> int:
        """Cancel every task of the run; it ends ABORTED. With ``action_id`` (not the root's),
        only that action and what it called: its caller sees it aborted, as Flyte's
        ``Action.abort`` does. Returns how many were cancelled."""
        run = self.live.get(name)
        why = f"aborted ({reason or 'by request'})"
        if run is None or run.over:
            found = None
            if self.store is not None:
                found = await asyncio.to_thread(self.store.get_run, name)
            if found is None:
                if run is not None:
                    return 0
                raise RunNotFoundError(await self.not_found(name))
            if not found.done and run is None:
                raise RunNotFoundError(
                    f"run {name!r} is not running at this controller (it was started by another "
                    f"process's embedded controller: stop it there)"
                )
            if action_id and action_id != found.root_action_id:
                await self._recorded_action(name, action_id)
            return 0
        if action_id and action_id != run.root_id:
            return await self._abort_action(name, action_id, why)
        service = self.service
        run.aborted = reason or "by request"
        targets = [r for r in service.tasks.values() if r.spec.run_id == name]
        root = service.tasks.get(run.root_id)
        if root is not None:
            service.cancel_tree(root, why)
        for record in targets:
            if not record.finished and not record.cancel_requested:
                service.cancel_tree(record, why)
        self.conditions.run_over(name, f"run {name} was aborted ({run.aborted})")
        log.info("run aborted", run=name, reason=reason, tasks=len(targets))
        return len(targets)

    async def _abort_action(self, run: str, action_id: str, why: str) -> int:
        record = self.service.tasks.get(action_id)
        if record is None or record.spec.run_id != run:
            await self._recorded_action(run, action_id)
            return 0  # it has ended
        if record.finished or record.cancel_requested:
            return 0
        self.service.cancel_tree(record, why)
        self.conditions.action_over(run, action_id, f"action {action_id} was {why}")
        log.info("action aborted", run=run, action=action_id, reason=why)
        return 1

    async def _recorded_action(self, run: str, action_id: str) -> None:
        """Raise RunNotFoundError unless the store has action ``action_id`` of ``run``."""
        store, found = self.store, None
        if store is not None:
            # An action that just ended may still be on its way to the file.
            await asyncio.to_thread(store.flush, 5.0)
            found = await asyncio.to_thread(store.get_action, run, action_id)
        if found is None:
            raise RunNotFoundError(f"run {run!r} has no action {action_id!r}")

    def handed_back(self) -> list[str]:
        """The runs that went back unfinished at this shutdown."""
        return [name for name, run in self.live.items() if run.result is None]

    async def close(self) -> None:
        """After the service closed: say what goes on to the next controller, record what
        cannot, stop following, and close the store (its last records are written)."""
        unfinished = self.handed_back()
        for name in unfinished:
            run = self.live[name]
            run.handed_back = True
            run.changed()
            if not self.resumable:
                self._end_recorded(
                    name,
                    ActionPhase.ABORTED,
                    ErrorInfo(
                        "CANCELLED", "CancelledError", "the process that ran it exited first"
                    ),
                )
        if unfinished and self.resumable:
            log.info(
                "runs handed back: a controller started on this state dir finishes them",
                runs=len(unfinished),
                names=unfinished[:10],
            )
        self.conditions.close()
        await self._tasks.cancel_all("the controller stopped")
        if self.store is not None:
            await asyncio.to_thread(self.store.close)


def _exists(name: str, phase: ActionPhase, created: float) -> RunAlreadyExistsError:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))
    return RunAlreadyExistsError(
        f"a run named {name!r} already exists ({phase}, created {when}); give this one "
        f"another name, or leave the name to the runtime"
    )


def _replay_log(outcomes: dict[str, ReplayOutcome]) -> dict[str, TaskResult]:
    """Recorded children as the results durable replay answers with (the replayable ones)."""
    results: dict[str, TaskResult] = {}
    for key, outcome in outcomes.items():
        result = _as_result(outcome)
        if result is not None and replayable(result):
            results[key] = result
    return results


def _as_result(outcome: ReplayOutcome) -> TaskResult | None:
    if outcome.phase is ActionPhase.SUCCEEDED:
        if outcome.output is None:
            return None  # too large to have been kept: it runs again
        return TaskResult("", TaskState.SUCCEEDED, value=outcome.output)
    error = outcome.error
    if error is None:
        return None
    return TaskResult("", state_of_phase(outcome.phase), error=remote_error_of(error))
