"""reuse_runtime.testing, used the way a user tests their own tasks."""

from __future__ import annotations

import time

import pytest

from reuse_runtime.testing import HarnessError, ReuseHarness
from tests import harness_tasks as tasks


def test_the_model_loads_once_per_replica_and_globals_persist(reuse: ReuseHarness) -> None:
    assert [reuse.run(tasks.predict, float(x)) for x in range(10)] == [2.0 * x for x in range(10)]
    (replica,) = reuse.replicas(tasks.env)
    assert replica.completed == 10
    assert replica.module(tasks).LOADS == 1
    # Each replica has its own copy: the test's own import was never touched.
    assert tasks.LOADS == 0


def test_the_limiter_bounds_concurrency_on_each_replica(reuse: ReuseHarness) -> None:
    futures = [reuse.submit(tasks.busy, 0.05) for _ in range(12)]
    assert [f.result(timeout=30) for f in futures] == ["done"] * 12
    replicas = reuse.replicas(tasks.env)
    assert len(replicas) == 3  # 12 waiting tasks want max_replicas=3
    peaks = [r.module(tasks).PEAK for r in replicas]
    assert max(peaks) == 2  # concurrency=2, and it was reached
    assert sum(r.completed for r in replicas) == 12


def test_the_pool_scales_to_zero_after_idle_ttl_on_the_fake_clock(reuse: ReuseHarness) -> None:
    began = time.monotonic()
    assert reuse.run(tasks.predict, 1.0) == 2.0
    assert reuse.replica_count(tasks.env) == 1
    assert reuse.is_idle(tasks.env)
    reuse.advance(299)
    assert reuse.replica_count(tasks.env) == 1  # min_replicas=1 holds until idle_ttl
    reuse.advance(1)
    assert reuse.replica_count(tasks.env) == 0
    # The next task starts the environment again, on a fresh replica.
    assert reuse.run(tasks.predict, 2.0) == 4.0
    (replica,) = reuse.replicas(tasks.env)
    assert replica.module(tasks).LOADS == 1 and replica.completed == 1
    print(f"scale to zero and back: {time.monotonic() - began:.3f} s of wall time")


def test_idle_replicas_scale_down_to_min_after_scaledown_ttl(reuse: ReuseHarness) -> None:
    futures = [reuse.submit(tasks.busy, 0.02) for _ in range(6)]
    assert all(f.result(timeout=30) == "done" for f in futures)
    assert reuse.replica_count(tasks.env) == 3
    reuse.advance(59)
    assert reuse.replica_count(tasks.env) == 3
    reuse.advance(1)
    assert reuse.replica_count(tasks.env) == 1
    (replica,) = reuse.replicas(tasks.env)
    assert replica.phase == "ready" and replica.idle_seconds == pytest.approx(60, abs=1)


def test_children_are_dispatched_through_the_emulated_controller(reuse: ReuseHarness) -> None:
    assert reuse.run(tasks.fan_out, 8) == 2.0 * sum(range(8))
    replicas = reuse.replicas(tasks.env)
    assert sum(r.completed for r in replicas) == 9  # the parent and its 8 children
    # However the children spread, each replica loaded the model at most once.
    assert all(r.module(tasks).LOADS <= 1 for r in replicas if r.completed)


def test_a_task_error_is_the_users_own_exception(reuse: ReuseHarness) -> None:
    with pytest.raises(tasks.Rejected, match="no 3"):
        reuse.run(tasks.reject, 3)


def test_a_killed_replica_costs_a_retry_not_a_task(reuse: ReuseHarness) -> None:
    running = reuse.submit(tasks.busy, 1.0)
    deadline = time.monotonic() + 30
    while not any(r.active for r in reuse.replicas(tasks.env)):
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.005)
    (victim,) = reuse.replicas(tasks.env)
    reuse.kill_replica(victim.replica_id)
    assert running.result(timeout=30) == "done"
    assert victim.replica_id not in {r.replica_id for r in reuse.replicas(tasks.env)}


def test_time_only_moves_forward_and_one_harness_at_a_time() -> None:
    with ReuseHarness() as harness:
        with pytest.raises(HarnessError, match="forward"):
            harness.advance(-1)
        with pytest.raises(HarnessError, match="another ReuseHarness"):
            ReuseHarness().start()
    with pytest.raises(HarnessError, match="not started"):
        harness.run(tasks.predict, 1.0)


def test_closing_with_a_task_still_running_ends_it_and_says_so() -> None:
    with ReuseHarness() as harness:
        running = harness.submit(tasks.busy, 600.0)
        deadline = time.monotonic() + 30
        while not any(r.active for r in harness.replicas(tasks.env)):
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.005)
    # The replica was stopped without a grace period: the test did not wait 600 s.
    with pytest.raises(HarnessError, match="closed before the task ended"):
        running.result(timeout=30)


def test_max_tasks_recycles_replicas_as_for_real(reuse: ReuseHarness) -> None:
    copies = [reuse.run(tasks.which) for _ in range(5)]
    assert copies[0] == copies[1] != copies[2] == copies[3] != copies[4]
    assert reuse.replica_count(tasks.recycled) == 1
