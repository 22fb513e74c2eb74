"""The batched result stream: many tasks over one bidi stream, a future per task.

:class:`ResultStream` backs both the worker client (straight to a replica) and the
controller client. It is batched both ways: what callers submit while a write is
in flight goes out together in the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import types
from collections.abc import Callable, Coroutine, Generator, Iterable
from typing import Any, Generic, TypeVar

import grpc

from reuse_runtime import model
from reuse_runtime.client.channel import rpc_failure
from reuse_runtime.errors import BadInputError, ClosedError, ControllerUnavailableError
from reuse_runtime.wire import stubs
from reuse_runtime.wire.batching import MAX_PAYLOAD_BYTES, in_batches, task_size

Item = TypeVar("Item")
#: Futures of tasks still waiting for their results, by task id.
Pending = dict[str, "asyncio.Future[model.TaskResult]"]


class ResultStream(Generic[Item]):
    """Submit items over one bidi stream and get a future per item's task result.

    Call-order contract: create inside the running loop; :meth:`close` half-closes
    the stream and waits for outstanding results; :meth:`abort` fails them.

    ``read`` turns each message received into its results, output lines and the
    ids of tasks handed back (see :mod:`reuse_runtime.wire.stubs`).

    With ``on_ended``, a stream that ends or breaks fails nothing: it hands the
    futures still pending to ``on_ended`` (with the error, or None), once, so its
    owner can send those tasks again. ``on_returned`` receives the futures of tasks
    the server handed back unfinished (a controller shutting down).
    """

    def __init__(
        self,
        open_call: Callable[[], Any],
        make_batch: Callable[[list[Item], list[str]], Any],
        read: Callable[[Any, Any], stubs.Events],
        task_id: Callable[[Item], str],
        size: Callable[[Item], int],
        *,
        target: str,
        on_logs: Callable[[list[model.LogLine]], None] | None = None,
        on_settled: Callable[[str], None] | None = None,
        on_returned: Callable[[Pending], None] | None = None,
        on_ended: Callable[[Pending, BaseException | None], None] | None = None,
        on_flushed: Callable[[], None] | None = None,
    ) -> None:
        self._make_batch = make_batch
        self._read_events = read
        self._on_flushed = on_flushed
        self._on_settled = on_settled
        self._on_returned = on_returned
        self._on_ended = on_ended
        self._task_id = task_id
        self._size = size
        self._target = target
        self._on_logs = on_logs
        self._outbox: list[Item] = []
        self._cancels: list[str] = []
        self._pending: dict[str, asyncio.Future[model.TaskResult]] = {}
        self._wakeup = asyncio.Event()
        self._closing = False
        self._failure: BaseException | None = None
        #: Messages received: a stream that broke before any did made no progress.
        self.received = 0
        #: Results received for tasks this stream was not waiting for (already resolved):
        #: a result delivered twice. Nothing should ever count here.
        self.duplicates = 0
        # The write in flight (one at a time, as gRPC allows), or None.
        self._writing: asyncio.Future[None] | None = None
        self._call = open_call()
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read(), name=f"result-stream:{target}")
        self._writer = loop.create_task(self._write_loop(), name=f"result-writer:{target}")

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def broken(self) -> bool:
        return self._failure is not None or self._reader.done()

    @property
    def unsent(self) -> int:
        """Items submitted and not yet taken by the stream's writer."""
        return len(self._outbox)

    def submit(
        self, item: Item, future: asyncio.Future[model.TaskResult] | None = None
    ) -> asyncio.Future[model.TaskResult]:
        """Send ``item``; ``future`` (or a new one) resolves to its result."""
        if self._failure is not None:
            raise rpc_failure(self._failure, self._target)
        if self._closing:
            raise ClosedError(f"the stream to {self._target} is closing")
        task_id = self._task_id(item)
        if future is None:
            future = asyncio.get_running_loop().create_future()
        self._pending[task_id] = future
        self._outbox.append(item)
        self._wakeup.set()
        return future

    def cancel(self, task_id: str) -> None:
        if task_id in self._pending:
            self._cancels.append(task_id)
            self._wakeup.set()

    async def close(self) -> None:
        """Send nothing more; wait for the results already asked for."""
        self._closing = True
        self._wakeup.set()
        await asyncio.gather(self._reader, return_exceptions=True)

    def abort(self, reason: str) -> None:
        self._closing = True
        self._call.cancel()
        self._writer.cancel()
        self._fail_pending(ClosedError(reason))

    def write_now(self) -> bool:
        """Start writing what waits, here, in the caller's own step, if no write is in
        flight. The message is on its way before this returns: a gather of 10k calls
        queues 10k first steps on the loop, and the writer task's turn comes after them
        all (about 25 ms later, in which the replicas would have nothing to run)."""
        if self._writing is not None or not (self._outbox or self._cancels):
            return False
        if self._failure is not None or self._call.done():
            return False
        self._start_write(_started)
        return True

    def _start_write(
        self, start: Callable[[Coroutine[Any, Any, None]], asyncio.Future[None]]
    ) -> asyncio.Future[None]:
        """The one write in flight, begun by ``start`` (a task, or :func:`_started`)."""
        writing = self._writing = start(self._write_out())
        writing.add_done_callback(self._written)
        return writing

    async def _write_out(self) -> None:
        """Write what waits, cut into messages of at most about BATCH_BYTES of payload."""
        batch, self._outbox = self._outbox, []
        cancels, self._cancels = self._cancels, []
        if self._on_flushed is not None:
            self._on_flushed()
        try:
            for items, last in in_batches(batch, self._size):
                await self._call.write(self._make_batch(items, cancels if last else []))
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            raise  # the stream ended or broke: the reader sees it and says why
        except Exception:
            self._call.cancel()  # as gRPC does when a request iterator fails
            raise

    def _written(self, writing: asyncio.Future[None]) -> None:
        # The writer loop waits for every write, and submits woke it: only the slot frees.
        self._writing = None
        if not writing.cancelled():
            writing.exception()  # retrieved here too: a broken stream is the reader's to report

    async def _write_loop(self) -> None:
        """The stream's writer: one write at a time, its own or one a caller started."""
        while True:
            writing = self._writing
            if writing is None and (self._outbox or self._cancels):
                writing = self._start_write(asyncio.ensure_future)
            if writing is not None:
                await asyncio.wait([writing])
                if writing.cancelled() or writing.exception() is not None:
                    return
                continue
            if self._closing and (not self._pending or self._failure is not None):
                break
            self._wakeup.clear()
            await self._wakeup.wait()
        if self._failure is None:
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                await self._call.done_writing()

    async def _read(self) -> None:
        error: BaseException | None = None
        try:
            async for message, big in self._call:
                self.received += 1
                results, logs, returned = self._read_events(message, big)
                if logs and self._on_logs is not None:
                    self._on_logs(logs)
                for result in results:
                    future = self._pending.pop(result.task_id, None)
                    if future is None:
                        self.duplicates += 1
                        continue
                    if not future.done():
                        future.set_result(result)
                    if self._on_settled is not None:
                        self._on_settled(result.task_id)
                if returned and self._on_returned is not None:
                    self._on_returned(self._take(returned))
                if self._closing and not self._pending:
                    self._wakeup.set()
            if self._pending and self._on_ended is None:
                raise ControllerUnavailableError(
                    f"{self._target} ended the stream with {len(self._pending)} results outstanding"
                )
        except BaseException as exc:
            error = self._failure = exc
            if self._on_ended is None:
                self._fail_pending(rpc_failure(exc, self._target))
            self._wakeup.set()
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._closing = True
            self._wakeup.set()
            if self._on_ended is not None:
                pending, self._pending = self._pending, {}
                self._on_ended(pending, error)

    def _take(self, task_ids: Iterable[str]) -> Pending:
        taken = {}
        for task_id in task_ids:
            future = self._pending.pop(task_id, None)
            if future is not None:
                taken[task_id] = future
        return taken

    def _fail_pending(self, exc: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for task_id, future in pending.items():
            if not future.done():
                future.set_exception(exc)
            if self._on_settled is not None:
                self._on_settled(task_id)


def checked_size(task: model.TaskSpec) -> int:
    """The task's :func:`task_size`; a task no message can carry is refused here, before
    it is queued with others."""
    size = task_size(task)
    if size > MAX_PAYLOAD_BYTES:
        raise BadInputError(
            f"task {task.name or task.task_id} carries {size} bytes of arguments, function and "
            f"code; one task can carry at most {MAX_PAYLOAD_BYTES} (one gRPC message): pass "
            f"large data as a file",
            type_name="PayloadTooLarge",
        )
    return size


def _started(coro: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
    """``coro`` as a task whose first step has already run, here, in the caller's step
    (a new task's first step would wait its turn on the loop)."""
    loop = asyncio.get_running_loop()
    try:
        pending = coro.send(None)
    except StopIteration:
        done = loop.create_future()
        done.set_result(None)
        return done
    except Exception as exc:
        failed = loop.create_future()
        failed.set_exception(exc)
        return failed
    return loop.create_task(_resume(coro, pending))


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], pending: Any) -> Generator[Any, None, None]:
    """Drive ``coro`` on from where its first step left it (waiting for ``pending``), as
    the task running this does: resumed once ``pending`` is done, or thrown into."""
    while True:
        try:
            yield pending
        except BaseException as exc:  # what the awaited future ended with, or a cancel
            step = functools.partial(coro.throw, exc)
        else:
            step = functools.partial(coro.send, None)
        try:
            pending = step()
        except StopIteration:
            return
