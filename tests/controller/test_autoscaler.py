"""decide_scale, tick by tick: no cluster, no sleeping, an injected clock."""

from __future__ import annotations

from dataclasses import replace

from reuse_runtime.controller.autoscaler import (
    START_FAILURES_BEFORE_GIVING_UP,
    PoolSnapshot,
    ReplicaPhase,
    ReplicaView,
    ScaleDecision,
    ScaleState,
    decide_scale,
    start_backoff,
)
from reuse_runtime.model import PoolPolicy

POLICY = PoolPolicy(min_replicas=1, max_replicas=3, concurrency=2, scaledown_ttl=2.0, idle_ttl=5.0)
READY = ReplicaPhase.READY


def ready(name: str, running: int = 0, idle_since: float | None = None) -> ReplicaView:
    return ReplicaView(name, READY, running, idle_since if running == 0 else None)


def test_a_dormant_pool_starts_min_replicas_on_first_work() -> None:
    decision, state = decide_scale(PoolSnapshot((), backlog=1), POLICY, ScaleState(), now=0.0)
    assert decision.start == 1 and not state.dormant
    # An unused pool stays empty.
    decision, state = decide_scale(PoolSnapshot((), backlog=0), POLICY, ScaleState(), now=0.0)
    assert decision.start == 0 and state.dormant


def test_scales_up_toward_max_while_tasks_wait() -> None:
    snapshot = PoolSnapshot((ready("a", running=2),), backlog=10)
    decision, _ = decide_scale(snapshot, POLICY, ScaleState(dormant=False), now=1.0)
    assert decision.start == 2  # capped at max_replicas=3
    starting = ReplicaView("b", ReplicaPhase.STARTING, 0, None)
    snapshot = PoolSnapshot((ready("a", running=2), starting, starting), backlog=10)
    decision, _ = decide_scale(snapshot, POLICY, ScaleState(dormant=False), now=1.1)
    assert decision.start == 0  # starting replicas count: a burst starts each once


def test_idle_replicas_stop_after_scaledown_ttl_but_never_below_min() -> None:
    state = ScaleState(dormant=False)
    replicas = (
        ready("a", idle_since=10.0),
        ready("b", idle_since=10.5),
        ready("c", idle_since=11.0),
    )
    # t=11.9: nobody has been idle 2 s yet.
    decision, state = decide_scale(PoolSnapshot(replicas, 0), POLICY, state, now=11.9)
    assert decision.stop == ()
    # t=12.6: a and b have; c has not. Longest idle first, keep min=1.
    decision, state = decide_scale(PoolSnapshot(replicas, 0), POLICY, state, now=12.6)
    assert decision.stop == ("a", "b")
    decision, state = decide_scale(PoolSnapshot(replicas[2:], 0), POLICY, state, now=14.0)
    assert decision.stop == ()


def test_whole_environment_stops_after_idle_ttl_and_wakes_on_work() -> None:
    state = ScaleState(dormant=False)
    replicas = (ready("a", idle_since=20.0),)
    decision, state = decide_scale(PoolSnapshot(replicas, 0), POLICY, state, now=24.9)
    assert decision.stop == ()
    decision, state = decide_scale(PoolSnapshot(replicas, 0), POLICY, state, now=25.0)
    assert decision.stop == ("a",) and state.dormant
    decision, state = decide_scale(PoolSnapshot((), 0), POLICY, state, now=30.0)
    assert decision.start == 0
    decision, state = decide_scale(PoolSnapshot((), 1), POLICY, state, now=31.0)
    assert decision.start == 1 and not state.dormant


def test_busy_replicas_are_never_scaled_down() -> None:
    replicas = (ready("a", running=1), ready("b", idle_since=0.0), ready("c", idle_since=0.0))
    decision, _ = decide_scale(
        PoolSnapshot(replicas, 0, assigned=1), POLICY, ScaleState(dormant=False), now=100.0
    )
    assert "a" not in decision.stop
    assert len(decision.stop) == 2


def test_suspended_parents_keep_the_environment_busy() -> None:
    replicas = (ReplicaView("a", READY, 0, None),)  # only a parent awaiting children
    decision, state = decide_scale(
        PoolSnapshot(replicas, 0, assigned=1), POLICY, ScaleState(dormant=False), now=1000.0
    )
    assert decision.stop == () and state.idle_since is None


def test_failed_starts_back_off() -> None:
    snapshot = PoolSnapshot((), backlog=1, consecutive_start_failures=3, last_start_failure=10.0)
    decision, _ = decide_scale(snapshot, POLICY, ScaleState(dormant=False), now=11.0)
    assert decision.start == 0  # backoff is 2 s after 3 failures
    decision, _ = decide_scale(snapshot, POLICY, ScaleState(dormant=False), now=12.1)
    assert decision.start == 1
    assert [start_backoff(n) for n in range(5)] == [0.0, 0.5, 1.0, 2.0, 4.0]
    assert start_backoff(20) == 30.0


def test_fixed_pool_keeps_its_size_until_idle_ttl() -> None:
    policy = PoolPolicy(2, 2, 1, scaledown_ttl=1.0, idle_ttl=3600.0)
    replicas = (ready("a", idle_since=0.0), ready("b", idle_since=0.0))
    decision, _ = decide_scale(PoolSnapshot(replicas, 0), policy, ScaleState(dormant=False), 60.0)
    assert decision.stop == () and decision.start == 0


def test_draining_replicas_count_toward_max_until_they_stop() -> None:
    """A recycled replica finishing its last tasks still holds its slots."""
    state = ScaleState(dormant=False)
    draining = ReplicaView("old", ReplicaPhase.DRAINING, 2, None)
    # max=3: two live and full, one draining, work waiting: no fourth replica.
    snapshot = PoolSnapshot((ready("a", running=2), ready("b", running=2), draining), backlog=8)
    decision, state = decide_scale(snapshot, POLICY, state, now=1.0)
    assert decision.start == 0
    # One live, one draining: only one more fits.
    snapshot = PoolSnapshot((ready("a", running=2), draining), backlog=8)
    decision, state = decide_scale(snapshot, POLICY, state, now=1.1)
    assert decision.start == 1 and "1 draining" in decision.reason
    # replicas=1: the successor starts only once the draining one is gone.
    single = PoolPolicy(1, 1, concurrency=2, scaledown_ttl=2.0, idle_ttl=5.0)
    decision, state = decide_scale(PoolSnapshot((draining,), backlog=3), single, state, now=1.2)
    assert decision.start == 0
    decision, state = decide_scale(PoolSnapshot((), backlog=3), single, state, now=1.3)
    assert decision.start == 1


def test_draining_replicas_that_only_wait_for_children_leave_room_for_them() -> None:
    """One task per process (max_tasks=1): every process recycled, each holding a parent
    that waits for a child. Counting them would leave the children nowhere to run."""
    one_shot = PoolPolicy(0, 4, 1, scaledown_ttl=0.0, idle_ttl=0.0, max_tasks=1, reusable=False)
    waiting = ReplicaView("p", ReplicaPhase.DRAINING, 0, None)  # a suspended parent only
    state = ScaleState(dormant=False)
    snapshot = PoolSnapshot((waiting,) * 4, backlog=3, assigned=4)
    decision, state = decide_scale(snapshot, one_shot, state, now=1.0)
    assert decision.start == 3
    # One that still runs a task, or is stopping with none, still counts.
    busy = ReplicaView("b", ReplicaPhase.DRAINING, 1, None)
    gone = ReplicaView("g", ReplicaPhase.DRAINING, 0, 0.5)
    snapshot = PoolSnapshot((waiting, waiting, busy, gone), backlog=3, assigned=3)
    decision, state = decide_scale(snapshot, one_shot, state, now=1.1)
    assert decision.start == 2 and "2 draining" in decision.reason


def test_external_replicas_serve_first_and_are_never_stopped() -> None:
    open_pool = PoolPolicy(
        min_replicas=0, max_replicas=3, concurrency=2, scaledown_ttl=2, idle_ttl=5
    )
    # A task waiting while an external replica has a free slot starts nothing of ours.
    waiting = PoolSnapshot((), backlog=1, external_ready=1, external_free=2)
    decision, state = decide_scale(waiting, open_pool, ScaleState(), now=0.0)
    assert decision.start == 0 and not state.dormant
    # Busy on the external replica alone: still nothing of ours.
    busy = PoolSnapshot((), backlog=0, assigned=2, external_ready=1, external_free=0)
    assert decide_scale(busy, open_pool, state, now=1.0)[0].start == 0
    # More work than it can take: ours start for the rest.
    flood = PoolSnapshot((), backlog=6, assigned=2, external_ready=1, external_free=0)
    assert decide_scale(flood, open_pool, state, now=2.0)[0].start == 3
    # Idle for idle_ttl: ours stop, and the external one is not ours to stop.
    idle = PoolSnapshot(
        (ready("ours", idle_since=3.0),), backlog=0, external_ready=1, external_free=2
    )
    decision, state = decide_scale(idle, open_pool, ScaleState(dormant=False), now=9.0)
    assert decision.stop == ("ours",) and state.dormant


def test_after_giving_up_on_starts_nothing_starts_until_new_work() -> None:
    """Issue 29: an image that cannot be pulled is not pulled again every deadline, for
    min_replicas, until idle_ttl."""
    failures = START_FAILURES_BEFORE_GIVING_UP
    state = ScaleState(dormant=False)
    # Before giving up, a waiting task is retried after the backoff.
    waiting = PoolSnapshot((), backlog=1, consecutive_start_failures=failures - 1,
                           last_start_failure=10.0)  # fmt: skip
    decision, state = decide_scale(waiting, POLICY, state, now=12.0)
    assert decision.start == 1
    # The last start failed: the pool failed its backlog. No work: no start, tick after tick,
    # min_replicas=1 notwithstanding, and the environment idles out (idle_ttl=5).
    gave_up = PoolSnapshot((), backlog=0, consecutive_start_failures=failures,
                           last_start_failure=13.0)  # fmt: skip
    for now in (13.1, 14.0, 16.0, 17.9):
        decision, state = decide_scale(gave_up, POLICY, state, now=now)
        assert decision == ScaleDecision(), now
    decision, state = decide_scale(gave_up, POLICY, state, now=18.1)
    assert decision.start == 0 and state.dormant
    for now in (20.0, 40.0, 60.0, 90.0):
        decision, state = decide_scale(gave_up, POLICY, state, now=now)
        assert decision.start == 0, now
    # New work tries again, once the backoff has passed.
    work = replace(gave_up, backlog=1)
    decision, state = decide_scale(work, POLICY, ScaleState(dormant=False), now=13.5)
    assert decision.start == 0  # backing off
    decision, state = decide_scale(work, POLICY, state, now=100.0)
    assert decision.start == 1
    # A failure below the limit (a flaky start) is retried for min_replicas as before.
    flaky = PoolSnapshot((), backlog=0, consecutive_start_failures=1, last_start_failure=0.0)
    assert decide_scale(flaky, POLICY, ScaleState(dormant=False), now=5.0)[0].start == 1


def test_adopted_replicas_wake_the_environment_until_its_idle_ttl() -> None:
    """Issue 29: a restarted controller's pool adopts its predecessor's replicas on its
    first tick, before their clients have sent their tasks again: they are kept."""
    adopted = (
        ReplicaView("a", ReplicaPhase.STARTING, 0, None, adopted=True),
        ReplicaView("b", ReplicaPhase.STARTING, 0, None, adopted=True),
    )
    state = ScaleState()  # a new pool is dormant
    for now in (100.0, 100.1, 100.2, 104.9):  # ticks 0.1 s apart, nothing sent yet
        decision, state = decide_scale(PoolSnapshot(adopted, 0), POLICY, state, now=now)
        assert decision == ScaleDecision(), now
        assert not state.dormant and state.idle_since == 100.0
    # Nothing came for idle_ttl after the adoption: the environment stops, as an idle one.
    decision, state = decide_scale(PoolSnapshot(adopted, 0), POLICY, state, now=105.0)
    assert decision.stop == ("a", "b") and state.dormant
    # Without the flag, a dormant pool's replicas stop at once (rule 1).
    foreign = tuple(replace(r, adopted=False) for r in adopted)
    decision, state = decide_scale(PoolSnapshot(foreign, 0), POLICY, ScaleState(), now=100.0)
    assert decision.stop == ("a", "b")
    # Their tasks arrive: busy as ever.
    busy = PoolSnapshot((replace(adopted[0], phase=READY, running=1), adopted[1]), 0, assigned=1)
    decision, state = decide_scale(busy, POLICY, ScaleState(), now=100.3)
    assert decision == ScaleDecision() and not state.dormant


# ---------------------------------------------------------------- superseded versions

# A long idle_ttl and a minimum: what a current version keeps, and an old one does not.
HELD = PoolPolicy(min_replicas=2, max_replicas=3, concurrency=1, scaledown_ttl=2.0, idle_ttl=600.0)


def test_a_current_version_is_held_at_its_minimum_until_idle_ttl() -> None:
    replicas = (ready("a", idle_since=10.0), ready("b", idle_since=10.0))
    state = ScaleState(dormant=False)
    for now in (12.0, 100.0, 609.9):
        decision, state = decide_scale(PoolSnapshot(replicas, 0), HELD, state, now=now)
        assert decision.stop == () and decision.start == 0
    decision, state = decide_scale(PoolSnapshot(replicas, 0), HELD, state, now=610.0)
    assert decision.stop == ("a", "b") and state.dormant


def test_a_superseded_version_finishes_its_work_then_goes_to_zero_after_scaledown_ttl() -> None:
    old = dict(superseded=True)
    state = ScaleState(dormant=False)
    # Still running a task of its run, and one waiting: it keeps serving them.
    busy = (ready("a", running=1), ready("b", idle_since=5.0))
    decision, state = decide_scale(PoolSnapshot(busy, 1, assigned=1, **old), HELD, state, 9.0)
    assert decision.stop == () and decision.start == 0
    # Its last task ended at t=10: not held at min_replicas=2, not kept for idle_ttl.
    idle = (ready("a", idle_since=10.0), ready("b", idle_since=10.0))
    decision, state = decide_scale(PoolSnapshot(idle, 0, **old), HELD, state, now=11.9)
    assert decision.stop == ()
    decision, state = decide_scale(PoolSnapshot(idle, 0, **old), HELD, state, now=12.0)
    assert sorted(decision.stop) == ["a", "b"] and state.dormant
    # Dormant: nothing starts again by itself (the minimum does not apply)...
    decision, state = decide_scale(PoolSnapshot((), 0, **old), HELD, state, now=20.0)
    assert decision.start == 0 and state.dormant
    # ...but work sent to it still runs (a client of the old version): one replica.
    decision, state = decide_scale(PoolSnapshot((), 1, **old), HELD, state, now=21.0)
    assert decision.start == 1 and not state.dormant


def test_a_version_superseded_while_long_idle_goes_at_once() -> None:
    replicas = (ready("a", idle_since=0.0), ready("b", idle_since=0.0))
    state = ScaleState(dormant=False)
    decision, state = decide_scale(PoolSnapshot(replicas, 0), HELD, state, now=300.0)
    assert decision.stop == ()  # current: held at its minimum
    decision, state = decide_scale(
        PoolSnapshot(replicas, 0, superseded=True), HELD, state, now=300.1
    )
    assert sorted(decision.stop) == ["a", "b"] and state.dormant
