"""`ReuseHarness`: test your own tasks' reuse in-process, on a fake clock.

It emulates a reusable pool without subprocesses, with the runtime's real parts:
the controller's pool, router and autoscaler (``decide_scale``), the worker's
executor, limiter and loader. Only the processes and the network are emulated.

* **Warm state.** Each emulated replica imports your task module once, into a
  copy of its own: module globals, ``functools.cache`` and lazily loaded models
  persist across calls on that replica and are separate between replicas, as in
  real replica processes. (Classes stay shared with your test's import, so
  ``pytest.raises(MyError)`` and comparisons work.) ``replica.module(mod)`` gives
  a replica's copy of a module, to look at its globals.
* **Concurrency** is bounded by the replica's real limiter (``concurrency``).
* **Time.** ``scaledown_ttl``, ``idle_ttl``, ``max_lifetime`` and scaling run on
  a fake clock: ``advance(seconds)`` moves it, and the pool reacts at once. A
  test never sleeps. (Task timeouts and cancel grace periods stay in real time.)
  ``max_tasks`` recycles as for real; ``max_rss`` does not (every emulated
  replica lives in the test's one process).
* **Children.** A task that calls another task dispatches it through the
  emulated controller, as on real replicas.

Example, with the ``reuse`` pytest fixture (a fresh harness per test)::

    import tasks                       # env = TaskEnvironment("demo", reusable=ReusePolicy(
                                       #     replicas=(1, 2), concurrency=4, idle_ttl=300))

    def test_model_loads_once_per_replica(reuse):
        assert [reuse.run(tasks.predict, x) for x in range(10)] == [...]
        for replica in reuse.replicas(tasks.env):
            assert replica.module(tasks).LOADS == 1

    def test_pool_scales_to_zero_after_idle_ttl(reuse):
        reuse.run(tasks.predict, 1.0)
        assert reuse.replica_count(tasks.env) >= 1
        reuse.advance(300)             # fake seconds: returns at once
        assert reuse.replica_count(tasks.env) == 0

Enable the fixture with ``pytest_plugins = ["reuse_runtime.testing"]`` in your
``conftest.py`` (it is registered automatically when reuse-runtime is installed
with pip). Outside pytest, ``with ReuseHarness() as reuse:`` does the same.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import itertools
import signal
import threading
import time
import types
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from reuse_runtime import context as task_context
from reuse_runtime.aio import TaskSet
from reuse_runtime.backends.base import ExitStatus, ReplicaHandle, ReplicaLaunch
from reuse_runtime.errors import ReuseRuntimeError
from reuse_runtime.model import (
    EnvironmentSpec,
    ReplicaHello,
    ReplicaInit,
    ReplicaReport,
    ResultsBatch,
    Submission,
    TaskResult,
    TaskSpec,
)
from reuse_runtime.security import Security

if TYPE_CHECKING:
    from reuse_runtime.controller.pool import ReplicaPool
    from reuse_runtime.controller.service import ControllerService
    from reuse_runtime.sdk.environment import TaskEnvironment
    from reuse_runtime.sdk.task import TaskTemplate

T = TypeVar("T")

#: Real seconds to wait for replicas to start or stop before calling the harness stuck.
SETTLE_TIMEOUT = 30.0


class HarnessError(ReuseRuntimeError):
    """The harness cannot do what the test asked (a bug in the test, or a stuck replica)."""


class FakeClock:
    """Monotonic and wall time that move only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._wall_offset = time.time() - start

    def now(self) -> float:
        """Monotonic seconds (what the controller's clock reads)."""
        return self._now

    def wall(self) -> float:
        """Unix time, moving with :meth:`now`."""
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise HarnessError(f"time only moves forward; got advance({seconds})")
        self._now += seconds


@dataclass(frozen=True)
class ReplicaView:
    """An emulated replica, as a test sees it."""

    replica_id: str
    environment: str
    phase: str  # "starting", "ready" or "draining"
    active: int  # tasks holding a slot now
    completed: int  # tasks it finished
    idle_seconds: float | None  # fake seconds since its last task; None while busy
    _replica: _EmulatedReplica

    def module(self, module: types.ModuleType | str) -> types.ModuleType:
        """This replica's copy of ``module`` (loaded once it ran a task from it)."""
        name = module if isinstance(module, str) else module.__name__
        loaded = self._replica.loader.loaded_module(name)
        if loaded is None:
            raise HarnessError(f"replica {self.replica_id} has not loaded module {name!r}")
        return loaded


class ReuseHarness:
    """An emulated controller with in-process replicas, driven from ordinary (sync) code.

    It runs on its own event loop in a background thread, like the SDK's runtime,
    so tests need no async support. One harness may be open at a time: while it
    is, tasks' child calls in this process go to it.
    """

    def __init__(
        self,
        *,
        step: float = 1.0,
        replica_loss_budget: int = 2,
        cancel_grace: float = 5.0,
        max_backlog: int = 100_000,
    ) -> None:
        if step <= 0:
            raise HarnessError(f"step must be positive, got {step}")
        self.clock = FakeClock()
        self.step = step
        self._options = (replica_loss_budget, cancel_grace, max_backlog)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._core: _Core | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> ReuseHarness:
        if self._loop is not None:
            return self
        if task_context.in_process_client() is not None:
            raise HarnessError("another ReuseHarness is open in this process; close it first")
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="reuse-harness", daemon=True)
        self._thread.start()
        self._loop = loop
        self._core = self._call(_Core.create(self.clock, *self._options))
        task_context.set_in_process_client(self._core)
        return self

    def close(self) -> None:
        """Stop every replica and the loop. Idempotent."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        core, self._core = self._core, None
        if task_context.in_process_client() is core:
            task_context.set_in_process_client(None)
        try:
            if core is not None:
                asyncio.run_coroutine_threadsafe(core.close(), loop).result(SETTLE_TIMEOUT)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=10)
            loop.close()

    def __enter__(self) -> ReuseHarness:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------ tasks

    def run(self, task: TaskTemplate[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``task(*args, **kwargs)`` on its environment's emulated replicas; its value.

        Raises the task's exception if it failed, as ``Run.outputs()`` does.
        """
        return self.submit(task, *args, **kwargs).result()

    def submit(
        self, task: TaskTemplate[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        """Start ``task`` and return at once; the future holds its value or its error."""
        outcome: concurrent.futures.Future[T] = concurrent.futures.Future()
        started = asyncio.run_coroutine_threadsafe(
            self._running_core().submit_task(task, args, kwargs), self._running_loop()
        )

        def settle(done: concurrent.futures.Future[TaskResult]) -> None:
            try:
                outcome.set_result(done.result().unwrap(task.name))  # type: ignore[arg-type]
            except BaseException as exc:
                outcome.set_exception(exc)

        started.add_done_callback(settle)
        return outcome

    # ------------------------------------------------------------ time

    def advance(self, seconds: float) -> None:
        """Move the fake clock by ``seconds``, in steps of ``step``; the pool acts at each."""
        self._call(self._running_core().advance(seconds, self.step))

    # ------------------------------------------------------------ looking

    def replica_count(self, env: TaskEnvironment | str | None = None, *, phase: str = "") -> int:
        """Replicas of ``env`` (every environment by default), once starts and stops settle.

        ``phase`` counts only ``"starting"``, ``"ready"`` or ``"draining"`` ones.
        """
        return sum(1 for r in self.replicas(env) if not phase or r.phase == phase)

    def replicas(self, env: TaskEnvironment | str | None = None) -> list[ReplicaView]:
        return self._call(self._running_core().replicas(_env_name(env)))

    def is_idle(self, env: TaskEnvironment | str) -> bool:
        """No task of ``env`` runs or waits."""
        return self._call(self._running_core().is_idle(_env_name(env) or ""))

    def kill_replica(self, replica_id: str) -> None:
        """Emulate ``kill -9`` of a replica: its tasks are retried elsewhere, as for real."""
        self._call(self._running_core().kill(replica_id))

    # ------------------------------------------------------------ internals

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise HarnessError("the harness is not started: use `with ReuseHarness() as h:`")
        return self._loop

    def _running_core(self) -> _Core:
        self._running_loop()
        assert self._core is not None
        return self._core

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._running_loop()).result()


def _env_name(env: TaskEnvironment | str | None) -> str | None:
    if env is None or isinstance(env, str):
        return env
    return env.name


class _Core:
    """The harness's state, on its loop: the real controller service and fake replicas.

    It is also the client that tasks' child calls use (``ChildTaskClient``).
    """

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.tasks = TaskSet("harness")
        self.backend = _InProcessBackend(self)
        self.service: ControllerService | None = None
        self.pending: dict[str, asyncio.Future[TaskResult]] = {}
        self.runs = itertools.count(1)
        self.session: Any = None

    @classmethod
    async def create(
        cls, clock: FakeClock, loss_budget: int, cancel_grace: float, max_backlog: int
    ) -> _Core:
        from reuse_runtime.controller.service import ControllerService

        core = cls(clock)
        core.service = ControllerService(
            core.backend,
            address=lambda: "in-process",
            security=Security(),
            max_backlog=max_backlog,
            loss_budget=loss_budget,
            cancel_grace=cancel_grace,
            heartbeat=1.0,
            clock=clock.now,
        )
        core.session = core.service.open_session()
        core.tasks.spawn(core._deliver(), "results")
        core.tasks.spawn(core._autoscale(), "autoscaler")
        return core

    # ------------------------------------------------------------ ChildTaskClient

    async def register(self, env: EnvironmentSpec) -> str:
        return self._service.register_environment(env)

    async def room(self, parent_task_id: str = "") -> None:
        """In process, every child is handed to the service at once: no bytes cross a wire."""

    def submit(self, submission: Submission) -> asyncio.Future[TaskResult]:
        future: asyncio.Future[TaskResult] = asyncio.get_running_loop().create_future()
        self.pending[submission.task.task_id] = future
        self.session.submit(submission)
        return future

    async def cancel(self, *, task_id: str = "", run_id: str = "") -> int:
        return self._service.cancel(task_id, run_id)

    def cancel_soon(self, task_id: str) -> None:
        self.session.cancel(task_id)

    # ------------------------------------------------------------ harness operations

    async def submit_task(
        self, task: TaskTemplate[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> TaskResult:
        from reuse_runtime.sdk.task import CallContext

        where = CallContext(run_id=f"harness-{next(self.runs)}")
        key = await self.register(task.environment_spec(where))
        return await self.submit(task.submission(key, args, kwargs, where))

    async def advance(self, seconds: float, step: float) -> None:
        left = seconds
        while True:
            moved = min(step, left)
            self.clock.advance(moved)
            left -= moved
            self._service.tick()
            await self.settle()
            if left <= 1e-12:
                return

    async def replicas(self, env: str | None) -> list[ReplicaView]:
        await self.settle()
        views = []
        for pool in self._pools(env):
            for state in list(pool.replicas.values()):
                replica = self.backend.replicas.get(state.replica_id)
                if replica is None:
                    continue
                idle = state.idle_since()
                views.append(
                    ReplicaView(
                        replica_id=state.replica_id,
                        environment=pool.spec.name,
                        phase=state.phase.value,
                        active=replica.executor.limiter.statistics().active,
                        completed=state.completed,
                        idle_seconds=None if idle is None else self.clock.now() - idle,
                        _replica=replica,
                    )
                )
        return views

    async def is_idle(self, env: str) -> bool:
        await self.settle()
        return all(not p.backlog and not p.assigned for p in self._pools(env))

    async def kill(self, replica_id: str) -> None:
        replica = self.backend.replicas.get(replica_id)
        if replica is None:
            raise HarnessError(f"no replica {replica_id!r}; see replicas()")
        replica.kill(by_runtime=False)
        await self.settle()

    async def settle(self) -> None:
        """Wait until no replica is starting or stopping (and the pool saw it), in real time."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            for _ in range(3):
                await asyncio.sleep(0)
            # Starting, stopping, or ended and not yet forgotten by its pool.
            busy = [
                r.replica_id
                for pool in self._pools(None)
                for r in list(pool.replicas.values())
                if r.stopping
                or r.phase.value == "starting"
                or r.replica_id not in self.backend.replicas
                or self.backend.replicas[r.replica_id].exited.done()
            ]
            if not busy:
                return
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"replicas {busy} did not finish starting or stopping within "
                    f"{SETTLE_TIMEOUT:g} s (a slow on_start hook, or a task that ignores "
                    f"cancellation?)"
                )
            await asyncio.sleep(0.001)

    async def close(self) -> None:
        self.backend.closing = True  # replicas stop at once: no grace period to sit out
        await self.tasks.cancel_all("harness closed")
        if self.service is not None:
            await self.service.close()
        await self.backend.close()
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(HarnessError("the harness closed before the task ended"))

    # ------------------------------------------------------------ internals

    @property
    def _service(self) -> ControllerService:
        assert self.service is not None
        return self.service

    def _pools(self, env: str | None) -> list[ReplicaPool]:
        return [p for p in self._service.pools.values() if env is None or p.spec.name == env]

    async def _deliver(self) -> None:
        async for results, _logs in self.session.batches():
            for result in results:
                future = self.pending.pop(result.task_id, None)
                if future is not None and not future.done():
                    future.set_result(result)

    async def _autoscale(self) -> None:
        # Real-time ticks at the fake time: new work starts replicas at once, while
        # the TTLs only move when the test advances the clock.
        while True:
            self._service.tick()
            await asyncio.sleep(0.005)


class _InProcessBackend:
    """Starts :class:`_EmulatedReplica` objects instead of processes."""

    name = "in-process"
    #: Emulated replicas import what this process imports.
    shares_files = True

    def __init__(self, core: _Core) -> None:
        self._core = core
        self.replicas: dict[str, _EmulatedReplica] = {}
        self.closing = False

    async def start(self, launch: ReplicaLaunch) -> ReplicaHandle:
        replica = _EmulatedReplica(launch, self._core.clock)
        self.replicas[launch.replica_id] = replica
        self._core.tasks.spawn(replica.attach(self._core._service), f"attach:{launch.replica_id}")
        return replica

    async def stop(self, handle: ReplicaHandle, grace: float) -> None:
        await _emulated(handle).stop(0.0 if self.closing else grace)

    async def kill(self, handle: ReplicaHandle) -> None:
        _emulated(handle).kill()

    async def wait(self, handle: ReplicaHandle) -> ExitStatus:
        replica = _emulated(handle)
        status = await asyncio.shield(replica.exited)
        self.replicas.pop(replica.replica_id, None)
        return status

    def list(self) -> list[ReplicaHandle]:
        return [r for r in self.replicas.values() if not r.exited.done()]

    async def healthy(self, handle: ReplicaHandle) -> bool:
        return not _emulated(handle).exited.done()

    async def close(self) -> None:
        for replica in list(self.replicas.values()):
            replica.kill()
        self.replicas.clear()


def _emulated(handle: ReplicaHandle) -> _EmulatedReplica:
    if not isinstance(handle, _EmulatedReplica):
        raise TypeError(f"the in-process backend got a {type(handle).__name__} handle")
    return handle


class _EmulatedReplica:
    """One replica in this process: the worker's real executor, limiter and loader.

    It plays both ends the network would join: the controller's stream to the
    replica (``hello``, ``send_init``, ``dispatch``, ``cancel``, ``drain``) and
    the replica's events back (results and reports, through :meth:`attach`).
    """

    def __init__(self, launch: ReplicaLaunch, clock: FakeClock) -> None:
        from reuse_runtime.worker.executor import Executor, ExecutorConfig
        from reuse_runtime.worker.limiter import TaskLimiter
        from reuse_runtime.worker.loader import CodeLoader
        from reuse_runtime.worker.monitor import ReplicaMonitor
        from reuse_runtime.worker.servicer import WorkerService

        self.replica_id = launch.replica_id
        concurrency = launch.environment.policy.concurrency
        self.hello = ReplicaHello(launch.replica_id, concurrency)
        self.loader = CodeLoader(private=True)
        limiter = TaskLimiter(concurrency, clock=clock.now, wall_clock=clock.wall)
        self.executor = Executor(
            ExecutorConfig(replica_id=launch.replica_id, concurrency=concurrency),
            loader=self.loader,
            limiter=limiter,
        )
        self.monitor = ReplicaMonitor(launch.replica_id, limiter)
        self.service = WorkerService(self.executor, self.monitor)
        self.session = self.service.open_session()
        self._events: asyncio.Queue[ResultsBatch | ReplicaReport | None] = asyncio.Queue()
        self._tasks = TaskSet(f"replica:{launch.replica_id}")
        self._init: ReplicaInit | None = None
        self._starter: asyncio.Task[None] | None = None
        self._forwarder: asyncio.Task[None] | None = None
        self.exited: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        limiter.add_listener(lambda busy: self._report())

    # ------------------------------------------------------------ ReplicaHandle

    def describe(self) -> str:
        return "in-process"

    def stderr_tail(self) -> str:
        return ""

    # ------------------------------------------------------------ the controller's side

    def send_init(self, init: ReplicaInit) -> None:
        self._starter = self._tasks.spawn(self._start(init), "init")

    def dispatch(self, spec: TaskSpec) -> None:
        self.session.submit(spec)

    def cancel(self, task_id: str) -> None:
        self.session.cancel(task_id)

    def drain(self, reason: str) -> None:
        self._tasks.spawn(self.stop(5.0), "drain")

    def close(self) -> None:
        """The controller drops the stream: it ends."""
        self._events.put_nowait(None)

    # ------------------------------------------------------------ lifecycle

    async def attach(self, service: ControllerService) -> None:
        await service.attach(self, self._stream())

    async def _stream(self) -> Any:
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    async def _start(self, init: ReplicaInit) -> None:
        from reuse_runtime.worker.link import run_hook

        self._init = init
        if init.on_start is not None:
            await run_hook(self.service, init.on_start, init, "on_start")
        self._forwarder = self._tasks.spawn(self._forward(), "results")
        self._report()  # the first report makes the replica ready

    async def _forward(self) -> None:
        async for results, logs in self.session.batches():
            self._events.put_nowait(ResultsBatch(results, logs))

    def _report(self) -> None:
        if not self.exited.done():
            # Every emulated replica shares the test's process, so its memory says nothing
            # about the replica: report none, and max_rss never recycles here.
            self._events.put_nowait(dataclasses.replace(self.service.report(), rss_bytes=0))

    async def stop(self, grace: float) -> None:
        """Drain: no new tasks, let running ones finish within ``grace``, run on_stop, exit 0."""
        if self.exited.done() or self.monitor.draining:
            await asyncio.shield(self.exited)
            return
        from reuse_runtime.worker.link import run_hook

        self.monitor.draining = True
        self._report()
        if not await self.executor.wait_idle(grace):
            self.executor.cancel_all("cancelled: the replica's grace period ran out")
            await self.executor.wait_idle(5.0)
        self.session.close_input()
        if self._forwarder is not None:
            await asyncio.wait({self._forwarder}, timeout=5.0)
        if self._init is not None and self._init.on_stop is not None:
            await run_hook(self.service, self._init.on_stop, self._init, "on_stop")
        self._report()
        self._exit(ExitStatus(code=0))
        self.executor.close()

    def kill(self, *, by_runtime: bool = True) -> None:
        """Like ``kill -9``: nothing more reaches the controller, and running tasks stop."""
        if self.exited.done():
            return
        self._exit(ExitStatus(signal=signal.SIGKILL, by_runtime=by_runtime))
        self.executor.close()

    def _exit(self, status: ExitStatus) -> None:
        if self.exited.done():
            return
        self.exited.set_result(status)
        self._events.put_nowait(None)
        for task in (self._starter, self._forwarder):
            if task is not None:
                task.cancel()


# ---------------------------------------------------------------- pytest


def _fixture() -> Any:
    try:
        import pytest
    except ImportError:  # pragma: no cover - only pytest loads this as a plugin
        return None

    @pytest.fixture
    def reuse() -> Iterator[ReuseHarness]:
        """A fresh :class:`ReuseHarness` per test, closed after it."""
        with ReuseHarness() as harness:
            yield harness

    return reuse


reuse = _fixture()

__all__ = ["FakeClock", "HarnessError", "ReplicaView", "ReuseHarness", "reuse"]
