"""Where a process reads runs from: a controller, or the local runs store.

``flyte.remote.Run``, ``Action`` and the CLI's ``get`` commands read through a
:class:`RunSource`. With a controller to ask (this process's runtime, or an
endpoint), :class:`ControllerRuns` asks it: it knows the runs running now. With
none, :class:`StoreRuns` reads the runs store file the user's embedded
controllers share (``<state dir>/runs.sqlite``), so past local runs can be read
with no controller running.

Every call blocks the caller's thread, waking for signals (a Ctrl-C reaches it).
"""

from __future__ import annotations

import asyncio
import builtins
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from reuse_runtime.conditions import ConditionInfo, ConditionValue
from reuse_runtime.errors import ReuseRuntimeError, RunNotFoundError, TaskTimedOutError
from reuse_runtime.model import LogLine, RunProgress, TaskResult
from reuse_runtime.runinfo import (
    ActionInfo,
    ActionPhase,
    LogEntry,
    Page,
    RunFilter,
    RunInfo,
    RunIO,
    recorded_result,
)

if TYPE_CHECKING:
    from reuse_runtime.client.runs import RunsClient
    from reuse_runtime.store import SqliteRunReader

T = TypeVar("T")

#: How often a run read from the store alone is looked at again while it runs.
STORE_POLL = 0.5
_END = object()


class Followed(Protocol):
    """A run being followed, as a source feeds it (:class:`~reuse_runtime.sdk.run.Run`)."""

    @property
    def name(self) -> str: ...
    def _update(self, info: RunInfo) -> None: ...
    def _log_lines(self, lines: tuple[LogLine, ...]) -> None: ...
    def _settle(self, result: TaskResult) -> None: ...
    def _fail(self, error: BaseException) -> None: ...


class RunSource(Protocol):
    """What the SDK asks about runs (blocking calls)."""

    #: Where the runs are read from, for messages ("the controller at HOST:PORT").
    where: str

    def get(self, name: str) -> RunInfo: ...
    def list(self, where: RunFilter, limit: int, cursor: str | None) -> Page[RunInfo]: ...
    def actions(
        self,
        run: str,
        *,
        parent: str | None = None,
        phases: tuple[ActionPhase, ...] = (),
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[ActionInfo]: ...
    def action(self, run: str, action_id: str) -> ActionInfo: ...
    def io(self, run: str, action_id: str = "") -> RunIO: ...
    def logs(self, run: str, action_id: str = "", *, follow: bool = False) -> Iterator[LogEntry]:
        """The run's recorded lines (one action's, with ``action_id``); ``follow``: until
        the run ends."""
        ...

    def abort(self, run: str, reason: str, action_id: str = "") -> int: ...
    def follow(
        self, run: Followed, *, logs: bool, deadline: float | None = None, from_start: bool = True
    ) -> None:
        """Start following ``run`` in the background: its phase changes, its lines (with
        ``logs``: from its start, or those printed from now on) and its result go into it
        (``Run._update``, ``_log_lines``, ``_settle``)."""
        ...

    def progress(self, name: str) -> RunProgress | None: ...
    def conditions(self, run: str, parent: str | None = None) -> builtins.list[ConditionInfo]: ...
    def signal_condition(self, run: str, name: str, value: ConditionValue) -> ConditionInfo: ...


class RuntimeLoop(Protocol):
    """The runtime's loop, as a controller source needs it."""

    def call(self, coro: Any, timeout: float | None = None) -> Any: ...
    def spawn(self, coro: Any) -> None: ...


class ControllerRuns:
    """Runs as a controller has them, through the runtime's client."""

    def __init__(
        self,
        runtime: RuntimeLoop,
        runs: RunsClient,
        address: str,
        progress: Callable[[str], Any],
    ) -> None:
        self._runtime = runtime
        self._runs = runs
        self._progress = progress
        self.where = f"the controller at {address}"

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        done: T = self._runtime.call(coro, timeout=60)
        return done

    def get(self, name: str) -> RunInfo:
        return self._call(self._runs.get(name))

    def list(self, where: RunFilter, limit: int, cursor: str | None) -> Page[RunInfo]:
        return self._call(self._runs.list_runs(where, limit=limit, cursor=cursor))

    def actions(
        self,
        run: str,
        *,
        parent: str | None = None,
        phases: tuple[ActionPhase, ...] = (),
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[ActionInfo]:
        return self._call(
            self._runs.actions(run, parent=parent, phases=phases, limit=limit, cursor=cursor)
        )

    def action(self, run: str, action_id: str) -> ActionInfo:
        return self._call(self._runs.action(run, action_id))

    def io(self, run: str, action_id: str = "") -> RunIO:
        return self._call(self._runs.io(run, action_id))

    def logs(self, run: str, action_id: str = "", *, follow: bool = False) -> Iterator[LogEntry]:
        return _drain(self._runtime, lambda: self._runs.logs(run, action_id, follow=follow))

    def abort(self, run: str, reason: str, action_id: str = "") -> int:
        return self._call(self._runs.abort(run, reason, action_id))

    def conditions(self, run: str, parent: str | None = None) -> builtins.list[ConditionInfo]:
        return self._call(self._runs.conditions(run, parent))

    def signal_condition(self, run: str, name: str, value: ConditionValue) -> ConditionInfo:
        return self._call(self._runs.signal_condition(run, name, value))

    def follow(
        self, run: Followed, *, logs: bool, deadline: float | None = None, from_start: bool = True
    ) -> None:
        self._runtime.spawn(self._follow(run, logs, deadline, from_start))

    async def _follow(
        self, run: Followed, logs: bool, deadline: float | None, from_start: bool
    ) -> None:
        try:
            await asyncio.wait_for(self._events(run, logs, from_start), deadline)
        except asyncio.TimeoutError:
            try:
                await self._runs.abort(run.name, "past its deadline")
            finally:
                run._fail(_timed_out(run.name, deadline or 0.0))
        except BaseException as exc:
            run._fail(exc)
            if not isinstance(exc, Exception):
                raise

    async def _events(self, run: Followed, logs: bool, from_start: bool) -> None:
        async for event in self._runs.follow(run.name, logs=logs, from_start=from_start):
            if event.run is not None:
                run._update(event.run)
            if event.lines:
                run._log_lines(event.lines)
            if event.result is not None:
                run._settle(event.result)
                return

    def progress(self, name: str) -> RunProgress | None:
        try:
            found: RunProgress = self._runtime.call(self._progress(name), timeout=3.0)
            return found
        except Exception:
            return None


def _timed_out(name: str, deadline: float) -> BaseException:
    return TaskTimedOutError(
        f"run {name} passed its deadline of {deadline:g} s and was aborted",
        type_name="TimeoutError",
    )


def _drain(runtime: RuntimeLoop, open_stream: Callable[[], AsyncIterator[list[T]]]) -> Iterator[T]:
    """An async stream of batches on the runtime's loop as a blocking iterator of their
    items (bounded buffering: the stream waits while the reader is behind)."""
    items: queue.Queue[Any] = queue.Queue(maxsize=8)
    stop = threading.Event()

    async def pump() -> None:
        try:
            async for item in open_stream():
                while not stop.is_set():
                    try:
                        items.put_nowait(item)
                        break
                    except queue.Full:
                        await asyncio.sleep(0.05)
                if stop.is_set():
                    return
            items.put((_END, None))
        except BaseException as exc:
            items.put((_END, exc))
            if not isinstance(exc, Exception):
                raise

    runtime.spawn(pump())
    try:
        while True:
            try:
                item = items.get(timeout=0.5)
            except queue.Empty:
                continue
            if isinstance(item, tuple) and len(item) == 2 and item[0] is _END:
                if item[1] is not None:
                    raise item[1]
                return
            yield from item
    finally:
        stop.set()


class StoreRuns:
    """Runs as the local runs store file has them (no controller to ask)."""

    def __init__(self, reader: SqliteRunReader) -> None:
        self._reader = reader
        self.where = f"the runs store {reader.path}"

    def _missing(self, name: str) -> RunNotFoundError:
        try:
            recent = [r.name for r in self._reader.list_runs(limit=5).items]
        except ReuseRuntimeError:
            recent = []
        return RunNotFoundError(
            f"no run named {name!r} in {self.where}; recent runs: {', '.join(recent) or 'none'} "
            f"(a run of a standalone controller is read there: set REUSE_RUNTIME_ENDPOINT)"
        )

    def get(self, name: str) -> RunInfo:
        found = self._reader.get_run(name)
        if found is None:
            raise self._missing(name)
        return found

    def list(self, where: RunFilter, limit: int, cursor: str | None) -> Page[RunInfo]:
        return self._reader.list_runs(where, limit=limit, cursor=cursor)

    def actions(
        self,
        run: str,
        *,
        parent: str | None = None,
        phases: tuple[ActionPhase, ...] = (),
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[ActionInfo]:
        self.get(run)
        return self._reader.list_actions(
            run, parent=parent, phases=phases, limit=limit, cursor=cursor
        )

    def action(self, run: str, action_id: str) -> ActionInfo:
        found = self._reader.get_action(run, action_id)
        if found is None:
            self.get(run)
            raise RunNotFoundError(f"run {run!r} has no action {action_id!r} in {self.where}")
        return found

    def io(self, run: str, action_id: str = "") -> RunIO:
        if action_id:
            action = self.action(run, action_id)
            output = self._reader.action_output(run, action_id)
            return RunIO(
                phase=action.phase,
                inputs_preview=action.inputs_preview,
                output=output if action.error is None else None,
                error=replace(action.error, pickled=output or b"") if action.error else None,
            )
        info = self.get(run)
        output = self._reader.run_output(run)
        return RunIO(
            phase=info.phase,
            inputs_preview=info.inputs_preview,
            inputs=self._reader.run_inputs(run),
            output=output if info.phase is ActionPhase.SUCCEEDED else None,
            error=replace(info.error, pickled=output or b"") if info.error else None,
        )

    def logs(self, run: str, action_id: str = "", *, follow: bool = False) -> Iterator[LogEntry]:
        info = self.get(run)
        after = 0
        while True:
            if action_id:
                batch = self._reader.action_logs(run, action_id, after=after)
            else:
                batch = self._reader.run_logs(run, after=after)
            if batch:
                after = batch[-1].seq
                yield from batch
                continue
            if not follow or info.done:
                return
            time.sleep(STORE_POLL)
            info = self.get(run)

    def abort(self, run: str, reason: str, action_id: str = "") -> int:
        info = self.get(run)
        if action_id:
            self.action(run, action_id)
        if info.done:
            return 0
        raise ReuseRuntimeError(
            f"run {run} is running in another process (an embedded controller), which alone "
            f"can stop it: press Ctrl-C there"
        )

    def conditions(self, run: str, parent: str | None = None) -> builtins.list[ConditionInfo]:
        self.get(run)
        return self._reader.list_conditions(run, parent)

    def signal_condition(self, run: str, name: str, value: ConditionValue) -> ConditionInfo:
        info = self.get(run)
        if info.done:
            raise ReuseRuntimeError(
                f"run {run} ended ({info.phase}): its conditions cannot be signaled"
            )
        raise ReuseRuntimeError(
            f"run {run} is running in another process (an embedded controller), which alone "
            f"can signal its conditions: signal it from there, or run it on a standalone "
            f"controller (set REUSE_RUNTIME_ENDPOINT)"
        )

    def follow(
        self, run: Followed, *, logs: bool, deadline: float | None = None, from_start: bool = True
    ) -> None:
        threading.Thread(
            target=self._follow, args=(run,), name=f"follow-{run.name}", daemon=True
        ).start()

    def _follow(self, run: Followed) -> None:
        try:
            info = self.get(run.name)
            run._update(info)
            while not info.done:
                time.sleep(STORE_POLL)
                now = self.get(run.name)
                if now.phase is not info.phase:
                    run._update(now)
                info = now
            run._settle(recorded_result(info, self._reader.run_output(run.name)))
        except Exception as exc:
            run._fail(exc)

    def progress(self, name: str) -> RunProgress | None:
        return None


def store_source(path: Path | None = None) -> StoreRuns:
    """The local runs store (the embedded controllers'), read-only."""
    from reuse_runtime.store import SqliteRunReader, StoreSettings

    return StoreRuns(SqliteRunReader(path or StoreSettings.from_env().path))


_default: Callable[[], RunSource] | None = None


def use_default(factory: Callable[[], RunSource]) -> None:
    """Say where :func:`default_source` finds runs (the runtime does, at import)."""
    global _default
    _default = factory


def default_source() -> RunSource:
    """Where this process reads runs: its controller (or the one configured), else the
    local runs store."""
    return _default() if _default is not None else store_source()
