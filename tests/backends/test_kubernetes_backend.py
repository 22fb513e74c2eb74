"""The kubernetes backend against the API server stand-in (no pods run here; the
kubelet's part is played by patching pod status, as a kubelet does).

The stand-in enforces the Role that `k8s manifests` ships, so every test here
also shows the backend needs nothing more. The tests with real pods are in
``tests/kubernetes`` (marked ``kubernetes``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

from reuse_runtime.backends.base import ReplicaLaunch
from reuse_runtime.backends.kubernetes import (
    API_CALLS,
    ENV_KEY_ANNOTATION,
    KubernetesBackend,
    KubernetesConfig,
    PodReplica,
)
from reuse_runtime.manifests import role_rules
from reuse_runtime.model import EnvironmentSpec, PoolPolicy
from reuse_runtime.resources import Resources
from reuse_runtime.security import Security
from tests.helpers import eventually
from tests.kubernetes.apiserver import ADMIN, ApiServer, kubeconfig
from tests.kubernetes.cluster import StandInCluster, stand_in_cluster
from tests.kubernetes.kubelet_steps import end_pod, finish_deletions, run_pod
from tests.tls import make_certs

POLICY = PoolPolicy(min_replicas=1, max_replicas=2, concurrency=2, scaledown_ttl=1, idle_ttl=1)


def _launch(replica_id: str, name: str = "env", memory: str = "200Mi") -> ReplicaLaunch:
    spec = EnvironmentSpec(
        name=name, policy=POLICY, image="busybox:1", resources=Resources(memory=memory).to_wire()
    )
    return ReplicaLaunch(
        replica_id=replica_id,
        environment=spec,
        controller_address="reuse-runtime.rr-test.svc:50050",
        security=Security(token="t"),
        grace_period=3,
    )


def make_ca_copy(path: str) -> bytes:
    with open(path, "rb") as ca:
        return ca.read()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[StandInCluster]:
    with stand_in_cluster(tmp_path) as found:
        yield found


@pytest.fixture
def kubelet_deletes(cluster: StandInCluster) -> None:
    """Pods marked for deletion end and go at once, as their kubelet would have them."""
    finish_deletions(cluster.api)


@pytest.fixture
async def backend(cluster: StandInCluster) -> AsyncIterator[KubernetesBackend]:
    pods = KubernetesBackend(
        KubernetesConfig(kubeconfig=str(cluster.kubeconfig), in_cluster=False, start_deadline=30),
        security=Security(token=cluster.token),
    )
    await pods.open()
    yield pods
    await pods.close()


async def test_a_pod_starts_runs_drains_on_delete_and_is_gone(
    cluster: StandInCluster, backend: KubernetesBackend
) -> None:
    api, ns = cluster.api, cluster.namespace
    handle = await backend.start(_launch("env-1-aaaa"))
    assert isinstance(handle, PodReplica)
    assert [p["metadata"]["name"] for p in cluster.pods()] == ["reuse-runtime-env-1-aaaa"]
    run_pod(api, ns, handle.name)
    await eventually(lambda: handle.phase == "Running" and handle.ip == "10.0.0.5")
    assert await backend.healthy(handle)
    assert handle.describe() == "pod reuse-runtime-env-1-aaaa on node-1 (10.0.0.5)"
    assert backend.list() == [handle]
    stopping = asyncio.create_task(backend.stop(handle, 7))
    # A graceful delete: the pod is marked, and stays until its kubelet is done.
    pod = await eventually(
        lambda: (
            next(iter(cluster.pods()), {}).get("metadata", {}).get("deletionTimestamp")
            and cluster.pods()[0]
        )
    )
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 7
    end_pod(api, ns, handle.name, "Succeeded", exitCode=0, reason="Completed")
    api.remove_pod(ns, handle.name)
    await stopping
    status = await backend.wait(handle)
    assert status.code == 0
    assert backend.list() == [] and cluster.pods() == []


async def test_oom_killed_and_evicted_pods_say_so_and_are_deleted(
    cluster: StandInCluster, backend: KubernetesBackend
) -> None:
    api, ns = cluster.api, cluster.namespace
    oom = await backend.start(_launch("env-1-oooo", memory="200Mi"))
    evicted = await backend.start(_launch("env-2-eeee"))
    run_pod(api, ns, oom.name)
    run_pod(api, ns, evicted.name, ip="10.0.0.6")
    end_pod(api, ns, oom.name, exitCode=137, reason="OOMKilled")
    status = await asyncio.wait_for(backend.wait(oom), 10)
    assert status.oom and status.memory_limit == "200Mi"
    assert "ran out of memory (OOMKilled)" in status.describe()
    assert "200Mi" in status.describe()
    api.patch_status(
        ns,
        evicted.name,
        {
            "phase": "Failed",
            "reason": "Evicted",
            "message": "The node was low on resource: memory.",
        },
    )
    status = await asyncio.wait_for(backend.wait(evicted), 10)
    assert status.describe() == (
        "was evicted by Kubernetes (Evicted): The node was low on resource: memory."
    )
    # A pod that ended stays in the API until deleted: the backend deletes it.
    await eventually(lambda: cluster.pods() == [])


async def test_pending_past_the_deadline_is_reported_with_the_reason_and_deleted(
    cluster: StandInCluster,
) -> None:
    api, ns = cluster.api, cluster.namespace
    pods = KubernetesBackend(
        KubernetesConfig(kubeconfig=str(cluster.kubeconfig), in_cluster=False, start_deadline=1),
        security=Security(token=cluster.token),
    )
    await pods.open()
    try:
        unscheduled = await pods.start(_launch("env-1-pppp"))
        pulling = await pods.start(_launch("env-2-iiii"))
        api.patch_status(
            ns,
            unscheduled.name,
            {
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/1 nodes are available: 1 Insufficient memory.",
                    }
                ]
            },
        )
        api.patch_spec(ns, pulling.name, {"nodeName": "node-1"})
        api.patch_status(
            ns,
            pulling.name,
            {
                "containerStatuses": [
                    {
                        "name": "worker",
                        "ready": False,
                        "restartCount": 0,
                        "image": "busybox:1",
                        "imageID": "",
                        "state": {
                            "waiting": {
                                "reason": "ImagePullBackOff",
                                "message": 'Back-off pulling image "busybox:1"',
                            }
                        },
                    }
                ]
            },
        )
        status = await asyncio.wait_for(pods.wait(unscheduled), 10)
        assert status.describe() == (
            "its pod stayed Pending for 1 s (Unschedulable: 0/1 nodes are available: 1 "
            "Insufficient memory.); it was deleted"
        )
        status = await asyncio.wait_for(pods.wait(pulling), 10)
        assert "ImagePullBackOff: Back-off pulling image" in status.describe()
        assert status.reason == "ImagePullBackOff"
        # Both are deleted (with grace 0: at once, as `kubectl delete --force --grace-period=0`).
        await eventually(lambda: cluster.pods() == [])
    finally:
        await pods.close()


async def test_a_pod_deleted_by_someone_else_is_a_lost_replica(
    cluster: StandInCluster, backend: KubernetesBackend
) -> None:
    api, ns = cluster.api, cluster.namespace
    handle = await backend.start(_launch("env-1-dddd"))
    run_pod(api, ns, handle.name)
    api.delete("", "pods", ns, handle.name, 0)
    status = await asyncio.wait_for(backend.wait(handle), 10)
    assert status.describe() == "its pod was deleted by someone else"


async def test_a_restarted_controller_adopts_live_pods_by_label(
    cluster: StandInCluster, backend: KubernetesBackend, kubelet_deletes: None
) -> None:
    api, ns = cluster.api, cluster.namespace
    first = await backend.start(_launch("env-1-aaaa"))
    second = await backend.start(_launch("env-2-bbbb"))
    other = await backend.start(_launch("other-1-cccc", name="other"))
    ended = await backend.start(_launch("env-3-dddd"))
    for handle in (first, second, other, ended):
        run_pod(api, ns, handle.name)
    end_pod(api, ns, ended.name, exitCode=1, reason="Error")
    await eventually(lambda: len(cluster.pods()) == 3)
    env_key = first.env_key
    # A second controller of the same name, as after kill -9 and a restart.
    successor = KubernetesBackend(
        KubernetesConfig(kubeconfig=str(cluster.kubeconfig), in_cluster=False, adopt_window=1.0),
        security=Security(token=cluster.token),
    )
    await successor.open()
    try:
        claimed = successor.claim(env_key)
        assert sorted(h.replica_id for h in claimed) == ["env-1-aaaa", "env-2-bbbb"]
        assert all(isinstance(h, PodReplica) and h.adopted for h in claimed)
        assert successor.claim(env_key) == []  # each is handed out once
        assert sorted(h.replica_id for h in successor.list()) == ["env-1-aaaa", "env-2-bbbb"]
        # Nobody claimed environment "other" within the window: its pod is deleted.
        await eventually(lambda: other.name not in [p["metadata"]["name"] for p in cluster.pods()])
        # An adopted pod's end is followed like any other.
        end_pod(api, ns, first.name, exitCode=137, reason="OOMKilled")
        adopted = next(h for h in claimed if h.replica_id == "env-1-aaaa")
        status = await asyncio.wait_for(successor.wait(adopted), 10)
        assert status.oom and status.memory_limit == "200Mi"
        assert all(
            p["metadata"]["annotations"][ENV_KEY_ANNOTATION] == env_key for p in cluster.pods()
        )
    finally:
        await successor.close()


async def test_close_deletes_a_predecessors_pods_that_nobody_claimed(
    cluster: StandInCluster, backend: KubernetesBackend, kubelet_deletes: None
) -> None:
    """Issue 29: a restarted controller stopped (SIGTERM) before any pool claimed its
    predecessor's pods deletes them; the deletes reach the API server before close()
    returns."""
    api, ns = cluster.api, cluster.namespace
    left = [await backend.start(_launch(f"env-{i}-left")) for i in (1, 2)]
    for handle in left:
        run_pod(api, ns, handle.name)
    successor = KubernetesBackend(
        KubernetesConfig(kubeconfig=str(cluster.kubeconfig), in_cluster=False, adopt_window=300),
        security=Security(token=cluster.token),
    )
    await successor.open()
    assert successor.list() == []  # nothing claimed
    await successor.close()
    deleted = api.calls(cluster.service_account, verb="delete", resource="pods", code=200)
    assert sorted(entry.name for entry in deleted) == sorted(h.name for h in left)
    assert all(
        entry.path.startswith("DELETE /api/v1/namespaces/rr-test/pods/") for entry in deleted
    )
    assert cluster.pods() == []


async def test_the_backend_makes_only_the_calls_the_role_grants(tmp_path: Path) -> None:
    """Acceptance 6: every API call the backend makes, against the Role's rules."""
    certs = make_certs(tmp_path)
    with stand_in_cluster(tmp_path) as cluster, ApiServer(tls=(certs.cert, certs.key)) as tls_api:
        finish_deletions(tls_api)
        # In the cluster, over TLS, with the service account's token, CA and namespace.
        for doc_api in (tls_api,):
            doc_api.add_user(cluster.controller_token, cluster.service_account)
            doc_api.add_user(cluster.admin_token, ADMIN)
            for kind in ("namespaces", "serviceaccounts", "roles", "rolebindings", "secrets"):
                group = "rbac.authorization.k8s.io" if kind.startswith("role") else ""
                for doc in cluster.api.objects(kind, "", group):
                    for key in ("uid", "resourceVersion", "creationTimestamp"):
                        doc["metadata"].pop(key, None)
                    if kind == "secrets":
                        doc["stringData"] = {"token": cluster.token}
                        doc.pop("data")
                    doc_api.apply(doc)
        ns = cluster.namespace
        controller_pod = tls_api.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "reuse-runtime-7d9f-abcde", "namespace": ns},
                "spec": {"containers": [{"name": "controller", "image": "rr:1"}]},
            }
        )
        accounts = tmp_path / "serviceaccount"
        accounts.mkdir()
        (accounts / "token").write_text(cluster.controller_token)
        (accounts / "ca.crt").write_bytes(make_ca_copy(certs.ca))
        (accounts / "namespace").write_text(ns)
        port = tls_api.url.rsplit(":", 1)[1]
        monkey = pytest.MonkeyPatch()
        monkey.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkey.setenv("KUBERNETES_SERVICE_PORT", port)
        try:
            pods = KubernetesBackend(
                KubernetesConfig(
                    service_account_dir=accounts,
                    pod_name="reuse-runtime-7d9f-abcde",
                    adopt_window=0.5,
                ),
                security=Security(token=cluster.token),
            )
            await pods.open()
            assert pods.namespace == ns
            handle = await pods.start(_launch("env-1-rbac"))
            pod = tls_api.get("pods", ns, handle.name)
            # Owned by the controller's pod: Kubernetes removes it when that pod goes.
            assert pod["metadata"]["ownerReferences"] == [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": "reuse-runtime-7d9f-abcde",
                    "uid": controller_pod["metadata"]["uid"],
                }
            ]
            run_pod(tls_api, ns, handle.name)
            successor = KubernetesBackend(
                KubernetesConfig(
                    service_account_dir=accounts, pod_name=controller_pod["metadata"]["name"]
                ),
                security=Security(token=cluster.token),
            )
            await successor.open()
            assert [h.replica_id for h in successor.claim(handle.env_key)] == ["env-1-rbac"]
            await successor.close()  # deletes what it adopted
            await pods.close()
            # The controller's pod goes: its replicas go with it (the garbage collector).
            third = KubernetesBackend(
                KubernetesConfig(service_account_dir=accounts, pod_name="reuse-runtime-7d9f-abcde"),
                security=Security(token=cluster.token),
            )
            again = await third.start(_launch("env-9-gone"))
            tls_api.delete("", "pods", ns, "reuse-runtime-7d9f-abcde", 0)
            assert again.name not in [p["metadata"]["name"] for p in tls_api.objects("pods", ns)]
            status = await asyncio.wait_for(third.wait(again), 10)
            assert status.describe() == "its pod was deleted by someone else"
            await third.close()
        finally:
            monkey.undo()
        calls = {
            (r.verb, r.resource + (f"/{r.subresource}" if r.subresource else ""))
            for r in tls_api.calls(cluster.service_account)
        }
    role = role_rules(API_CALLS)
    granted = {(verb, rule["resources"][0]) for rule in role for verb in rule["verbs"]}
    # Everything it called is granted; everything granted is needed.
    assert calls == granted
    assert granted == {(verb, "pods") for verb in ("create", "delete", "get", "list", "watch")}


def test_the_stand_in_enforces_the_role(cluster: StandInCluster) -> None:
    """The RBAC check above can fail: anything beyond the Role is refused."""
    api_client = kube_config.new_client_from_config(config_file=str(cluster.kubeconfig))
    core = kube_client.CoreV1Api(api_client)
    try:
        with pytest.raises(ApiException) as refused:
            core.list_namespaced_secret(cluster.namespace)
        assert refused.value.status == 403
        with pytest.raises(ApiException) as refused:
            core.patch_namespaced_pod_status("x", cluster.namespace, {"status": {}})
        assert refused.value.status == 403
        with pytest.raises(ApiException) as refused:
            core.list_namespaced_pod("default")  # another namespace
        assert refused.value.status == 403
        assert (
            json.loads(core.list_namespaced_pod(cluster.namespace, _preload_content=False).data)[
                "items"
            ]
            == []
        )
    finally:
        api_client.close()
    # The audit log has every call, refused ones with their 403.
    assert [
        (entry.verb, entry.resource, entry.namespace, entry.code)
        for entry in cluster.api.calls(cluster.service_account)
    ] == [
        ("list", "secrets", cluster.namespace, 403),
        ("patch", "pods", cluster.namespace, 403),
        ("list", "pods", "default", 403),
        ("list", "pods", cluster.namespace, 200),
    ]


async def test_an_expired_watch_is_resumed_with_a_fresh_list(
    cluster: StandInCluster, backend: KubernetesBackend
) -> None:
    """A real server ends a watch sooner or later and compacts old versions away, so
    resuming it gets 410 Gone: the backend lists again, and sees what changed in the gap."""
    api, ns = cluster.api, cluster.namespace
    handle = await backend.start(_launch("env-1-gone"))
    run_pod(api, ns, handle.name)
    await eventually(lambda: handle.phase == "Running")
    lists = len(api.calls(cluster.service_account, verb="list", code=200))
    # The pod ends while no watch is open: only a list can show it.
    api.expire_watches(meanwhile=lambda: end_pod(api, ns, handle.name, exitCode=3, reason="Error"))
    status = await asyncio.wait_for(backend.wait(handle), 10)
    assert status.code == 3
    assert api.calls(cluster.service_account, verb="watch", code=410)
    assert len(api.calls(cluster.service_account, verb="list", code=200)) > lists


async def test_a_kubeconfig_context_gives_the_namespace_and_bad_config_is_one_line(
    cluster: StandInCluster, tmp_path: Path
) -> None:
    config = json.loads(cluster.kubeconfig.read_text())
    assert config["contexts"][0]["context"]["namespace"] == cluster.namespace
    pods = KubernetesBackend(
        KubernetesConfig(kubeconfig=str(cluster.kubeconfig), in_cluster=False),
        security=Security(token=cluster.token),
    )
    await pods.open()
    assert pods.namespace == cluster.namespace
    await pods.close()
    missing = KubernetesBackend(
        KubernetesConfig(kubeconfig=str(tmp_path / "nope"), in_cluster=False),
        security=Security(token="t"),
    )
    with pytest.raises(Exception, match="cannot reach Kubernetes: no usable kubeconfig"):
        await missing.open()
    await missing.close()
    wrong = tmp_path / "wrong-token"
    wrong.write_text(json.dumps(kubeconfig(cluster.api.url, "not-a-token", cluster.namespace)))
    refused = KubernetesBackend(
        KubernetesConfig(kubeconfig=str(wrong), in_cluster=False), security=Security(token="t")
    )
    with pytest.raises(Exception, match="401"):
        await refused.open()
    await refused.close()
