"""`Executor`: runs task payloads as coroutines on one event loop.

* Async tasks run as coroutines behind one :class:`TaskLimiter` of size
  ``concurrency``; the excess waits in arrival order.
* A sync (``def``) task runs in a thread, one at a time per replica, so the loop
  keeps serving heartbeats and cancels while it runs.
* Every outcome becomes a :class:`TaskResult`: the executor never raises a
  task's error. Bad input, unpicklable output and user exceptions each get a
  clear message.

This module imports nothing from grpc: transports hand it :class:`TaskSpec` and
receive :class:`TaskResult`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import os
import pickle
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import structlog

from reuse_runtime import pickling, user_exceptions
from reuse_runtime.context import TaskContext, current_task
from reuse_runtime.errors import CodeNotFoundError, NonRecoverableError, ProcessResourceError
from reuse_runtime.model import (
    ErrorKind,
    LogLine,
    RemoteError,
    TaskResult,
    TaskSpec,
    TaskState,
    dumps_plain,
)
from reuse_runtime.tracebacks import format_exception
from reuse_runtime.worker.limiter import TaskLimiter
from reuse_runtime.worker.loader import CodeLoader
from reuse_runtime.worker.output import flush_task

log = structlog.get_logger("reuse_runtime.worker")

#: Default bound on a task's arguments and on its result, in bytes.
DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024

_forked = False


def _in_forked_child() -> None:
    global _forked
    _forked = True


os.register_at_fork(after_in_child=_in_forked_child)


def forked_as_replica() -> None:
    """This process was forked to be a replica of its own (by the local backend's fork
    server), not by a task: its tasks report as any replica's do."""
    global _forked
    _forked = False


@dataclass(frozen=True)
class ExecutorConfig:
    replica_id: str = ""
    concurrency: int = 1
    max_payload: int = DEFAULT_MAX_PAYLOAD


class _Rejected(Exception):
    """The task cannot start; carries the error to report."""

    def __init__(self, error: RemoteError) -> None:
        super().__init__(error.message)
        self.error = error


def _not_found(exc: CodeNotFoundError) -> _Rejected:
    return _Rejected(
        RemoteError(ErrorKind.BAD_INPUT, "CodeNotFoundError", str(exc), _cause_traceback(exc))
    )


class Executor:
    """Run :class:`TaskSpec` payloads and produce exactly one :class:`TaskResult` each.

    Call-order contract: create it inside the running loop; call :meth:`close`
    when done (it cancels whatever still runs).
    """

    def __init__(
        self,
        config: ExecutorConfig,
        *,
        loader: CodeLoader | None = None,
        limiter: TaskLimiter | None = None,
        on_finished: Callable[[TaskResult], None] | None = None,
    ) -> None:
        self.config = config
        self.limiter = limiter or TaskLimiter(config.concurrency)
        self.loader = loader or CodeLoader()
        # Called with every result, before it is handed back (the worker's metrics).
        self.on_finished = on_finished
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        # Sync tasks take turns on `_sync_turn`: one runs at a time. A sync parent
        # blocked on a child gives up its turn, and keeps its thread: hence several threads.
        self._sync_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="reuse-sync-task")
        self._sync_turn = asyncio.Lock()
        self._running: dict[str, asyncio.Task[TaskResult]] = {}
        self._cancelled: dict[str, str] = {}  # task id -> why ("cancelled" / "timed out")

    # ------------------------------------------------------------ public

    @property
    def running(self) -> int:
        """Tasks accepted and not yet finished (running, waiting, or suspended)."""
        return len(self._running)

    def running_ids(self) -> list[str]:
        return list(self._running)

    def start(
        self,
        spec: TaskSpec,
        emit: Callable[[LogLine], None],
        done: Callable[[TaskResult], None],
    ) -> TaskResult | None:
        """Start ``spec``; ``done`` is called exactly once, on the loop, with its result.

        A spec that cannot start (no id, a bad timeout, an id already running here)
        is not started: its failed result is returned instead, and ``done`` is not called.
        """
        if spec.bundle is not None:
            self.loader.keep(spec.bundle)  # even if this task never runs (see CodeLoader.keep)
        problem = spec.problem()
        if problem is None and spec.task_id in self._running:
            problem = f"task id {spec.task_id!r} is already running on this replica"
        if problem is not None:
            return TaskResult.failure(spec.task_id, ErrorKind.BAD_INPUT, "BadInputError", problem)
        task = self._loop.create_task(self._run(spec, emit), name=f"reuse-task:{spec.task_id}")
        self._running[spec.task_id] = task
        # A done callback, not a report from inside the task: a task cancelled before
        # its first step never runs a line of its own, and must be reported all the same.
        task.add_done_callback(functools.partial(self._finished, spec, done))
        return None

    async def execute(self, spec: TaskSpec, emit: Callable[[LogLine], None]) -> TaskResult:
        """Run ``spec`` and wait for its result."""
        future: asyncio.Future[TaskResult] = self._loop.create_future()
        rejected = self.start(spec, emit, future.set_result)
        return rejected if rejected is not None else await future

    def cancel(self, task_id: str, reason: str = "cancelled") -> bool:
        """Ask a task to stop: it sees ``CancelledError``. Returns whether it was running."""
        task = self._running.get(task_id)
        if task is None:
            return False
        self._cancelled.setdefault(task_id, reason)
        task.cancel(msg=reason)
        return True

    def cancel_all(self, reason: str) -> int:
        ids = list(self._running)
        for task_id in ids:
            self.cancel(task_id, reason)
        return len(ids)

    async def wait_idle(self, timeout: float | None) -> bool:
        """Wait until no task runs; returns whether that happened within ``timeout``."""
        deadline = None if timeout is None else self._loop.time() + timeout
        while self._running:
            remaining = None if deadline is None else deadline - self._loop.time()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(list(self._running.values()), timeout=remaining)
        return True

    def close(self) -> None:
        self.cancel_all("replica shut down")
        self._sync_pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ internals

    def _finished(
        self, spec: TaskSpec, done: Callable[[TaskResult], None], task: asyncio.Task[TaskResult]
    ) -> None:
        if _forked:
            # The task forked and returned in the child: that copy of the replica shares
            # its sockets and must not run on. The parent reports the task.
            os._exit(0)
        self._running.pop(spec.task_id, None)
        why = self._cancelled.pop(spec.task_id, "cancelled")
        if task.cancelled():
            result = replace(
                TaskResult.failure(
                    spec.task_id, ErrorKind.CANCELLED, "CancelledError", f"task {why}"
                ),
                state=TaskState.CANCELLED,
            )
        else:
            exc = task.exception()
            if exc is not None:
                result = TaskResult.failure(
                    spec.task_id,
                    ErrorKind.INTERNAL,
                    type(exc).__name__,
                    f"reuse-runtime failed running the task: {exc}",
                )
            else:
                result = task.result()
        replica_id, attempt = self.config.replica_id, spec.attempt or 1
        # A success already carries both (_encode_result): the controller need not copy it.
        if result.replica_id != replica_id or result.attempts != attempt:
            result = replace(result, replica_id=replica_id, attempts=attempt)
        if self.on_finished is not None:
            self.on_finished(result)
        done(result)

    async def _run(self, spec: TaskSpec, emit: Callable[[LogLine], None]) -> TaskResult:
        started = time.perf_counter()
        try:
            # Most tasks name a function already loaded, and find a free slot: no await.
            fn = self._loaded(spec)
            if fn is None:
                fn = await self._resolve(spec)
            args, kwargs = self._decode_args(spec)
        except _Rejected as rejected:
            return TaskResult(spec.task_id, TaskState.FAILED, error=rejected.error)

        if not self.limiter.try_acquire():
            try:
                await self.limiter.acquire()
            except asyncio.CancelledError:
                return self._interrupted(spec, started)
        started = time.perf_counter()  # its runtime, not its wait for a slot (a prefetch)
        is_async = inspect.iscoroutinefunction(fn)
        ctx = TaskContext(
            task_id=spec.task_id,
            run_id=spec.run_id,
            name=spec.name,
            emit=self._thread_safe(emit),
            lend_slot=self.limiter.lend if is_async else self._lend_sync,
            reclaim_slot=self.limiter.reclaim if is_async else self._reclaim_sync,
            loop=self._loop,
            call_key=spec.call_key,
            group=spec.group,
            custom_context=spec.custom_context,
            attempt=spec.attempt or 1,
            run_options=spec.run_options,
            parent_task_id=spec.parent_task_id,
            replica_id=self.config.replica_id,
        )
        current_task.set(ctx)  # also gives log lines their run and task ids (see logs.py)
        timer = (
            self._loop.call_later(spec.timeout, self.cancel, spec.task_id, "timed out")
            if spec.timeout
            else None
        )
        failed = True
        try:
            if is_async:
                value = await fn(*args, **kwargs)  # type: ignore[misc]
            else:
                value = await self._run_sync(ctx, fn, args, kwargs)
                if inspect.isawaitable(value):
                    value = await value
            failed = False
        except asyncio.CancelledError:
            if spec.task_id not in self._cancelled:
                raise  # the replica is shutting down: _finished reports it
            return self._interrupted(spec, started)
        except BaseException as exc:
            return TaskResult(
                spec.task_id,
                TaskState.FAILED,
                error=error_from_exception(
                    exc,
                    ErrorKind.USER_NON_RECOVERABLE
                    if isinstance(exc, NonRecoverableError)
                    else ErrorKind.USER,
                ),
                duration=time.perf_counter() - started,
            )
        finally:
            if timer is not None:
                timer.cancel()
            flush_task(ctx)
            if ctx.holds_slot:
                self.limiter.release(failed=failed)
        if spec.task_id in self._cancelled:
            return self._interrupted(spec, started)
        return self._encode_result(spec, value, started)

    async def _run_sync(
        self,
        ctx: TaskContext,
        fn: Callable[..., object],
        args: tuple[object, ...],
        kwargs: dict[str, object],
    ) -> object:
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        await self._sync_turn.acquire()
        try:
            thread = self._loop.run_in_executor(self._sync_pool, call)
            try:
                return await asyncio.shield(thread)
            except asyncio.CancelledError:
                # A thread cannot be interrupted. Keep the turn until it really ends, so
                # sync tasks never overlap; the controller replaces the replica if the
                # task outlives its cancel grace period.
                while not thread.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait({thread})
                raise
        finally:
            if ctx.holds_slot:  # it holds its turn too (see _lend_sync / _reclaim_sync)
                self._sync_turn.release()

    def _lend_sync(self) -> None:
        self.limiter.lend()
        self._sync_turn.release()

    async def _reclaim_sync(self) -> None:
        # Same order as a new task (slot, then turn), so the two cannot deadlock.
        await self.limiter.reclaim()
        try:
            await self._sync_turn.acquire()
        except asyncio.CancelledError:
            self.limiter.release(count=False)
            raise

    def _interrupted(self, spec: TaskSpec, started: float) -> TaskResult:
        why = self._cancelled.get(spec.task_id, "cancelled")
        timed_out = why == "timed out"
        message = (
            f"task {spec.name or spec.task_id} timed out after {spec.timeout:g} s"
            if timed_out and spec.timeout
            else f"task {spec.name or spec.task_id} was {why}"
        )
        return TaskResult(
            spec.task_id,
            TaskState.TIMED_OUT if timed_out else TaskState.CANCELLED,
            error=RemoteError(
                ErrorKind.TIMED_OUT if timed_out else ErrorKind.CANCELLED,
                "TimeoutError" if timed_out else "CancelledError",
                message,
            ),
            duration=time.perf_counter() - started,
        )

    def _loaded(self, spec: TaskSpec) -> Callable[..., object] | None:
        """The function ``spec`` names, if it is loaded already (see :meth:`_resolve`)."""
        if spec.ref is None:
            return None
        try:
            return self.loader.ready(spec.ref)
        except CodeNotFoundError as exc:
            raise _not_found(exc) from None

    async def _resolve(self, spec: TaskSpec) -> Callable[..., object]:
        if spec.ref is not None:
            try:
                return await self.loader.resolve(spec.ref, spec.bundle)
            except CodeNotFoundError as exc:
                raise _not_found(exc) from None
        if spec.pickled is not None:
            self._check_size(spec, "function", len(spec.pickled))
            try:
                fn = pickle.loads(spec.pickled)
            except Exception as exc:
                raise _Rejected(
                    _bad_input(
                        f"could not unpickle the task's function ({type(exc).__name__}: {exc}); "
                        f"send cloudpickle.dumps(fn) made with a compatible Python and cloudpickle"
                    )
                ) from None
            if not callable(fn):
                raise _Rejected(
                    _bad_input(f"the pickled function is a {type(fn).__name__}, not a callable")
                )
            return fn  # type: ignore[no-any-return]
        raise _Rejected(_bad_input("the task names no function: set `ref` or `pickled`"))

    def _decode_args(self, spec: TaskSpec) -> tuple[tuple[object, ...], dict[str, object]]:
        self._check_size(spec, "arguments", len(spec.args))
        if not spec.args:
            return (), {}
        try:
            decoded = pickle.loads(spec.args)
        except Exception as exc:
            raise _Rejected(
                _bad_input(
                    f"could not unpickle the task's arguments ({type(exc).__name__}: {exc}); "
                    f"send cloudpickle.dumps((args_tuple, kwargs_dict))"
                )
            ) from None
        if (
            not isinstance(decoded, tuple)
            or len(decoded) != 2
            or not isinstance(decoded[0], (tuple, list))
            or not isinstance(decoded[1], dict)
        ):
            raise _Rejected(
                _bad_input(
                    f"the task's arguments decode to a {type(decoded).__name__}; "
                    f"expected a pair (args_tuple, kwargs_dict)"
                )
            )
        return tuple(decoded[0]), decoded[1]

    def _check_size(self, spec: TaskSpec, what: str, size: int) -> None:
        if size > self.config.max_payload:
            raise _Rejected(
                _bad_input(
                    f"the task's {what} are {size} bytes, over this replica's limit of "
                    f"{self.config.max_payload} bytes (--max-payload)"
                )
            )

    def _encode_result(self, spec: TaskSpec, value: object, started: float) -> TaskResult:
        duration = time.perf_counter() - started
        try:
            data = dumps_plain(value) or pickling.dumps(value)
        except BaseException as exc:
            task = spec.name or spec.task_id
            if isinstance(exc, ProcessResourceError):  # its message is the whole story
                label = f"the result of task {task}"
                type_name, message = "", exc.describe(label, value, "back to the caller", "return")
            else:
                type_name = type(exc).__name__
                message = (
                    f"the result of task {task} (a {_type_name(value)}) "
                    f"cannot be pickled: {type_name}: {_short(exc)}"
                )
            return TaskResult(
                spec.task_id,
                TaskState.FAILED,
                duration=duration,
                error=RemoteError(ErrorKind.BAD_OUTPUT, type_name, message),
            )
        if len(data) > self.config.max_payload:
            return TaskResult(
                spec.task_id,
                TaskState.FAILED,
                duration=duration,
                error=RemoteError(
                    ErrorKind.BAD_OUTPUT,
                    "PayloadTooLarge",
                    f"the result of task {spec.name or spec.task_id} is {len(data)} bytes, "
                    f"over the "
                    f"limit of {self.config.max_payload} bytes (--max-payload)",
                ),
            )
        return TaskResult(
            spec.task_id,
            TaskState.SUCCEEDED,
            value=data,
            replica_id=self.config.replica_id,
            duration=duration,
            attempts=spec.attempt or 1,
        )

    def _thread_safe(self, emit: Callable[[LogLine], None]) -> Callable[[LogLine], None]:
        loop, loop_thread = self._loop, self._loop_thread

        def emit_anywhere(line: LogLine) -> None:
            if threading.get_ident() == loop_thread:
                emit(line)
            else:
                loop.call_soon_threadsafe(emit, line)

        return emit_anywhere


# ---------------------------------------------------------------- errors


def error_from_exception(exc: BaseException, kind: ErrorKind) -> RemoteError:
    """Describe ``exc`` for the caller: type, message, remote traceback, and pickle if possible.

    ``SystemExit``, ``KeyboardInterrupt`` and ``GeneratorExit`` are the task's own
    failure: they travel as a description only, never as themselves, so they cannot
    become the caller's exit.
    """
    tb = _format_traceback(exc)
    if not isinstance(exc, Exception):
        return RemoteError(kind, _type_name(exc), describe_base_exception(exc), tb)
    message = _short(exc)
    try:
        pickled = _pickle_exception(exc)
    except BaseException as pickle_error:
        pickled = b""
        message += (
            f" [the {_type_name(exc)} itself could not be pickled: "
            f"{type(pickle_error).__name__}: {_short(pickle_error)}]"
        )
    return RemoteError(kind, _type_name(exc), message, tb, pickled)


def _pickle_exception(exc: Exception) -> bytes:
    """``exc`` pickled; without the attributes that cannot be, if that is what fails.

    Each attribute left out is named in a note on the exception the caller gets.
    """
    try:
        return pickling.dumps(exc)
    except Exception:
        state = user_exceptions.exception_state(exc)
        if not state:
            raise
    kept: dict[str, object] = {}
    notes: list[str] = []
    for name, value in state.items():
        try:
            pickling.dumps(value)
        except Exception as problem:
            what = problem.what if isinstance(problem, ProcessResourceError) else "a value"
            notes.append(f"attribute {name!r} ({what}) was left out: it cannot be pickled")
        else:
            kept[name] = value
    copy = user_exceptions.rebuild_exception(
        type(exc), exc.args, user_exceptions.builtin_fields(exc)
    )
    copy.__dict__.update(kept)
    # Python 3.11 shows an exception's __notes__ under its traceback.
    setattr(copy, "__notes__", [*getattr(copy, "__notes__", ()), *notes])  # noqa: B010
    return pickling.dumps(copy)


def describe_base_exception(exc: BaseException) -> str:
    """What a task did when it raised a non-``Exception`` (``sys.exit()``, say)."""
    if isinstance(exc, SystemExit):
        return f"the task called sys.exit({exc.code!r}); a task cannot exit its caller"
    detail = _short(exc)
    return f"the task raised {type(exc).__name__}" + (f": {detail}" if detail else "")


def _format_traceback(exc: BaseException) -> str:
    try:
        return format_exception(exc)
    except BaseException as format_error:  # a broken __str__, deep recursion
        return f"(traceback unavailable: {type(format_error).__name__})"


def _cause_traceback(exc: BaseException) -> str:
    cause = exc.__cause__
    return _format_traceback(cause) if cause is not None else ""


def _type_name(obj: object) -> str:
    return pickling.user_type_name(obj if isinstance(obj, type) else type(obj))


def _short(exc: BaseException, limit: int = 2000) -> str:
    try:
        text = str(exc)
    except BaseException:
        text = f"<unprintable {type(exc).__name__}>"
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def _bad_input(message: str) -> RemoteError:
    return RemoteError(ErrorKind.BAD_INPUT, "BadInputError", message)
