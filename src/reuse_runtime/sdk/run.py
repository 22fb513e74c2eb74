"""`Run`: one run, started here by ``flyte.run`` or found by name, under Flyte's names.

The run belongs to the controller that runs it. A run started here
(:meth:`Runtime.start_run <reuse_runtime.sdk.runtime.Runtime.start_run>`) is
followed at once: its tasks' output lines arrive as they are printed (and go to
its log file, ``Run.url`` when no web page serves it), its phase as it changes,
and at the end its result. A run found by name (``Run.get``, ``Run.listall``)
is followed when asked (``wait``, ``outputs``, ``watch``). Either way what it
asks goes through a :class:`~reuse_runtime.sdk.runsource.RunSource`: the
controller, or with none the local runs store.

**Ctrl-C in** :meth:`Run.wait` does one thing and says it in one line: against a
standalone controller the run goes on and this process stops following it (the
line names ``reuse-runtime abort run NAME``, which stops it); with the embedded
controller, which is this process, the run is cancelled.

Waiting blocks the caller's thread at most :data:`WAKE_SECONDS` at a time, so a
Ctrl-C reaches it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import queue
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

from reuse_runtime import runlog
from reuse_runtime.errors import ClosedError
from reuse_runtime.model import LogLine, RunOptions, RunProgress, TaskResult
from reuse_runtime.paths import private_dir
from reuse_runtime.runinfo import (
    PHASE_OF_STATE,
    ActionInfo,
    ActionPhase,
    RunFilter,
    RunInfo,
    parse_phase,
)
from reuse_runtime.sdk.action import (
    Action,
    ActionDetails,
    ActionInputs,
    RunDetails,
    TimeFilter,
    inputs_of,
    log_lines,
    print_logs,
)
from reuse_runtime.sdk.aio import BlockingClassMethod, BlockingMethod, IteratingMethod
from reuse_runtime.sdk.outputs import ActionOutputs, declares_no_output
from reuse_runtime.sdk.runsource import RunSource, default_source


@dataclass(frozen=True)
class RunSettings:
    """What ``with_runcontext`` sets for one run."""

    name: str | None = None
    env_vars: dict[str, str] = field(default_factory=dict)
    overwrite_cache: bool = False
    disable_run_cache: bool = False
    custom_context: dict[str, str] = field(default_factory=dict)
    log_level: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    run_start_time: datetime | None = None
    #: Flyte's ``copy_style``: which of the project's files the run's code bundle holds.
    copy_style: str = "loaded_modules"

    def run_options(self) -> RunOptions | None:
        """The options every task of the run carries, or None when there are none."""
        if not (self.env_vars or self.overwrite_cache or self.disable_run_cache or self.log_level):
            return None
        return RunOptions(
            overwrite_cache=self.overwrite_cache,
            disable_cache=self.disable_run_cache,
            env_vars=tuple(sorted(self.env_vars.items())),
            log_level=int(self.log_level or 0),
        )


class RunHost(Protocol):
    """The runtime that started a run, as the run sees it."""

    @property
    def endpoint(self) -> str: ...

    @property
    def embedded(self) -> bool: ...

    def reported(self, run: Run) -> None:
        """The run's outcome was shown, or it was let go: it need not be finished at exit."""
        ...

    def forget(self, run: Run) -> None:
        """The run ended."""
        ...


_DONE = object()
#: The longest the caller's thread blocks at a time. Python runs a signal's handler in
#: the main thread only once that thread wakes: a Ctrl-C the kernel hands to another
#: thread must not leave a wait with no end deaf to it.
WAKE_SECONDS = 0.5
#: Streams shown in the run's log file only (not on the terminal).
_LOG_ONLY = frozenset({"cache", "trace"})
#: How long a cancelled embedded run is given to end after a Ctrl-C.
CANCEL_WAIT = 10.0
_STATUS = {
    ActionPhase.SUCCEEDED: "succeeded",
    ActionPhase.FAILED: "failed",
    ActionPhase.ABORTED: "cancelled",
    ActionPhase.TIMED_OUT: "timed out",
}


class Run:
    """A run: its name, where to see it, its phase, and its outcome (Flyte's ``Run``).

    ``wait()`` and ``outputs()`` block; ``await r.wait.aio()`` and
    ``await r.outputs.aio()`` are their async forms, as in Flyte. ``Run.get(name)``
    finds a run by name from any process that reaches its controller, and
    ``Run.listall(...)`` lists them.
    """

    def __init__(
        self,
        source: RunSource,
        name: str,
        *,
        info: RunInfo | None = None,
        task: Any = None,
        host: RunHost | None = None,
        log_path: Path | None = None,
        settings: RunSettings | None = None,
    ) -> None:
        self.name = name
        self._source = source
        self._info = info
        self._task = task
        self._host = host
        self.task_name = task.short_name if task is not None else (info.task if info else "")
        self._lines: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._result: concurrent.futures.Future[TaskResult] = concurrent.futures.Future()
        self._changed = threading.Condition()
        self._following: str = ""  # "", "quiet" or "logs"
        self._started = time.monotonic()
        self._ended = 0.0
        self._cache_hits = 0
        self._reported = False
        self._log_path = log_path
        self._log_file: TextIO | None = None
        if log_path is not None and host is not None:
            self._log_file = _open_log(log_path, name, task, host, settings or RunSettings())

    # ------------------------------------------------------------ finding runs

    @staticmethod
    def _get(cls: type[Run], name: str) -> Run:
        """The run called ``name`` (raises ``RunNotFoundError``, naming recent runs)."""
        source = default_source()
        return cls(source, name, info=source.get(name))

    get = BlockingClassMethod(_get)

    @staticmethod
    def _listall(
        cls: type[Run],
        in_phase: tuple[ActionPhase | str, ...] | None = None,
        task_name: str | None = None,
        task_version: str | None = None,
        created_by_subject: str | None = None,
        sort_by: tuple[str, Literal["asc", "desc"]] | None = None,
        limit: int = 100,
        project: str | None = None,
        domain: str | None = None,
        created_at: TimeFilter | None = None,
        updated_at: TimeFilter | None = None,
        with_labels: dict[str, str] | None = None,
        with_label_keys: list[str] | None = None,
        paused_actions_only: bool = False,
    ) -> Iterator[Run]:
        """Runs, newest first (``sort_by=("created_at", "asc")``: oldest first), at most
        ``limit``: ``in_phase``, ``task_name`` (the task's name, or ``env.task``),
        ``created_by_subject`` (the user), ``created_at`` and labels filter them.
        ``task_version``, ``project``, ``domain`` and ``updated_at`` have no meaning here;
        no run is ever paused."""
        if paused_actions_only:
            return
        source = default_source()
        after, before = created_at.bounds() if created_at is not None else (None, None)
        where = RunFilter(
            phases=tuple(parse_phase(p) for p in in_phase or ()),
            task=task_name.rpartition(".")[2] if task_name else None,
            user=created_by_subject or None,
            labels=tuple(sorted((with_labels or {}).items())),
            label_keys=tuple(with_label_keys or ()),
            created_after=after,
            created_before=before,
        )
        found: list[RunInfo] = []
        cursor: str | None = None
        while len(found) < limit:
            page = source.list(where, min(100, limit - len(found)), cursor)
            found.extend(page.items)
            cursor = page.cursor
            if cursor is None:
                break
        if sort_by is not None and sort_by[1] == "asc":
            found.reverse()
        for info in found:
            yield cls(source, info.name, info=info)

    listall = IteratingMethod(_listall, classmethod=True)

    # ------------------------------------------------------------ what it is

    @property
    def url(self) -> str:
        """Where to see the run: its page when the controller serves one, else (a run
        started here) its log file, with every task's output."""
        info = self._info
        if info is not None and info.url:
            return info.url
        if self._log_path is not None:
            return self._log_path.resolve().as_uri()
        return ""

    @BlockingMethod
    def get_debug_url(self) -> str | None:
        """Flyte's address of the VS Code debugger of a ``debug=True`` run: always None
        here, as in Flyte when there is none (``debug=True`` starts no debugger; it warns)."""
        return None

    @property
    def phase(self) -> ActionPhase:
        """Where the run is: ``ActionPhase.RUNNING``, ``SUCCEEDED``, ... (Flyte's phases;
        ``run.phase == "succeeded"`` holds)."""
        if self._result.done():
            if self._result.exception() is not None:
                return ActionPhase.FAILED
            return PHASE_OF_STATE[self._result.result().state]
        return self._info.phase if self._info is not None else ActionPhase.QUEUED

    @property
    def status(self) -> str:
        """``running`` (not yet ended), ``succeeded``, ``failed``, ``cancelled``, ``timed out``."""
        return _STATUS.get(self.phase, "running")

    @property
    def action(self) -> Action:
        """The run's root action."""
        return Action(self._root_action(), self._source)

    def done(self) -> bool:
        if self._result.done():
            return True
        return not self._following and self._info is not None and self._info.done

    def __repr__(self) -> str:
        return f"Run(name={self.name!r}, phase={self.phase.value!r}, url={self.url!r})"

    def _root_action(self) -> ActionInfo:
        info = self._info or self._source.get(self.name)
        return ActionInfo(
            run=self.name,
            action_id=info.root_action_id,
            parent_id="",
            call_key="",
            task=info.task,
            environment=info.environment,
            group="",
            phase=self.phase,
            created=info.created,
            started=info.started,
            ended=info.ended,
            replica="",
            inputs_preview=info.inputs_preview,
            output_size=info.output_size,
            error=info.error,
            attempts=(),
            traces=(),
        )

    # ------------------------------------------------------------ waiting

    @BlockingMethod
    def wait(
        self,
        quiet: bool = False,
        wait_for: Literal["terminal", "running"] = "terminal",
        timeout: float | None = None,
        progress: bool | None = None,
    ) -> None:
        """Block until the run ends, printing its tasks' output as it arrives.

        Each line is prefixed with the task's name. A failure is reported on
        stderr, with the remote traceback; :meth:`outputs` raises it.
        ``wait_for="running"`` returns once the run runs. On a terminal, a run with
        child tasks shows a progress bar on stderr (children done, failed,
        running; rate and ETA); ``progress=False`` or ``REUSE_RUNTIME_PROGRESS=0``
        turns it off. Ctrl-C stops waiting (see the module's docstring).
        """
        if wait_for not in ("terminal", "running"):
            raise ValueError(f'wait_for must be "terminal" or "running", got {wait_for!r}')
        self._follow(logs=True)
        try:
            if wait_for == "running":
                self._wait_running(timeout)
                return
            self._show(quiet, timeout, progress)
        except KeyboardInterrupt as interrupt:
            raise self._interrupted(interrupt) from None
        if not self._reported:
            self._reported = True
            if self._host is not None:
                self._host.reported(self)
            if not quiet and self.status != "succeeded":
                print(self._summary(), file=sys.stderr, flush=True)

    def _show(self, quiet: bool, timeout: float | None, progress: bool | None) -> None:
        from reuse_runtime.sdk.progress import POLL_SECONDS, RunProgressDisplay, progress_wanted

        display = (
            RunProgressDisplay(self.task_name, self._progress)
            if not quiet and not self.done() and progress_wanted(progress)
            else None
        )
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                if display is not None:
                    display.poll()
                    remaining = POLL_SECONDS if remaining is None else min(remaining, POLL_SECONDS)
                remaining = WAKE_SECONDS if remaining is None else min(remaining, WAKE_SECONDS)
                try:
                    item = self._lines.get(timeout=remaining)
                except queue.Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(
                            f"run {self.name} still running after {timeout:g} s"
                        ) from None
                    continue
                if item is _DONE:
                    self._lines.put(_DONE)  # later waits return at once
                    return
                if not quiet and item.stream not in _LOG_ONLY:
                    stream = sys.stderr if item.stream == "stderr" else sys.stdout
                    text = f"[{item.task_name}] {item.text}"
                    if display is not None:
                        display.line(text, stream)
                    else:
                        print(text, file=stream, flush=True)
        finally:
            if display is not None:
                display.close()

    def _wait_running(self, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while not self.done() and self.phase in (
                ActionPhase.QUEUED,
                ActionPhase.WAITING_FOR_RESOURCES,
                ActionPhase.INITIALIZING,
            ):
                left = WAKE_SECONDS if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"run {self.name} not running after {timeout:g} s")
                self._changed.wait(min(left, WAKE_SECONDS))

    def _interrupted(self, interrupt: KeyboardInterrupt) -> KeyboardInterrupt:
        """One Ctrl-C: cancel an embedded run (its controller is this process), or let a
        standalone controller's run go on; say which in one line, and how to do the other."""
        self._reported = True
        if self._host is not None:
            self._host.reported(self)
        if self.done():
            line = f"reuse-runtime: stopped waiting for run {self.name}, which had ended"
        elif self._host is not None and self._host.embedded:
            with contextlib.suppress(Exception):
                self._source.abort(self.name, "Ctrl-C")
                self._result.exception(CANCEL_WAIT)  # its end, within bounds
            line = (
                f"reuse-runtime: cancelled {self.name} (Ctrl-C): its controller is this "
                f"process; for runs that go on without it, start `reuse-runtime controller`"
            )
        else:
            line = (
                f"reuse-runtime: stopped waiting for run {self.name} (Ctrl-C); it goes on at "
                f"{self._source.where}: `reuse-runtime abort run {self.name}` stops it"
            )
        print(line, file=sys.stderr, flush=True)
        # The line said it all: the uncaught-error hook prints no traceback for it.
        interrupt.__reuse_runtime_shown__ = True  # type: ignore[attr-defined]
        return interrupt

    @BlockingMethod
    def outputs(self, timeout: float | None = None) -> ActionOutputs:
        """The task's outputs, as Flyte gives them: a tuple, so ``outputs()[0]`` is the value.

        A task that returns a tuple (or a ``NamedTuple``) gives its items; one
        annotated ``-> None`` gives ``()``. ``outputs().named_outputs`` maps
        ``o0``, ``o1``, ... to the values. Raises the task's error if it did not
        succeed. For a run started here, the tasks' output not shown yet is
        printed first, as :meth:`wait` does.
        """
        if self._host is not None and not self._reported:
            try:
                self.wait(timeout=timeout)
            except TimeoutError:
                raise TimeoutError(f"run {self.name} still running after {timeout:g} s") from None
        else:
            self._follow(logs=False)
        result = self._outcome(timeout)
        try:
            if self._task is not None:
                value = self._task.unwrap(result)
            else:
                value = result.unwrap(self.task_name)
        except BaseException as error:
            # Its failure was printed with the run's summary: the uncaught-error
            # hook then names it in one line instead of printing it all again.
            if self._reported and self._host is not None:
                with contextlib.suppress(AttributeError, TypeError):
                    error.__reuse_runtime_run__ = self.name  # type: ignore[attr-defined]
            raise
        if value is None and self._task is not None and declares_no_output(self._task.func):
            return ActionOutputs(())
        return ActionOutputs.of(value)

    def _outcome(self, timeout: float | None) -> TaskResult:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = WAKE_SECONDS if deadline is None else deadline - time.monotonic()
            try:
                return self._result.result(max(0.0, min(left, WAKE_SECONDS)))
            except concurrent.futures.TimeoutError:
                if self._result.done():
                    raise  # the run's own TimeoutError (a task's timeout is one)
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"run {self.name} still running after {timeout:g} s"
                    ) from None

    @BlockingMethod
    def inputs(self) -> ActionInputs:
        """The run's inputs by name."""
        return inputs_of(self._source.io(self.name))

    @BlockingMethod
    def details(self) -> RunDetails:
        self._info = self._source.get(self.name)
        return RunDetails(self._info, self._source)

    @BlockingMethod
    def sync(self) -> Run:
        """Read the run's state again (its ``phase``)."""
        if not self._result.done():
            self._update(self._source.get(self.name))
        return self

    async def watch(self, cache_data_on_done: bool = False) -> AsyncIterator[ActionDetails]:
        """The run's root action each time the run's phase changes, until it ends."""
        import asyncio

        self._follow(logs=False)
        shown: ActionPhase | None = None
        while True:
            phase = self.phase
            if phase is not shown:
                shown = phase
                yield ActionDetails(self._root_action(), self._source)
            if self.done():
                return
            await asyncio.to_thread(self._wait_change, phase)

    def _wait_change(self, phase: ActionPhase) -> None:
        with self._changed:
            if self.phase is phase and not self.done():
                self._changed.wait(WAKE_SECONDS)

    # ------------------------------------------------------------ logs, abort, progress

    def _get_logs(
        self, attempt: int | None = None, filter_system: bool = False, show_ts: bool = False
    ) -> Iterator[str]:
        """The output lines of the run's tasks, as recorded, each ``[task] text``."""
        return log_lines(self._source.logs(self.name), show_ts=show_ts, label=True)

    get_logs = IteratingMethod(_get_logs)

    @BlockingMethod
    def show_logs(
        self,
        attempt: int | None = None,
        max_lines: int = 100,
        show_ts: bool = False,
        raw: bool = False,
        filter_system: bool = False,
    ) -> None:
        """Print the run's recorded output (the last ``max_lines`` lines; ``raw``: all)."""
        print_logs(
            self._source.logs(self.name),
            max_lines=None if raw else max_lines,
            show_ts=show_ts,
            raw=raw,
        )

    @BlockingMethod
    def abort(self, reason: str = "Manually aborted from the SDK api.") -> None:
        """Abort the run: every task of it is cancelled, and it ends ABORTED."""
        self._source.abort(self.name, reason)

    def cancel(self) -> int:
        """Cancel every task of this run; returns how many were cancelled."""
        return self._source.abort(self.name, "cancelled by its caller")

    def progress(self) -> RunProgress:
        """How far the run has got: its children done, failed, running (see RunProgress)."""
        return self._source.progress(self.name) or RunProgress()

    def _progress(self) -> RunProgress | None:
        return self._source.progress(self.name)

    # ------------------------------------------------------------ fed by the source

    def _follow(self, *, logs: bool, deadline: float | None = None) -> None:
        """Start following the run, once (quietly: its lines are not asked for). A run
        started here shows its lines from its start; one found by name, those printed
        from now on (``get_logs`` and ``show_logs`` read what it printed before)."""
        with self._changed:
            if self._following or self._result.done():
                return
            self._following = "logs" if logs else "quiet"
        self._source.follow(self, logs=logs, deadline=deadline, from_start=self._host is not None)

    def _update(self, info: RunInfo) -> None:
        with self._changed:
            self._info = info
            self._changed.notify_all()

    def _log_lines(self, lines: tuple[LogLine, ...]) -> None:
        log_file = self._log_file
        for line in lines:
            self._lines.put(line)
            if line.stream == "cache":
                self._cache_hits += 1
            if log_file is not None:
                log_file.write(runlog.format_line(line) + "\n")
        if log_file is not None:
            log_file.flush()  # once per batch: `reuse-runtime logs --follow` sees it now

    def _settle(self, result: TaskResult) -> None:
        if self._result.done():
            return
        self._ended = time.monotonic()
        if self._info is not None:
            phase = PHASE_OF_STATE[result.state]
            self._info = replace(self._info, phase=phase)
        self._result.set_result(result)
        self._finished()

    def _fail(self, error: BaseException) -> None:
        if self._result.done():
            return
        self._ended = time.monotonic()
        if isinstance(error, concurrent.futures.CancelledError):
            error = ClosedError("the runtime shut down before the run finished")
        self._result.set_exception(error)
        self._finished()

    def _finished(self) -> None:
        if self._log_file is not None:
            self._log_file.write(self._summary() + "\n")
            self._log_file.close()
            self._log_file = None
        self._lines.put(_DONE)
        with self._changed:
            self._changed.notify_all()
        if self._host is not None:
            self._host.forget(self)

    def _summary(self) -> str:
        took = (self._ended or time.monotonic()) - self._started
        if self.status == "succeeded":
            hits = f", {self._cache_hits} cached" if self._cache_hits else ""
            return f"run {self.name} succeeded ({took:.2f} s{hits})"
        if not self._result.done():
            return f"run {self.name} {self.status}"
        error = self._result.exception()
        if error is not None:
            return f"run {self.name} {self.status}: {type(error).__name__}: {error}"
        remote = self._result.result().error
        if remote is None:
            return f"run {self.name} {self.status}"
        kind = remote.type.rsplit(".", 1)[-1] if remote.type else ""
        text = f"run {self.name} {self.status}: {kind + ': ' if kind else ''}{remote.message}"
        if remote.traceback:
            text += "\n" + _indent(remote.traceback.rstrip("\n"))
        return text


def _open_log(
    path: Path, name: str, task: Any, host: RunHost, settings: RunSettings
) -> TextIO | None:
    """The run's log file, a new one: a name used before gets a numbered file."""
    private_dir(path.parent)
    candidate, n = path, 1
    while True:
        try:
            out = candidate.open("x", encoding="utf-8")
            break
        except FileExistsError:
            n += 1
            candidate = path.with_name(f"{path.stem}.{n}{path.suffix}")
    out.write(runlog.header(name, task.name, host.endpoint, host.embedded))
    out.write("\n")
    for label, values in (("labels", settings.labels), ("annotations", settings.annotations)):
        if values:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
            out.write(f"{label}: {shown}\n")
    out.flush()
    return out


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())


def finish_at_exit(pending: list[Run], embedded: bool) -> None:
    """At interpreter exit: what becomes of the runs nobody waited for (``pending``).

    Flyte programs often end right after ``flyte.run(...)``. With the embedded
    controller (``embedded``), which ends with this process, their runs would be
    lost: they are finished first, their output shown, and one line says so
    (Ctrl-C cancels them). A standalone controller's runs go on without this
    process, as Flyte's do: one line each says where to find them.
    """
    unfinished = [r for r in pending if not r.done()]
    names = ", ".join(r.name for r in unfinished)
    if not embedded:
        for r in pending:
            if r.done():
                r.wait()  # its outcome, and the output not shown yet
            else:
                print(
                    f"reuse-runtime: run {r.name} goes on at {r._source.where}; "
                    f"`reuse-runtime get run {r.name}` shows it",
                    file=sys.stderr,
                    flush=True,
                )
        return
    # wait() imports its progress display lazily: import it before the line that invites
    # Ctrl-C, so the KeyboardInterrupt never lands inside an import (one interrupted
    # there can leave the import lock held, and the controller's thread, importing as
    # it starts the web UI, then hangs, and with it the cancel this waits for).
    importlib.import_module("reuse_runtime.sdk.progress")
    try:
        if unfinished:
            plural = "s" if len(unfinished) > 1 else ""
            print(
                f"reuse-runtime: finishing {len(unfinished)} run{plural} still in progress "
                f"before exit ({names}); Ctrl-C cancels",
                file=sys.stderr,
                flush=True,
            )
        for r in pending:
            r.wait()
    except KeyboardInterrupt:
        # wait() said what became of the run it waited for, in one line.
        others = [r for r in unfinished if not r.done()]
        if not others:
            return
        for r in others:
            with contextlib.suppress(Exception):
                r.cancel()
        for r in others:
            with contextlib.suppress(Exception, KeyboardInterrupt):
                r.wait(quiet=True, timeout=10)
        print(
            f"reuse-runtime: cancelled {', '.join(r.name for r in others)} too",
            file=sys.stderr,
            flush=True,
        )
