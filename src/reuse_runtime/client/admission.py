"""Flow control: how many of a client's tasks the controller holds, and when a caller
may serialize the next one.

:class:`Admission` decides which tasks go to the controller now and which wait in the
client; :class:`CallerTurns` queues the callers that must wait before they serialize
a task's arguments at all. Both keep a client's cost to the shared controller, and
its own memory, bounded however many tasks its callers make at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from reuse_runtime import model
from reuse_runtime.client.results import ResultStream
from reuse_runtime.envvars import env_number, env_size

#: Unfinished tasks one controller client keeps at the controller; the rest wait in
#: the client. Override with ``$REUSE_RUNTIME_MAX_OUTSTANDING``.
MAX_OUTSTANDING = 10_000
#: Bytes of task arguments one client keeps at the controller, and holds serialized
#: while they wait to be sent; a caller serializing past it waits its turn. One task
#: larger than this still goes, alone. Override with ``$REUSE_RUNTIME_MAX_OUTSTANDING_BYTES``.
MAX_OUTSTANDING_BYTES = 64 * 2**20
MAX_OUTSTANDING_BYTES_ENV = "REUSE_RUNTIME_MAX_OUTSTANDING_BYTES"
#: Calls a client lets wait for the stream's writer at once; the next callers wait to
#: serialize until it takes them. A parent gathering 10k children starts them a batch
#: at a time instead of making all 10k before the first is sent. Measured on 2 cores
#: (10 ms children, 10k, capacity 200): 300 came closest to the ideal makespan, with
#: noop throughput no lower than at 1000; 100 or 200 were as close but cost more CPU.
SEND_AHEAD = 300


def default_max_outstanding_bytes() -> int:
    """``$REUSE_RUNTIME_MAX_OUTSTANDING_BYTES`` (bytes, or a size like ``64Mi``), or
    :data:`MAX_OUTSTANDING_BYTES`."""
    return env_size(
        MAX_OUTSTANDING_BYTES_ENV,
        MAX_OUTSTANDING_BYTES,
        least=1,
        needs="a size of at least 1 byte, like 67108864 or 64Mi",
    )


def default_max_outstanding() -> int:
    """``$REUSE_RUNTIME_MAX_OUTSTANDING``, or :data:`MAX_OUTSTANDING`."""
    return env_number(
        "REUSE_RUNTIME_MAX_OUTSTANDING",
        MAX_OUTSTANDING,
        int,
        valid=lambda tasks: tasks >= 1,
        needs="a whole number of tasks, at least 1",
    )


#: A task held in the client, with the future its caller waits on.
Held = tuple[model.Submission, "asyncio.Future[Any]"]


class Admission:
    """How many of a client's tasks the controller holds at once: flow control.

    A task is sent while fewer than ``limit`` of this client's tasks are
    unfinished and their arguments with its own stay within ``max_bytes`` (or
    nothing else is out: one task larger than that still goes, alone); the rest
    wait here (as plain objects, in order), so a parent that gathers 100k children
    costs the shared controller at most ``limit`` records and ``max_bytes`` of
    arguments. The bytes held here are bounded too, by :meth:`ControllerClient.room`.

    One exception keeps nested fan-out from deadlocking: a child is always sent
    when its parent has no other child at the controller. The controller lends a
    waiting parent's slot only while it knows one of its children; without the
    exception, parents whose children wait here would hold every slot, and the
    tasks at the controller could never run to make room.
    """

    def __init__(self, limit: int, max_bytes: int = MAX_OUTSTANDING_BYTES) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self.outstanding = 0
        self.outstanding_bytes = 0  # arguments of the tasks at the controller
        self.held_bytes = 0  # arguments of the tasks held here
        self.peak_bytes = 0  # most outstanding_bytes ever: for tests and benchmarks
        self._sizes: dict[str, int] = {}  # task id -> its argument bytes, while counted
        self._children: dict[str, int] = {}  # parent id -> its children at the controller
        self._parent_of: dict[str, str] = {}  # child id -> parent id, while at the controller
        # Held tasks, per parent ("" for top-level tasks), parents in arrival order.
        # OrderedDicts: popping the first of a plain dict again and again is quadratic.
        self._held: OrderedDict[str, OrderedDict[str, Held]] = OrderedDict()
        self._held_under: dict[str, str] = {}  # held task id -> its parent's key
        # Held children per run, for the run's progress; runs changed since the last batch.
        self._held_runs: dict[str, int] = {}
        self._held_changed: set[str] = set()

    def admits(self, submission: model.Submission, size: int) -> bool:
        """Whether ``submission`` (of :func:`task_size` ``size``) goes now, not held."""
        if self.outstanding < self.limit and not self._held and self._fits(size):
            return True
        parent = submission.task.parent_task_id
        return bool(parent) and not self._children.get(parent)

    def _fits(self, size: int) -> bool:
        """Whether ``size`` more bytes (of tasks about to go) stay within the limit."""
        return not self.outstanding or self.outstanding_bytes + size <= self.max_bytes

    def over_bytes(self) -> bool:
        """Whether the arguments held here are at the byte limit."""
        return self.held_bytes >= self.max_bytes

    def has_children(self, parent_task_id: str) -> bool:
        """Whether ``parent_task_id`` (``""``: top level) has a task here or out."""
        if not parent_task_id:
            return bool(self.outstanding or self._held)
        return bool(self._children.get(parent_task_id)) or parent_task_id in self._held

    def hold(self, submission: model.Submission, future: asyncio.Future[Any], size: int) -> None:
        task = submission.task
        task_id = task.task_id
        self.held_bytes += size
        self._sizes[task_id] = size
        parent = task.parent_task_id
        held = self._held.get(parent)
        if held is None:
            held = self._held[parent] = OrderedDict()
        held[task_id] = (submission, future)
        self._held_under[task_id] = parent
        if parent:
            self._count_held(task.run_id, 1)

    def sent(self, task: model.TaskSpec, size: int | None = None) -> None:
        """``task`` went to the controller; ``size`` is its :func:`task_size` when known
        (a task that was held has its size here already)."""
        self.outstanding += 1
        if size is None:
            size = self._sizes[task.task_id]  # counted when it was held
        if size:
            self._sizes[task.task_id] = size
            self.outstanding_bytes += size
            if self.outstanding_bytes > self.peak_bytes:
                self.peak_bytes = self.outstanding_bytes
        parent = task.parent_task_id
        if parent:
            self._parent_of[task.task_id] = parent
            self._children[parent] = self._children.get(parent, 0) + 1

    def settled(self, task_id: str) -> list[Held]:
        """A sent task finished: the held tasks to send now, in order."""
        self.outstanding -= 1
        sizes = self._sizes
        self.outstanding_bytes -= sizes.pop(task_id, 0)
        parent = self._parent_of.pop(task_id, "")
        release = []
        extra = 0  # bytes of the tasks released so far
        if parent:
            left = self._children[parent] - 1
            if left:
                self._children[parent] = left
            else:
                del self._children[parent]
                # The parent must keep one child out.
                child = self._first_waiting(parent)
                if child is not None:
                    release.append(self._take(parent))
                    extra = sizes[child]
        all_held = self._held
        room = self.limit - self.outstanding - len(release)
        while room > 0 and all_held:
            first = next(iter(all_held))  # O(1) on an OrderedDict
            child = self._first_waiting(first)
            if child is None:
                continue  # every one of that parent's held tasks was given up
            if not self._fits(extra + sizes[child]):
                break
            release.append(self._take(first))
            extra += sizes[child]
            room -= 1
        return release

    def _first_waiting(self, parent: str) -> str | None:
        """The first of ``parent``'s held tasks whose caller still waits for it. Those
        before it whose callers stopped waiting are dropped: never sent, they take no
        turn from the next (with nothing else out, the rest would wait forever)."""
        held = self._held.get(parent)
        while held:
            task_id, (_, future) = next(iter(held.items()))
            if not future.done():
                return task_id
            self._remove(parent, task_id)
            held = self._held.get(parent)
        return None

    def unsent(self, task_id: str) -> None:
        """A task :meth:`settled` released is not sent after all (the client closed)."""
        self._sizes.pop(task_id, None)

    def drop(self, task_id: str, run_id: str) -> list[Held]:
        """Forget held tasks being cancelled (by id, or every one of a run)."""
        dropped = []
        parent = self._held_under.get(task_id)
        if parent is not None:
            dropped.append(self._remove(parent, task_id))
        if run_id:
            for parent, held in list(self._held.items()):
                for held_id, (submission, _) in list(held.items()):
                    if submission.task.run_id == run_id:
                        dropped.append(self._remove(parent, held_id))
        return dropped

    def _remove(self, parent: str, task_id: str) -> Held:
        held = self._held[parent]
        entry = held.pop(task_id)
        del self._held_under[task_id]
        self.held_bytes -= self._sizes.pop(task_id, 0)
        if not held:
            del self._held[parent]
        if parent:
            self._count_held(entry[0].task.run_id, -1)
        return entry

    def resend_held_counts(self) -> None:
        """Report every run's held count again with the next batch."""
        self._held_changed.update(self._held_runs)

    def drop_all(self) -> list[Held]:
        held = [entry for entries in self._held.values() for entry in entries.values()]
        for task_id in self._held_under:
            self._sizes.pop(task_id, None)
        self.held_bytes = 0
        self._held.clear()
        self._held_under.clear()
        self._held_changed.update(self._held_runs)
        self._held_runs.clear()
        return held

    def _take(self, parent: str) -> Held:
        held = self._held[parent]
        task_id, entry = held.popitem(last=False)
        del self._held_under[task_id]
        self.held_bytes -= self._sizes.get(task_id, 0)  # kept: sent() counts it out
        if not held:
            del self._held[parent]
        if parent:
            self._count_held(entry[0].task.run_id, -1)
        return entry

    def _count_held(self, run_id: str, change: int) -> None:
        if not run_id:
            return
        count = self._held_runs.get(run_id, 0) + change
        if count > 0:
            self._held_runs[run_id] = count
        else:
            self._held_runs.pop(run_id, None)
        self._held_changed.add(run_id)

    def held_changes(self) -> list[tuple[str, int]]:
        """Runs whose held count changed since the last call, with the count now."""
        if not self._held_changed:
            return []
        changes = [(run_id, self._held_runs.get(run_id, 0)) for run_id in self._held_changed]
        self._held_changed.clear()
        return changes


async def take_turn(queue: deque[asyncio.Future[None]], pass_on: Callable[[], None]) -> None:
    """Wait in ``queue`` until whoever serves it resolves this caller's future. A caller
    cancelled just as its turn came passes the turn on (``pass_on``); one cancelled
    before leaves the queue."""
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    queue.append(waiter)
    try:
        await waiter
    except asyncio.CancelledError:
        if waiter.done() and not waiter.cancelled():
            pass_on()
        else:
            with contextlib.suppress(ValueError):
                queue.remove(waiter)
        raise


class CallerTurns:
    """Callers waiting for their turn to serialize a task's arguments, in order.

    Two queues, both served one turn at a time:

    * ``send_waiters``: callers waiting while :data:`SEND_AHEAD` tasks wait for the
      stream's writer; :meth:`flushed` lets the next ones go once it takes them. Many
      calls made at once go out in batches as they are made, not all after the last.
    * ``room_waiters``: per parent (``""`` for top-level calls), parents in arrival
      order, callers waiting while the arguments held in the client are over the
      byte limit; :meth:`wake` lets the next one go. Memory stays bounded by bytes.

    ``unsent`` says how many tasks wait for the current stream's writer (0 without a
    stream). The client checks the queues and the limits itself before it calls
    :meth:`send_turn` or :meth:`room_turn`: the common case (nobody waits) costs no
    call here.
    """

    def __init__(self, admission: Admission, unsent: Callable[[], int]) -> None:
        self._admission = admission
        self._unsent = unsent
        self.room_waiters: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()
        self.send_waiters: deque[asyncio.Future[None]] = deque()

    async def send_turn(self, stream: ResultStream[Any] | None) -> None:
        """Wait for ``stream``'s writer to take the tasks before this caller's; with
        nobody queued, the caller may write them here and now instead (see
        :meth:`ResultStream.write_now`), and then it does not wait."""
        if self.send_waiters or stream is None or not stream.write_now():
            await take_turn(self.send_waiters, self.flushed)

    async def room_turn(self, parent_task_id: str) -> None:
        """Wait while the held bytes are over the limit, unless ``parent_task_id`` has
        no task here or at the controller (nested fan-out cannot deadlock)."""
        if not self._admission.has_children(parent_task_id):
            return
        waiting = self.room_waiters.get(parent_task_id)
        if waiting is None:
            waiting = self.room_waiters[parent_task_id] = deque()
        try:
            await take_turn(waiting, self.wake)
        finally:
            if not waiting and self.room_waiters.get(parent_task_id) is waiting:
                del self.room_waiters[parent_task_id]

    def flushed(self, everyone: bool = False) -> None:
        """The writer took what waited (or there is no stream): let callers serialize
        again, as many as fit in :data:`SEND_AHEAD` (``everyone``: all)."""
        waiters = self.send_waiters
        room = len(waiters) if everyone else SEND_AHEAD - self._unsent()
        while waiters and room > 0:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                room -= 1

    def wake(self, parent_task_id: str | None = None) -> None:
        """Let the next waiting caller serialize its task, if the held bytes allow; or
        the next of ``parent_task_id``'s, whatever the bytes, when it has nothing out.

        One at a time: it submits at once (which wakes the next), so the bytes it adds
        are counted before another caller serializes.
        """
        if parent_task_id is not None:
            if parent_task_id not in self.room_waiters or self._admission.has_children(
                parent_task_id
            ):
                return
            parent = parent_task_id
        elif self.room_waiters and not self._admission.over_bytes():
            parent = next(iter(self.room_waiters))
        else:
            return
        waiting = self.room_waiters[parent]
        while waiting:
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
        if not waiting:
            del self.room_waiters[parent]
