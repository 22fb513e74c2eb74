"""`Run`: a started run, its log file, its progress and its outcome.

A run is started by the runtime (:func:`reuse_runtime.sdk.runtime.run`), which
pushes the run's output lines into it as they arrive (``_log``, ``_flush``) and
settles it once with the task's result (``_settle``). Everything else a run
asks of the controller (its progress, a cancel) goes through the
:class:`RunHost` it was given: the one seam between a run and the client.

Waiting blocks the caller's thread at most :data:`WAKE_SECONDS` at a time, so a
Ctrl-C reaches it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeVar

from reuse_runtime import runlog
from reuse_runtime.errors import ClosedError
from reuse_runtime.model import LogLine, RunOptions, RunProgress, TaskResult, TaskState
from reuse_runtime.paths import private_dir
from reuse_runtime.sdk.aio import BlockingMethod
from reuse_runtime.sdk.outputs import ActionOutputs, declares_no_output

T = TypeVar("T")


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


class RunClient(Protocol):
    """The controller's calls a run makes (the controller client has them)."""

    async def run_progress(self, run_id: str, timeout: float | None = None) -> RunProgress: ...

    async def cancel(self, *, task_id: str = "", run_id: str = "") -> int: ...


class RunHost(Protocol):
    """The runtime that started a run, as the run sees it."""

    @property
    def endpoint(self) -> str: ...

    @property
    def embedded(self) -> bool: ...

    @property
    def client(self) -> RunClient: ...

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the client's loop and wait for it (waking for signals)."""
        ...

    def reported(self, run: Run) -> None:
        """The run's outcome was shown: it need not be finished at exit."""
        ...

    def forget(self, run: Run) -> None:
        """The run ended: no more output lines are routed to it."""
        ...


_DONE = object()
#: The longest the caller's thread blocks at a time. Python runs a signal's handler in
#: the main thread only once that thread wakes: a Ctrl-C the kernel hands to another
#: thread must not leave a wait with no end deaf to it.
WAKE_SECONDS = 0.5
#: Streams shown in the run's log file only (not on the terminal).
_LOG_ONLY = frozenset({"cache", "trace"})


class Run:
    """A started run: its name, where to see it, and its outcome.

    ``wait()`` and ``outputs()`` block; ``await r.wait.aio()`` and
    ``await r.outputs.aio()`` are their async forms, as in Flyte.
    """

    def __init__(
        self, runtime: RunHost, name: str, task: Any, log_path: Path, settings: RunSettings
    ) -> None:
        self.name = name
        self.task_name = task.short_name
        self._task = task
        self._runtime = runtime
        self._log_path = log_path
        self._lines: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._result: concurrent.futures.Future[TaskResult] = concurrent.futures.Future()
        self._started = time.monotonic()
        self._ended = 0.0
        self._cache_hits = 0
        self._reported = False
        private_dir(log_path.parent)
        self._log_file: TextIO | None = log_path.open("w", encoding="utf-8")
        self._log_file.write(runlog.header(name, task.name, runtime.endpoint, runtime.embedded))
        self._log_file.write("\n")
        for label, values in (("labels", settings.labels), ("annotations", settings.annotations)):
            if values:
                shown = ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
                self._log_file.write(f"{label}: {shown}\n")
        self._log_file.flush()

    @property
    def url(self) -> str:
        """Where to follow the run: its log file (status and every task's output)."""
        return self._log_path.resolve().as_uri()

    def __repr__(self) -> str:
        return f"Run(name={self.name!r}, status={self.status!r}, url={self.url!r})"

    @property
    def status(self) -> str:
        if not self._result.done():
            return "running"
        error = self._result.exception()
        if error is not None:
            return "failed"
        return {
            TaskState.SUCCEEDED: "succeeded",
            TaskState.FAILED: "failed",
            TaskState.CANCELLED: "cancelled",
            TaskState.TIMED_OUT: "timed out",
        }[self._result.result().state]

    @property
    def phase(self) -> str:
        """Flyte's name for the state: RUNNING, SUCCEEDED, FAILED, ABORTED or TIMED_OUT."""
        return {
            "running": "RUNNING",
            "succeeded": "SUCCEEDED",
            "failed": "FAILED",
            "cancelled": "ABORTED",
            "timed out": "TIMED_OUT",
        }[self.status]

    def done(self) -> bool:
        return self._result.done()

    @BlockingMethod
    def wait(
        self,
        quiet: bool = False,
        wait_for: str = "terminal",
        timeout: float | None = None,
        progress: bool | None = None,
    ) -> None:
        """Block until the run ends, printing its tasks' output as it arrives.

        Each line is prefixed with the task's name. A failure is reported on
        stderr, with the remote traceback; :meth:`outputs` raises it.
        ``wait_for="running"`` returns at once: a run is running when it starts.
        On a terminal, a run with child tasks shows a progress bar on stderr
        (children done, failed, running; rate and ETA); ``progress=False`` or
        ``REUSE_RUNTIME_PROGRESS=0`` turns it off.
        """
        if wait_for not in ("terminal", "running"):
            raise ValueError(f'wait_for must be "terminal" or "running", got {wait_for!r}')
        if wait_for == "running":
            return
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
                    break
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
        if not self._reported:
            self._reported = True
            self._runtime.reported(self)
            if not quiet and self.status != "succeeded":
                print(self._summary(), file=sys.stderr, flush=True)

    @BlockingMethod
    def outputs(self, timeout: float | None = None) -> ActionOutputs:
        """The task's outputs, as Flyte gives them: a tuple, so ``outputs()[0]`` is the value.

        A task that returns a tuple (or a ``NamedTuple``) gives its items; one
        annotated ``-> None`` gives ``()``. ``outputs().named_outputs`` maps
        ``o0``, ``o1``, ... to the values. Raises the task's error if it did not
        succeed. The tasks' output not shown yet is printed first, as
        :meth:`wait` does.
        """
        if not self._reported:
            try:
                self.wait(timeout=timeout)
            except TimeoutError:
                raise TimeoutError(f"run {self.name} still running after {timeout:g} s") from None
        result = self._result.result(0)
        try:
            value = self._task.unwrap(result)
        except BaseException as error:
            # Its failure was printed with the run's summary: the uncaught-error
            # hook then names it in one line instead of printing it all again.
            with contextlib.suppress(AttributeError, TypeError):
                error.__reuse_runtime_run__ = self.name  # type: ignore[attr-defined]
            raise
        if value is None and declares_no_output(self._task.func):
            return ActionOutputs(())
        return ActionOutputs.of(value)

    def progress(self) -> RunProgress:
        """How far the run has got: its children done, failed, running (see RunProgress)."""
        return self._runtime.call(self._runtime.client.run_progress(self.name, timeout=10.0), 15)

    def cancel(self) -> int:
        """Cancel every task of this run; returns how many were cancelled."""
        return self._runtime.call(self._cancel())

    async def _cancel(self) -> int:
        # A run started a moment ago may not have reached the controller yet (its
        # submission and this cancel travel apart): ask again until it is there.
        client = self._runtime.client
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0
        while True:
            cancelled = await client.cancel(run_id=self.name)
            if cancelled or self._result.done() or loop.time() > deadline:
                return cancelled
            await asyncio.sleep(0.1)

    @BlockingMethod
    def abort(self, reason: str = "Manually aborted from the SDK api.") -> None:
        """Flyte's name for :meth:`cancel`."""
        self.cancel()

    # ------------------------------------------------------------ internals

    def _progress(self) -> RunProgress | None:
        try:
            return self._runtime.call(
                self._runtime.client.run_progress(self.name, timeout=2.0), timeout=3.0
            )
        except Exception:
            return None

    def _log(self, line: LogLine) -> None:
        self._lines.put(line)
        if line.stream == "cache":
            self._cache_hits += 1
        if self._log_file is not None:
            self._log_file.write(runlog.format_line(line) + "\n")

    def _flush(self) -> None:
        if self._log_file is not None:
            self._log_file.flush()

    def _settle(self, future: concurrent.futures.Future[TaskResult]) -> None:
        # Runs on the runtime's loop, after every output line of the run was queued.
        self._ended = time.monotonic()
        error = (
            ClosedError("the runtime shut down before the run finished")
            if future.cancelled()
            else future.exception()
        )
        if error is not None:
            self._result.set_exception(error)
        else:
            self._result.set_result(future.result())
        if self._log_file is not None:
            self._log_file.write(self._summary() + "\n")
            self._log_file.close()
            self._log_file = None
        self._lines.put(_DONE)
        self._runtime.forget(self)

    def _summary(self) -> str:
        took = (self._ended or time.monotonic()) - self._started
        if self.status == "succeeded":
            hits = f", {self._cache_hits} cached" if self._cache_hits else ""
            return f"run {self.name} succeeded ({took:.2f} s{hits})"
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


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())


def finish_at_exit(pending: list[Run]) -> None:
    """At interpreter exit: finish the runs nobody waited for (``pending``), showing their output.

    Flyte programs often end right after ``flyte.run(...)``; their runs must not
    be lost. One line says what is happening; Ctrl-C cancels the runs instead.
    """
    unfinished = [r for r in pending if not r.done()]
    try:
        if unfinished:
            names = ", ".join(r.name for r in unfinished)
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
        for r in unfinished:
            if not r.done():
                with contextlib.suppress(Exception):
                    r.cancel()
        for r in unfinished:
            with contextlib.suppress(Exception, KeyboardInterrupt):
                r.wait(quiet=True, timeout=10)
        print(
            f"reuse-runtime: cancelled {', '.join(r.name for r in unfinished)}",
            file=sys.stderr,
            flush=True,
        )
