"""`ReplicaLifecycle`: one pool's replicas, from launch to their end.

* **Start.** Each tick (each second, while the pool is idle) applies one autoscaling decision
  (:func:`~reuse_runtime.controller.autoscaler.decide_scale`, a pure function of a
  snapshot). A replica that does not attach within its ready deadline is killed;
  after START_FAILURES_BEFORE_GIVING_UP failed starts in a row, the waiting tasks
  fail instead of waiting on.
* **Ready.** A replica is ready at its first report, and serves its stream until
  it ends: results go to the pool, reports are read here.
* **Liveness.** A ready replica that stops reporting past the report deadline is
  killed and replaced (liveness.py); its tasks are retried as after a death.
* **Recycling.** A replica past ``max_tasks``, ``max_rss`` or ``max_lifetime``
  takes no new tasks, finishes its own, and is stopped; the autoscaler starts a
  fresh one.
* **Loss.** A replica that ends hands its tasks to the pool's
  :class:`~reuse_runtime.controller.retries.Retries`, and its cause to telemetry
  and ``status``.
* **External replicas** (workers someone else started, ``worker --environment``)
  are routed to, never started, stopped or recycled.
* **Adoption.** The live replicas a predecessor controller left (Kubernetes pods)
  are taken over before the first autoscaling decision.

What it asks of its pool (handle a batch of results, end a task) goes through
:class:`LifecycleHost`.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import structlog

from reuse_runtime.aio import TaskSet, wait_within
from reuse_runtime.backends.base import (
    AdoptingBackend,
    Backend,
    ExitStatus,
    ReplicaLaunch,
)
from reuse_runtime.controller.autoscaler import (
    START_FAILURES_BEFORE_GIVING_UP,
    PoolSnapshot,
    ReplicaPhase,
    ReplicaView,
    ScaleState,
    decide_scale,
)
from reuse_runtime.controller.dispatch import Dispatcher
from reuse_runtime.controller.liveness import (
    IDLE_HEARTBEATS,
    SilenceWatch,
    describe_silence,
    idle_allowance,
)
from reuse_runtime.controller.records import ReplicaState, TaskRecord, failure
from reuse_runtime.controller.retries import Retries
from reuse_runtime.controller.telemetry import PoolTelemetry, loss_cause
from reuse_runtime.errors import BadInputError, ClosedError
from reuse_runtime.model import (
    EnvironmentSpec,
    ErrorKind,
    ReplicaInit,
    ReplicaReport,
    ResultsBatch,
    TaskResult,
)
from reuse_runtime.security import Security

log = structlog.get_logger("reuse_runtime.controller")

#: A replica that has not attached this long after launch counts as a failed start.
READY_TIMEOUT = 60.0
#: Seconds between autoscaling decisions while the pool has no task running or waiting.
IDLE_DECISION_EVERY = 1.0
# Seconds a replica's stream may stay open once its backend says it has ended (its
# process exited, its pod is gone): a connection cut without a FIN (a pod's network
# torn down) never ends by itself, so past this the backend's word is final.
STREAM_END_GRACE = 5.0
#: Seconds a replica declared lost may keep sending once it is heard from again (its
#: late results, counted and discarded) before its stream is ended.
LATE_RESULTS_GRACE = 2.0


class LifecycleHost(Protocol):
    """What the lifecycle asks of its pool (:class:`~reuse_runtime.controller.pool.ReplicaPool`)."""

    def on_results(self, replica: ReplicaState, batch: ResultsBatch) -> None:
        """A batch of results (and output) came on ``replica``'s stream."""
        ...

    def finish(self, record: TaskRecord, result: TaskResult) -> None:
        """Deliver ``record``'s one terminal result."""
        ...


class ReplicaLifecycle:
    """The replicas of one environment. Lives on the controller's loop."""

    def __init__(
        self,
        key: str,
        spec: EnvironmentSpec,
        backend: Backend,
        replicas: dict[str, ReplicaState],
        *,
        host: LifecycleHost,
        dispatcher: Dispatcher,
        retries: Retries,
        telemetry: PoolTelemetry,
        controller_address: Callable[[], str],
        security: Security,
        register_replica: Callable[[str, bool], None],
        heartbeat: float,
        report_deadline: float,
        clock: Callable[[], float],
        fetch_code: bool = False,
        read_code: Callable[[str], bytes] | None = None,
    ) -> None:
        self.key = key
        self.spec = spec
        self.policy = spec.policy
        self._backend = backend
        self.replicas = replicas
        self._host = host
        self._dispatcher = dispatcher
        self._retries = retries
        self.telemetry = telemetry
        self._controller_address = controller_address
        self._security = security
        self._register_replica = register_replica
        self._heartbeat = heartbeat
        self.report_deadline = report_deadline
        self._clock = clock
        self.scale_state = ScaleState()
        self.start_failures = 0
        self.last_start_failure: float | None = None
        self.last_error = ""
        self._tasks = TaskSet(f"pool:{key}")
        # When each ready replica was last heard from (see liveness.py).
        self._silences: SilenceWatch[ReplicaState] = SilenceWatch(granularity=0.25)
        self._idle_allowance = idle_allowance(heartbeat)
        self._ids = itertools.count(1)
        self._adopted = False
        self._next_idle_decision = 0.0
        # Replicas we start fetch the code bundle (the backend's cannot see the client's
        # files); external ones always do.
        self._fetch_code = fetch_code
        self._read_code = read_code
        # A newer version of the environment serves now (see ReplicaPool.supersede).
        self.superseded = False

    # ------------------------------------------------------------ streams and reports

    async def attach_external(self, stream: Any, events: AsyncIterator[Any]) -> None:
        """Serve a worker someone else started (``--environment``), until its stream ends.

        It is routed to like any replica, but never stopped, recycled or counted
        by the autoscaler: its owner (compose, systemd, a Deployment) manages it.
        """
        hello = stream.hello
        if hello.replica_id in self.replicas:
            raise BadInputError(
                f"a replica with id {hello.replica_id!r} is already attached to environment "
                f"{self.spec.name!r}; give each worker its own --replica-id"
            )
        replica = ReplicaState(
            hello.replica_id,
            started_at=self._clock(),
            capacity=hello.capacity or self.policy.concurrency,
            external=True,
        )
        replica.exited.set()  # nothing of ours runs it: there is no exit to wait for
        self.replicas[hello.replica_id] = replica
        self._register_replica(hello.replica_id, True)
        log.info(
            "external replica attached",
            env=self.spec.name,
            replica=hello.replica_id,
            address=hello.address,
            capacity=replica.capacity,
        )
        await self.attach(hello.replica_id, stream, events)

    async def attach(self, replica_id: str, stream: Any, events: AsyncIterator[Any]) -> None:
        """Serve a replica that connected, until its stream ends."""
        replica = self.replicas.get(replica_id)
        if replica is None or replica.gone:
            stream.drain("this replica is no longer wanted")
            return
        replica.stream = stream
        self.heard(replica, self._clock())
        replica.capacity = stream.hello.capacity or self.policy.concurrency
        replica.prefetch = self._dispatcher.prefetch(replica.capacity)
        self._dispatcher.changed(replica)
        stream.send_init(
            ReplicaInit(
                environment=self.spec.name,
                on_start=self.spec.on_start,
                on_stop=self.spec.on_stop,
                bundle=self.spec.hooks_bundle,
                stop_grace=self.spec.stop_grace,
                idle_heartbeat=IDLE_HEARTBEATS * self._heartbeat,
                code_bundle=self.spec.code_bundle,
                fetch_code=bool(self.spec.code_bundle) and (self._fetch_code or replica.external),
            )
        )
        declared_lost: ClosedError | None = None
        try:
            async for event in events:
                if replica.gone:  # declared lost, or the controller is shutting down
                    declared_lost = self._heard_after_loss(replica, event)
                    if declared_lost is not None:
                        break
                elif isinstance(event, ResultsBatch):
                    self._host.on_results(replica, event)
                elif isinstance(event, ReplicaReport):
                    self._on_report(replica, event)
        except Exception as exc:
            log.warning(
                "replica stream broke", replica=replica_id, error=f"{type(exc).__name__}: {exc}"
            )
        finally:
            replica.stream = None
            self._dispatcher.changed(replica)
        # A replica without its stream can do nothing more: make sure it is gone.
        if not replica.exited.is_set():
            try:
                await wait_within(replica.exited.wait(), 2.0)
            except asyncio.TimeoutError:
                if replica.handle is not None:
                    await self._backend.kill(replica.handle)
                await replica.exited.wait()
        self._forget(replica, cause="lost its connection to the controller")
        if declared_lost is not None:
            raise declared_lost  # its stream ends with this: it dials again, or exits

    def _heard_after_loss(self, replica: ReplicaState, event: object) -> ClosedError | None:
        """A message from a replica declared lost (silent past its deadline: a partition).

        Its tasks were retried elsewhere, so the results it sends now are late: they
        are discarded, and counted. Once it has had a moment to flush them (its
        results queued while it was cut off come first), its stream is ended with the
        returned error, so it dials again and rejoins as a new replica, or exits.
        """
        if isinstance(event, ResultsBatch) and event.results:
            self.telemetry.late_results(len(event.results))
        if not replica.unresponsive:
            return None  # forgotten at a shutdown: its stream ends with the server
        now = self._clock()
        if not replica.back_at:
            replica.back_at = now
            log.warning(
                "a replica declared lost is back; discarding its late results",
                env=self.spec.name,
                replica=replica.replica_id,
            )
            return None
        if now - replica.back_at < LATE_RESULTS_GRACE:
            return None
        return ClosedError(
            f"replica {replica.replica_id} was declared lost ({replica.kill_reason}) and its "
            f"tasks were retried elsewhere; connect again to rejoin"
        )

    def heard(self, replica: ReplicaState, at: float) -> None:
        """A message from ``replica`` (a report, results) at ``at``: it is alive. One
        that last reported idle reports less often: its deadline is longer."""
        replica.heard_at = at
        if self.report_deadline:
            allowance = self._idle_allowance if replica.reported_idle else 0.0
            self._silences.heard(replica, at, self.report_deadline + allowance)

    def given_work(self, replica: ReplicaState, at: float) -> None:
        """``replica`` last reported idle, and was sent a task at ``at``: from then on it
        may stay silent only the report deadline (a task that blocks its loop at once
        keeps it from saying it is busy)."""
        if self.report_deadline:
            self._silences.tighten(replica, at, self.report_deadline)

    def report_from_watchdog(self, report: ReplicaReport) -> bool:
        """A report that came apart from the replica's stream; False if it is unknown."""
        replica = self.replicas.get(report.replica_id)
        if replica is None or replica.gone or replica.stream is None:
            return False
        if replica.report is not None and report.sent_at < replica.report.sent_at:
            # Overtaken by a report the stream has already brought (this one went on a
            # channel of its own, and took longer): the newer one stands. Only here: the
            # stream's own reports come in order, and one that comes after a watchdog
            # report was sent by the loop since, so it is news.
            return True
        # One that names the task blocking the loop shows in status and is not a
        # heartbeat: a loop held by one task past the report deadline is declared lost.
        # One without a culprit says the loop is busy running many tasks: a heartbeat.
        self._on_report(replica, report, loop_alive=not report.loop_blocked_by)
        return True

    def _on_report(
        self, replica: ReplicaState, report: ReplicaReport, *, loop_alive: bool = True
    ) -> None:
        replica.report = report
        replica.report_at = self._clock()
        replica.reported_idle = not (report.active or report.waiting or report.draining)
        if loop_alive:
            self.heard(replica, replica.report_at)
            # Heard from again: a replica that was silent long enough to get no new work
            # (see Dispatcher._pump_now) may take the waiting tasks now.
            self._dispatcher.heard(replica)
        replica.blocked_by = "" if loop_alive else report.loop_blocked_by
        if replica.phase is ReplicaPhase.STARTING:
            replica.phase = ReplicaPhase.READY
            self.start_failures = 0
            took = replica.report_at - replica.started_at
            self.telemetry.replica_ready(replica, took)
            log.info(
                "replica ready", env=self.spec.name, replica=replica.replica_id, took=round(took, 3)
            )
            self._dispatcher.changed(replica)
        if replica.external:
            # Its owner decides when it goes; a draining one just takes nothing more.
            if report.draining and replica.phase is not ReplicaPhase.DRAINING:
                replica.phase = ReplicaPhase.DRAINING
                replica.retire_reason = "the replica is draining"
                self._dispatcher.changed(replica)
        elif self.policy.max_rss and report.rss_bytes > self.policy.max_rss:
            self.retire(
                replica,
                f"its RSS {report.rss_bytes} bytes is over max_rss={self.policy.max_rss}",
                recycle="max_rss",
            )
        elif report.recycle_reason:
            self.retire(replica, report.recycle_reason, recycle="requested")
        elif report.draining and not replica.retire_reason:
            # It is draining on its own (a SIGTERM from outside): route nothing more to it,
            # and do not stop it again: a second SIGTERM makes a worker exit at once.
            replica.phase = ReplicaPhase.DRAINING
            replica.retire_reason = "the replica is draining"
            replica.stopping = True
            self._dispatcher.changed(replica)

    # ------------------------------------------------------------ start and stop

    def retire(
        self, replica: ReplicaState, reason: str, *, kill: bool = False, recycle: str = ""
    ) -> None:
        """Stop routing to a replica; stop it once its tasks are done (or now, if kill).

        ``recycle`` names the bound it reached (``max_tasks``, ...), when it is recycled.
        """
        if not replica.retire_reason:
            replica.retire_reason = reason
            if recycle:
                self.telemetry.replica_recycled(replica, recycle, reason)
            log.info(
                "recycling replica", env=self.spec.name, replica=replica.replica_id, reason=reason
            )
        replica.phase = ReplicaPhase.DRAINING
        self._dispatcher.changed(replica)
        if kill:
            replica.kill_reason = replica.kill_reason or reason
            if replica.handle is not None and not replica.stopping:
                replica.stopping = True
                self._tasks.spawn(self._backend.kill(replica.handle), f"kill:{replica.replica_id}")
        elif not replica.running:
            self.stop(replica)

    def stop(self, replica: ReplicaState) -> None:
        """Stop a replica now (it runs nothing more of ours), with its grace period."""
        if replica.stopping:
            return
        replica.stopping = True
        replica.phase = ReplicaPhase.DRAINING
        self._dispatcher.changed(replica)
        if replica.handle is not None:
            self._tasks.spawn(
                self._backend.stop(replica.handle, self.spec.stop_grace + 5.0),
                f"stop:{replica.replica_id}",
            )

    def _start_replica(self) -> None:
        replica_id = f"{self.spec.name}-{next(self._ids)}-{secrets.token_hex(2)}"
        replica = ReplicaState(
            replica_id, started_at=self._clock(), capacity=self.policy.concurrency
        )
        self.replicas[replica_id] = replica
        self._register_replica(replica_id, True)
        self.telemetry.replica_started(replica)
        self._tasks.spawn(self._run_replica(replica), f"replica:{replica_id}")

    async def _run_replica(self, replica: ReplicaState) -> None:
        launch = ReplicaLaunch(
            replica_id=replica.replica_id,
            environment=self.spec,
            controller_address=self._controller_address(),
            security=self._security,
            grace_period=self.spec.stop_grace,
            heartbeat=self._heartbeat,
            fetch_code=self._fetch_code,
            read_code=self._read_code,
        )
        try:
            replica.handle = await self._backend.start(launch)
        except Exception as exc:
            replica.exit_status = ExitStatus(
                detail=f"could not launch: {type(exc).__name__}: {exc}"
            )
            replica.exited.set()
            self._forget(replica, cause=replica.exit_status.detail)
            return
        await self._follow_replica(replica)

    async def _follow_replica(self, replica: ReplicaState) -> None:
        """Until a launched (or adopted) replica ends: its ready deadline, then its end."""
        assert replica.handle is not None
        ready_timer = self._tasks.spawn(
            self._ready_deadline(replica), f"ready:{replica.replica_id}"
        )
        try:
            replica.exit_status = await self._backend.wait(replica.handle)
        finally:
            ready_timer.cancel()
            replica.exited.set()
        if replica.stream is not None:
            await asyncio.sleep(STREAM_END_GRACE)  # its stream's end forgets it, as a rule
        stream = replica.stream
        if stream is None:
            self._forget(replica, cause=replica.exit_status.describe())
        elif not replica.gone:
            log.warning(
                "replica ended but its stream is still open; dropping the stream",
                env=self.spec.name,
                replica=replica.replica_id,
                exit=replica.exit_status.describe(),
            )
            self._forget(replica, cause=replica.exit_status.describe())
            stream.close()

    async def _ready_deadline(self, replica: ReplicaState) -> None:
        # A backend may need longer (a pod is scheduled and its image pulled first).
        timeout = float(getattr(self._backend, "ready_timeout", READY_TIMEOUT))
        await asyncio.sleep(timeout)
        if replica.phase is ReplicaPhase.STARTING and replica.handle is not None:
            log.warning(
                "replica did not become ready; killing it",
                replica=replica.replica_id,
                timeout=timeout,
            )
            await self._backend.kill(replica.handle)

    # ------------------------------------------------------------ loss

    def _forget(self, replica: ReplicaState, *, cause: str) -> None:
        """The replica is gone: retry or fail its tasks, and record a failed start."""
        if replica.gone:
            return
        replica.gone = True
        self.replicas.pop(replica.replica_id, None)
        self._silences.forget(replica)
        self._dispatcher.changed(replica)
        self._register_replica(replica.replica_id, False)
        status = replica.exit_status
        if status is not None:
            cause = status.describe()
        if replica.kill_reason:
            cause = f"was replaced because {replica.kill_reason}"
        never_ready = (
            replica.phase is ReplicaPhase.STARTING and not replica.stopping and not replica.external
        )
        if replica.phase is ReplicaPhase.STARTING and not replica.external:
            self.telemetry.replica_start_ended(replica, failed=never_ready, cause=cause)
        elif replica.kill_reason:
            self.telemetry.replica_lost(
                replica, "unresponsive" if replica.unresponsive else "killed", cause
            )
        elif not replica.stopping:
            draining = replica.phase is ReplicaPhase.DRAINING
            self.telemetry.replica_lost(replica, loss_cause(status, draining=draining), cause)
        if never_ready:
            self.start_failures += 1
            self.last_start_failure = self._clock()
            tail = replica.handle.stderr_tail() if replica.handle is not None else ""
            self.last_error = f"replica {replica.replica_id} failed to start ({cause})" + (
                f":\n{tail}" if tail else ""
            )
            log.error(
                "replica failed to start",
                env=self.spec.name,
                replica=replica.replica_id,
                cause=cause,
                stderr=tail[-2000:],
                failures=self.start_failures,
            )
            if self.start_failures >= START_FAILURES_BEFORE_GIVING_UP and not self.replicas:
                self._fail_backlog()
        elif not replica.stopping:
            # `status` shows it: "replica X ran out of memory: ... limit of 200Mi".
            self.last_error = f"replica {replica.replica_id} {cause}"
            log.warning(
                "replica lost",
                env=self.spec.name,
                replica=replica.replica_id,
                cause=cause,
                inflight=len(replica.running),
            )
        oom = status is not None and status.oom
        for record in list(replica.running.values()):
            self._dispatcher.unassign(replica, record)
            self._retries.lost(record, replica.replica_id, cause, oom=oom)
        self._dispatcher.pump()

    def _fail_backlog(self) -> None:
        """Replicas keep failing to start: the waiting tasks fail instead of waiting on."""
        for record in self._dispatcher.clear():
            self._host.finish(
                record,
                failure(
                    record,
                    ErrorKind.UNAVAILABLE,
                    "EnvironmentUnavailableError",
                    f"environment {self.spec.name!r} could not start a replica after "
                    f"{self.start_failures} attempts. {self.last_error}",
                ),
            )

    # ------------------------------------------------------------ autoscaling and liveness

    def snapshot(self) -> PoolSnapshot:
        backlog, assigned = self._dispatcher.waiting, self._dispatcher.assigned
        # External replicas count only while there is work (see decide_scale): at idle,
        # a thousand of them are not looked at.
        external = (
            [
                r
                for r in self.replicas.values()
                if r.external and r.phase is ReplicaPhase.READY and r.stream is not None
            ]
            if backlog or assigned
            else []
        )
        return PoolSnapshot(
            replicas=tuple(
                ReplicaView(
                    r.replica_id, r.phase, len(r.running) - r.suspended, r.idle_since(), r.adopted
                )
                for r in self.replicas.values()
                if not r.stopping and not r.external
            ),
            external_ready=len(external),
            external_free=sum(max(0, r.free) for r in external),
            backlog=backlog,
            assigned=assigned,
            consecutive_start_failures=self.start_failures,
            last_start_failure=self.last_start_failure,
            superseded=self.superseded,
        )

    def _adopt_replicas(self) -> None:
        """Take over the live replicas a predecessor controller left (Kubernetes pods).

        They count as starting replicas until their workers dial back in, so the
        autoscaler starts none in their place.
        """
        self._adopted = True
        if not isinstance(self._backend, AdoptingBackend):
            return
        for handle in self._backend.claim(self.key):
            replica = ReplicaState(
                handle.replica_id,
                started_at=self._clock(),
                capacity=self.policy.concurrency,
                handle=handle,
                adopted=True,
            )
            self.replicas[replica.replica_id] = replica
            self._register_replica(replica.replica_id, True)
            self._tasks.spawn(self._follow_replica(replica), f"replica:{replica.replica_id}")
            log.info("adopting replica", env=self.spec.name, replica=replica.replica_id)

    def tick(self, listening_since: float = 0.0) -> None:
        """Adopt a predecessor's replicas (once), then apply the report deadline, the
        lifetime bound, and one autoscaling decision.

        ``listening_since``: when the controller's loop last came back from a stall
        (see :class:`~reuse_runtime.controller.liveness.Listening`).
        """
        if not self._adopted:
            self._adopt_replicas()
        now = self._clock()
        self._check_liveness(now, listening_since)
        if self.policy.max_lifetime:
            # Oldest first (replicas are kept in the order they started): past the first
            # young enough, all are.
            due = []
            for replica in self.replicas.values():
                if now - replica.started_at <= self.policy.max_lifetime:
                    break
                if not replica.external and replica.phase is ReplicaPhase.READY:
                    due.append(replica)
            for replica in due:
                self.retire(
                    replica,
                    f"older than max_lifetime={self.policy.max_lifetime:g} s",
                    recycle="max_lifetime",
                )
        if not (self._dispatcher.waiting or self._dispatcher.assigned):
            # Idle: only a TTL or a start backoff can change the decision, and they are
            # seconds long. Deciding once a second keeps a large idle pool cheap.
            if now < self._next_idle_decision:
                return
            self._next_idle_decision = now + IDLE_DECISION_EVERY
        decision, self.scale_state = decide_scale(
            self.snapshot(), self.policy, self.scale_state, now
        )
        for _ in range(decision.start):
            self._start_replica()
        for replica_id in decision.stop:
            stopping = self.replicas.get(replica_id)
            if stopping is not None:
                log.info(
                    "stopping replica",
                    env=self.spec.name,
                    replica=replica_id,
                    reason=decision.reason,
                )
                if not stopping.retire_reason:
                    self.telemetry.replica_stopped(stopping, "scaled_down", decision.reason)
                self.retire(stopping, decision.reason)
        if decision.start:
            log.info(
                "starting replicas",
                env=self.spec.name,
                count=decision.start,
                reason=decision.reason,
            )

    def _check_liveness(self, now: float, listening_since: float) -> None:
        """Kill and replace a ready replica that stopped reporting (see liveness.py)."""
        deadline = self.report_deadline
        if not deadline:
            return
        for replica, quiet in self._silences.silent(now, listening_since):
            if (
                replica.gone
                or replica.phase is ReplicaPhase.STARTING
                or replica.stream is None
                or replica.stopping
                or replica.kill_reason
            ):
                continue  # watched again once heard from, if it ever is
            log.warning(
                "replica stopped reporting; killing it",
                env=self.spec.name,
                replica=replica.replica_id,
                silent_seconds=round(quiet, 1),
                deadline=deadline,
                inflight=len(replica.running),
            )
            replica.unresponsive = True
            self.retire(replica, describe_silence(quiet, replica.blocked_by), kill=True)
            # Lost now, at its deadline: its tasks are retried elsewhere whether or not its
            # end can be seen (nothing here can kill a worker on a partitioned host).
            self._forget(replica, cause=replica.kill_reason)

    async def close(self) -> None:
        """Stop every replica and forget it; the pool has drained first.

        The drain's grace is over: what still runs waits for children handed back, or
        overran it. It is stopped now (it goes back to its client), so no replica waits
        out its own grace for a task that cannot finish.
        """
        for replica in self.replicas.values():
            if replica.stream is not None:
                for task_id in replica.running:
                    replica.stream.cancel(task_id)
        stops = [
            self._backend.stop(r.handle, self.spec.stop_grace + 5.0)
            for r in self.replicas.values()
            if r.handle is not None
        ]
        for r in self.replicas.values():
            r.stopping = True
        await asyncio.gather(*stops, return_exceptions=True)
        for replica in list(self.replicas.values()):
            self._forget(replica, cause="the controller shut down")
        await self._tasks.cancel_all("pool closed")
