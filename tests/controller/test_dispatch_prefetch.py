"""Prefetch across a network: a replica is sent the tasks its slots finish in one round trip.

The dispatcher's decision, sample by sample, with its clock given: round trips are
timed by the tasks sent to a free slot, the least one over a window counts, and the
prefetch covers it (at most ``capacity`` more) when that is more than its share.
"""

from __future__ import annotations

import math

from reuse_runtime.controller.dispatch import (
    PREFETCH_DIVISOR,
    RTT_MARGIN_DIVISOR,
    RTT_WINDOW,
    Dispatcher,
)
from reuse_runtime.controller.records import ReplicaState
from reuse_runtime.controller.telemetry import PoolTelemetry
from reuse_runtime.model import EnvironmentSpec, PoolPolicy


def _dispatcher(concurrency: int = 50) -> tuple[Dispatcher, ReplicaState]:
    policy = PoolPolicy(1, 1, concurrency, scaledown_ttl=60.0, idle_ttl=60.0)
    spec = EnvironmentSpec(name="far", policy=policy)
    replica = ReplicaState("far-1", started_at=0.0, capacity=concurrency)
    replicas = {replica.replica_id: replica}
    dispatcher = Dispatcher(
        spec,
        replicas,
        host=None,  # type: ignore[arg-type]  # not reached: nothing is dispatched here
        telemetry=PoolTelemetry("far"),
        bundles={},
        max_backlog=10,
        cancel_grace=5.0,
        heartbeat=1.0,
        report_deadline=5.0,
        clock=lambda: 0.0,
    )
    replica.prefetch = dispatcher.prefetch(replica.capacity)
    return dispatcher, replica


def test_with_no_round_trip_known_the_prefetch_is_the_share_of_long_or_short_tasks() -> None:
    dispatcher, _ = _dispatcher()
    dispatcher.runtime_is(0.1)
    assert dispatcher.prefetch(50) == 50 // PREFETCH_DIVISOR
    dispatcher.runtime_is(0.001)
    assert dispatcher.prefetch(50) == 50 // PREFETCH_DIVISOR
    assert dispatcher.prefetch(50, math.inf) == 50 // PREFETCH_DIVISOR


def test_a_round_trip_adds_the_tasks_its_slots_finish_meanwhile() -> None:
    dispatcher, replica = _dispatcher()
    dispatcher.runtime_is(0.1)
    # 100 ms tasks, 50 ms away: half the slots finish in one round trip.
    dispatcher.round_trip(replica, 0.05, now=1.0)
    assert replica.prefetch == 25 + 50 // RTT_MARGIN_DIVISOR
    # A loopback's round trip is covered by the share already.
    dispatcher.round_trip(replica, 0.001, now=2.0)
    assert replica.prefetch == 50 // PREFETCH_DIVISOR


def test_the_least_round_trip_of_the_window_counts_and_the_next_window_forgets_it() -> None:
    dispatcher, replica = _dispatcher()
    dispatcher.runtime_is(0.1)
    dispatcher.round_trip(replica, 0.05, now=1.0)
    # A slower sample (a busy moment) changes nothing: queueing only adds to a trip.
    dispatcher.round_trip(replica, 0.09, now=2.0)
    assert replica.prefetch == 25 + 5
    # Two windows later the round trip is what the network takes now.
    dispatcher.round_trip(replica, 0.08, now=1.0 + RTT_WINDOW + 1)
    assert replica.prefetch == 25 + 5  # the last window's least still counts
    dispatcher.round_trip(replica, 0.08, now=1.0 + 2 * RTT_WINDOW + 2)
    assert replica.prefetch == 40 + 5


def test_short_tasks_far_away_get_at_most_the_capacity_more() -> None:
    dispatcher, replica = _dispatcher()
    dispatcher.runtime_is(0.0001)
    dispatcher.round_trip(replica, 0.5, now=1.0)
    assert replica.prefetch == 50 + 50 // RTT_MARGIN_DIVISOR
