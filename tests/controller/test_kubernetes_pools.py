"""Pools on the kubernetes backend, in process, against the API server stand-in.

No pod runs here: what a kubelet would report is patched in (see
:mod:`tests.kubernetes.apiserver`), and the pools' clock is injected, so a test
steps through their ticks. The suite with real pods is ``tests/kubernetes``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from reuse_runtime.backends.base import ReplicaLaunch
from reuse_runtime.backends.kubernetes import KubernetesBackend, KubernetesConfig
from reuse_runtime.controller.autoscaler import START_FAILURES_BEFORE_GIVING_UP
from reuse_runtime.controller.service import ControllerService
from reuse_runtime.model import EnvironmentSpec, PoolPolicy, Submission, TaskResult
from reuse_runtime.security import Security
from tests.helpers import eventually, task
from tests.kubernetes.cluster import StandInCluster, stand_in_cluster
from tests.kubernetes.kubelet_steps import fail_image_pulls, finish_deletions, run_pod

ADDRESS = "reuse-runtime.rr-test.svc:50050"
TICK = 0.1  # the controller's tick


def never_runs() -> None:
    """The task of these tests: no replica ever becomes ready to run it."""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[StandInCluster]:
    with stand_in_cluster(tmp_path) as found:
        finish_deletions(found.api)  # pods marked for deletion end and go
        yield found


def _backend(cluster: StandInCluster, **config: Any) -> KubernetesBackend:
    return KubernetesBackend(
        KubernetesConfig(kubeconfig=str(cluster.kubeconfig), in_cluster=False, **config),
        security=Security(token=cluster.token),
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def opened(cluster: StandInCluster) -> AsyncIterator[list[Any]]:
    """Backends and services a test opens, closed at its end (services first)."""
    items: list[Any] = []
    yield items
    for item in reversed(items):
        await item.close()


async def _service(
    cluster: StandInCluster, clock: Clock, opened: list[Any], **config: Any
) -> ControllerService:
    backend = _backend(cluster, **config)
    await backend.open()
    opened.append(backend)
    service = ControllerService(
        backend,
        address=lambda: ADDRESS,
        security=Security(token=cluster.token),
        max_backlog=100,
        loss_budget=1,
        cancel_grace=5.0,
        heartbeat=1.0,
        clock=clock,
    )
    opened.append(service)
    return service


async def _next_results(service: ControllerService, session: Any) -> list[TaskResult]:
    batches = session.batches()
    results, _ = await asyncio.wait_for(anext(batches), 30)
    return list(results)


async def test_a_restarted_controller_keeps_the_pods_it_adopts_before_their_tasks_come(
    cluster: StandInCluster, clock: Clock, opened: list[Any]
) -> None:
    """Issue 29: the new pool adopts its predecessor's pods on its first tick. Their
    clients send their tasks again a moment later, after more ticks; the pods are kept
    (warm, no new ones), and stop only when idle_ttl passes with no task."""
    api, ns = cluster.api, cluster.namespace
    policy = PoolPolicy(min_replicas=0, max_replicas=2, concurrency=1, scaledown_ttl=60,
                        idle_ttl=600)  # fmt: skip
    spec = EnvironmentSpec(name="warm", policy=policy, image="busybox:1")
    predecessor = _backend(cluster)
    await predecessor.open()
    opened.append(predecessor)
    for i in (1, 2):
        launch = ReplicaLaunch(f"warm-{i}-pods", spec, ADDRESS, Security(token=cluster.token))
        run_pod(api, ns, (await predecessor.start(launch)).name)
    # The predecessor was killed (its pods live on); its successor opens on the same name.
    service = await _service(cluster, clock, opened, adopt_window=300)
    pool = service.pools[service.register_environment(spec)]
    for _ in range(10):  # a second of ticks before the tasks come back
        service.tick()
        clock.now += TICK
    assert sorted(pool.replicas) == ["warm-1-pods", "warm-2-pods"]
    assert [r.replica_id for r in pool.replicas.values() if r.stopping] == []
    assert api.added("pods", ns) == ["reuse-runtime-warm-1-pods", "reuse-runtime-warm-2-pods"]
    assert api.calls(cluster.service_account, verb="delete") == []
    # Kept for idle_ttl from their adoption, then stopped, as an idle environment's.
    clock.now = 1000.0 + 599.0
    service.tick()
    assert [r.replica_id for r in pool.replicas.values() if r.stopping] == []
    clock.now = 1000.0 + 600.5
    service.tick()
    assert sorted(r.replica_id for r in pool.replicas.values() if r.stopping) == [
        "warm-1-pods",
        "warm-2-pods",
    ]
    await eventually(lambda: cluster.pods() == [], what="the pods deleted")


async def test_an_image_that_cannot_be_pulled_is_not_pulled_again_until_new_work(
    cluster: StandInCluster, clock: Clock, opened: list[Any]
) -> None:
    """Issue 29: once the task failed (the pool gave up starting), no Pending pod is
    created again and again until idle_ttl; a new task tries again."""
    api, ns = cluster.api, cluster.namespace
    fail_image_pulls(api)
    policy = PoolPolicy(min_replicas=1, max_replicas=1, concurrency=1, scaledown_ttl=60,
                        idle_ttl=600)  # fmt: skip
    spec = EnvironmentSpec(name="pull", policy=policy, image="nowhere/nothing:1")
    service = await _service(cluster, clock, opened, start_deadline=0.3)
    key = service.register_environment(spec)
    pool = service.pools[key]
    session = service.open_session("client")
    session.submit(Submission(key, task(never_runs)))
    for attempt in range(1, START_FAILURES_BEFORE_GIVING_UP + 1):
        clock.now += 60.0  # past any backoff
        service.tick()
        assert len(pool.replicas) == 1, attempt
        await eventually(
            lambda a=attempt: pool.snapshot().consecutive_start_failures == a, timeout=30
        )
    [failed] = await _next_results(service, session)
    assert failed.error is not None and failed.error.type == "EnvironmentUnavailableError"
    assert "ImagePullBackOff" in failed.error.message
    created = len(api.added("pods", ns))
    assert created == START_FAILURES_BEFORE_GIVING_UP
    # Nothing waits: tick after tick, for as long as idle_ttl, no pod is made.
    for _ in range(25):
        clock.now += 20.0
        service.tick()
        assert pool.replicas == {}
    assert len(api.added("pods", ns)) == created
    # New work tries again.
    session.submit(Submission(key, task(never_runs)))
    service.tick()
    assert len(pool.replicas) == 1
    await eventually(lambda: len(api.added("pods", ns)) == created + 1)
