"""`KubernetesBackend`: replicas as pods, through the official ``kubernetes`` client.

It makes the API calls (create, delete, get, list, watch: :data:`API_CALLS`),
follows its pods with one watch, adopts a predecessor's pods, and turns what a
pod says into a replica's :class:`~reuse_runtime.backends.base.ExitStatus`. The
package's docstring says how.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import json
import math
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from reuse_runtime.aio import TaskSet, in_executor, stop_within, wait_within
from reuse_runtime.backends.base import (
    ExitStatus,
    ReplicaHandle,
    ReplicaLaunch,
    follow_in_thread,
    own_handle,
)
from reuse_runtime.backends.kubernetes.config import KubernetesConfig
from reuse_runtime.backends.kubernetes.podspec import (
    CONTROLLER_LABEL,
    ENV_KEY_ANNOTATION,
    MEMORY_LIMIT_ANNOTATION,
    REPLICA_ID_ANNOTATION,
    pod_manifest,
)
from reuse_runtime.backends.kubernetes.podstatus import (
    container_status,
    exit_status,
    init_record,
    pending_reason,
)
from reuse_runtime.errors import AuthConfigError, ReuseRuntimeError
from reuse_runtime.images.registry import registry_reference
from reuse_runtime.security import Security

log = structlog.get_logger("reuse_runtime.backends")

T = TypeVar("T")

#: Every Kubernetes API call the backend makes: (verb, resource). The Role grants these.
API_CALLS = (
    ("create", "pods"),
    ("delete", "pods"),
    ("get", "pods"),
    ("list", "pods"),
    ("watch", "pods"),
)

#: Seconds close() gives its last deletes (a predecessor's pods nobody claimed, pods
#: that ended) to reach the API server.
CLOSE_DELETES_WITHIN = 10.0

# Waiting reasons that never clear by themselves: reported at once, not at the deadline.
_HOPELESS = ("InvalidImageName", "ErrImageNeverPull")


@dataclass(eq=False)
class PodReplica:
    """One replica's pod, and how it ended."""

    replica_id: str
    name: str
    env_key: str
    exited: asyncio.Future[ExitStatus]
    created: float
    memory_limit: str = ""
    phase: str = "Pending"
    ip: str = ""
    node: str = ""
    uid: str = ""
    waiting: tuple[str, str] = ("", "")
    message_tail: str = ""
    killed: bool = False
    deleting: bool = False
    adopted: bool = False
    _deadline: asyncio.TimerHandle | None = field(default=None, repr=False)

    def describe(self) -> str:
        where = f" on {self.node}" if self.node else ""
        ip = f" ({self.ip})" if self.ip else ""
        return f"pod {self.name}{where}{ip}"

    def stderr_tail(self) -> str:
        return self.message_tail


def _pod_replica(handle: ReplicaHandle) -> PodReplica:
    return own_handle(handle, PodReplica, "kubernetes")


class KubernetesBackend:
    """Start replicas as pods. ``open()`` connects (``start`` does it on first use)."""

    name = "kubernetes"
    #: Pods see nothing of the client's machine: they fetch the code bundle.
    shares_files = False

    def __init__(
        self,
        config: KubernetesConfig | None = None,
        *,
        security: Security | None = None,
        api_client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or KubernetesConfig.from_env()
        self._security = security
        self._api_client = api_client
        self._core: Any = None
        self._clock = clock
        self.namespace = self.config.namespace or ""
        self.instance = secrets.token_hex(4)
        self._owner: dict[str, Any] | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=16, thread_name_prefix="kubernetes"
        )
        self._replicas: dict[str, PodReplica] = {}  # by pod name
        self._adoptable: dict[str, builtins.list[PodReplica]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open_lock = asyncio.Lock()
        self._opened = False
        self._closed = False
        self._watch: Any = None
        self._watch_thread: threading.Thread | None = None
        self._adopt_timer: asyncio.TimerHandle | None = None
        # Deletes nobody awaits (pods that ended, a predecessor's): close() waits for them.
        self._background = TaskSet("kubernetes")

    # -------------------------------------------------------------- lifecycle

    @property
    def ready_timeout(self) -> float:
        """How long the pool waits for a replica to attach: scheduling and pulling included."""
        return self.config.start_deadline + 60.0

    async def open(self) -> None:
        """Connect to the API server, find this controller's pod (in the cluster), adopt a
        predecessor's live pods, and follow them. Idempotent."""
        async with self._open_lock:
            if self._opened:
                return
            security = self._security
            if security is not None and security.tls is not None and not security.token:
                raise AuthConfigError(
                    "the kubernetes backend authenticates replicas with a token from a "
                    "Secret; mTLS alone is not supported: set a token"
                )
            self._loop = asyncio.get_running_loop()
            await self._call(self._connect)
            found = await self._call(self._list_pods)
            self._adopt(found)
            self._watch_thread = await follow_in_thread(self._follow, "pod-watch", self._executor)
            adoptable = sum(len(v) for v in self._adoptable.values())
            if adoptable:
                self._adopt_timer = self._loop.call_later(
                    self.config.adopt_window, self._release_unclaimed
                )
            self._opened = True
            log.info(
                "kubernetes backend ready",
                namespace=self.namespace,
                controller=self.config.name,
                owner=(self._owner or {}).get("name", ""),
                adoptable=adoptable,
            )

    def _connect(self) -> None:
        from kubernetes import client, config

        in_cluster = self.config.in_cluster
        if in_cluster is None:
            in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (
                self.config.kubeconfig is None
            )
        if self._api_client is None:
            try:
                if in_cluster:
                    from kubernetes.config.incluster_config import InClusterConfigLoader

                    configuration = client.Configuration()
                    accounts = self.config.service_account_dir
                    InClusterConfigLoader(  # type: ignore[no-untyped-call]
                        token_filename=str(accounts / "token"),
                        cert_filename=str(accounts / "ca.crt"),
                    ).load_and_set(configuration)
                    self._api_client = client.ApiClient(configuration)
                else:
                    self._api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                        config_file=self.config.kubeconfig, context=self.config.context
                    )
            except config.ConfigException as exc:
                where = "in-cluster service account" if in_cluster else "kubeconfig"
                raise ReuseRuntimeError(
                    f"cannot reach Kubernetes: no usable {where} ({exc}); outside a cluster "
                    f"set $KUBECONFIG or create ~/.kube/config"
                ) from None
        self._core = client.CoreV1Api(self._api_client)
        if not self.namespace:
            self.namespace = _default_namespace(in_cluster, self.config)
        if in_cluster:
            self._owner = self._find_owner()

    def _find_owner(self) -> dict[str, Any] | None:
        """An ownerReference to the controller's own pod, when it can be read."""
        from kubernetes.client.exceptions import ApiException

        name = self.config.pod_name or os.environ.get("HOSTNAME", "")
        if not name:
            return None
        try:
            pod = self._core.read_namespaced_pod(name, self.namespace, _preload_content=False)
            uid = json.loads(pod.data)["metadata"]["uid"]
        except (ApiException, KeyError, ValueError) as exc:
            log.warning(
                "cannot read the controller's own pod: replicas get no ownerReference",
                pod=name,
                error=str(exc)[:200],
            )
            return None
        return {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid}

    async def close(self) -> None:
        """Delete every pod this backend started or still holds for adoption.

        In this order: the deletes of unclaimed pods start; this backend's own pods
        are stopped; every delete started so far gets up to ``CLOSE_DELETES_WITHIN``
        seconds to reach the API server; only then do the watch, the client and the
        threads that make the calls go.
        """
        if self._closed:
            return
        if self._adopt_timer is not None:
            self._adopt_timer.cancel()
        self._release_unclaimed()
        replicas = [r for r in self._replicas.values() if not r.exited.done()]
        await asyncio.gather(*(self.stop(r, 5.0) for r in replicas), return_exceptions=True)
        left = await self._background.wait(CLOSE_DELETES_WITHIN)
        if left:
            log.warning(
                "pod deletes did not finish; Kubernetes may still hold those pods",
                pending=left,
                within=CLOSE_DELETES_WITHIN,
            )
        self._closed = True
        # The watch thread ends at its next event or timeout, seeing _closed; nothing waits.
        if self._watch is not None:
            with contextlib.suppress(Exception):
                self._watch.stop()
        await self._background.cancel_all()
        if self._api_client is not None:
            with contextlib.suppress(Exception):
                self._api_client.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -------------------------------------------------------------- the Backend protocol

    async def start(self, launch: ReplicaLaunch) -> PodReplica:
        await self.open()
        image = registry_reference(
            launch.environment.image, self.config.image_registry, launch.environment.code_bundle
        )
        body = pod_manifest(
            launch, self.config, namespace=self.namespace, image=image, owner=self._owner,
            instance=self.instance,
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        replica = PodReplica(
            launch.replica_id,
            body["metadata"]["name"],
            launch.environment.key(),
            loop.create_future(),
            self._clock(),
            memory_limit=body["metadata"]["annotations"][MEMORY_LIMIT_ANNOTATION],
        )
        self._replicas[replica.name] = replica
        try:
            await self._call(self._create, body)
        except BaseException:
            self._replicas.pop(replica.name, None)
            raise
        replica._deadline = loop.call_later(
            self.config.start_deadline, self._past_deadline, replica
        )
        return replica

    async def stop(self, handle: ReplicaHandle, grace: float) -> None:
        """Delete the pod with ``grace``: the kubelet sends SIGTERM (the worker drains)
        and SIGKILL past it."""
        replica = _pod_replica(handle)
        if not replica.exited.done() and not replica.deleting:
            replica.deleting = True
            await self._call(self._delete, replica.name, max(1, math.ceil(grace)))
        await stop_within(asyncio.shield(replica.exited), grace + 30.0, lambda: self.kill(replica))

    async def kill(self, handle: ReplicaHandle) -> None:
        """Delete the pod at once (grace 0: SIGKILL)."""
        replica = _pod_replica(handle)
        if not replica.exited.done():
            replica.killed = True
            replica.deleting = True
            await self._call(self._delete, replica.name, 0)
        try:
            await wait_within(asyncio.shield(replica.exited), 60.0)
        except asyncio.TimeoutError:
            # The watch missed it: ask the API server.
            await self._call(self._relist)
            if not replica.exited.done():
                self._settle(replica, ExitStatus(detail="its pod was deleted", by_runtime=True))

    async def wait(self, handle: ReplicaHandle) -> ExitStatus:
        replica = _pod_replica(handle)
        status = await asyncio.shield(replica.exited)
        self._replicas.pop(replica.name, None)
        return status

    def list(self) -> builtins.list[ReplicaHandle]:
        return [r for r in self._replicas.values() if not r.exited.done()]

    async def healthy(self, handle: ReplicaHandle) -> bool:
        replica = _pod_replica(handle)
        return not replica.exited.done() and replica.phase in ("Pending", "Running")

    def claim(self, env_key: str) -> builtins.list[ReplicaHandle]:
        """A predecessor's live pods of ``env_key``, handed out once (see the docstring)."""
        claimed = self._adoptable.pop(env_key, [])
        for replica in claimed:
            self._replicas[replica.name] = replica
            log.info("adopted pod", pod=replica.name, replica=replica.replica_id, env=env_key)
        return builtins.list(claimed)

    # -------------------------------------------------------------- API calls (threads)

    def _create(self, body: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self._core.create_namespaced_pod(self.namespace, body, _preload_content=False)
        except ApiException as exc:
            raise ReuseRuntimeError(
                f"Kubernetes refused pod {body['metadata']['name']} in namespace "
                f"{self.namespace}: {_api_error(exc)}"
            ) from None

    def _delete(self, name: str, grace: int) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self._core.delete_namespaced_pod(
                name, self.namespace, grace_period_seconds=grace, _preload_content=False
            )
        except ApiException as exc:
            if exc.status != 404:
                log.warning("could not delete pod", pod=name, error=_api_error(exc))

    def _list_pods(self) -> tuple[builtins.list[dict[str, Any]], str]:
        response = self._core.list_namespaced_pod(
            self.namespace, label_selector=self._selector(), _preload_content=False
        )
        data = json.loads(response.data)
        return list(data.get("items") or []), str(
            (data.get("metadata") or {}).get("resourceVersion") or ""
        )

    def _selector(self) -> str:
        return f"{CONTROLLER_LABEL}={self.config.name}"

    # -------------------------------------------------------------- adoption

    def _adopt(self, found: tuple[builtins.list[dict[str, Any]], str]) -> None:
        """Sort a predecessor's pods: live ones of ours become adoptable, ended ones go."""
        pods, _ = found
        for pod in pods:
            metadata = pod.get("metadata") or {}
            annotations = metadata.get("annotations") or {}
            name = str(metadata.get("name", ""))
            owners = metadata.get("ownerReferences") or []
            if self._owner is not None and owners and owners[0].get("uid") != self._owner["uid"]:
                continue  # another controller pod's (a rollout): Kubernetes removes them
            replica_id = annotations.get(REPLICA_ID_ANNOTATION)
            env_key = annotations.get(ENV_KEY_ANNOTATION)
            phase = (pod.get("status") or {}).get("phase", "")
            if not replica_id or not env_key or metadata.get("deletionTimestamp"):
                continue
            if phase not in ("Pending", "Running"):
                self._spawn_delete(name)
                continue
            assert self._loop is not None
            replica = PodReplica(
                replica_id,
                name,
                env_key,
                self._loop.create_future(),
                self._clock(),
                memory_limit=annotations.get(MEMORY_LIMIT_ANNOTATION, ""),
                phase=phase,
                adopted=True,
            )
            self._track(replica, pod)
            self._adoptable.setdefault(env_key, []).append(replica)

    def _release_unclaimed(self) -> None:
        """Delete the predecessor's pods no pool claimed in time."""
        for replicas in self._adoptable.values():
            for replica in replicas:
                log.info("deleting a predecessor's pod nobody claimed", pod=replica.name)
                self._spawn_delete(replica.name)
        self._adoptable.clear()

    def _spawn_delete(self, name: str) -> None:
        loop = self._loop
        if loop is None or self._closed:
            return
        self._background.spawn(self._call(self._delete, name, 0), f"delete:{name}")

    # -------------------------------------------------------------- following pods

    def _follow(self, subscribed: threading.Event) -> None:
        """Thread: turn watch events into pod states and exits; relist after a break."""
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        resource_version = ""
        while not self._closed:
            try:
                if not resource_version:
                    resource_version = self._relist()
                subscribed.set()
                self._watch = watch.Watch()  # type: ignore[no-untyped-call]
                for event in self._watch.stream(
                    self._core.list_namespaced_pod,
                    self.namespace,
                    label_selector=self._selector(),
                    resource_version=resource_version,
                    timeout_seconds=60,
                    allow_watch_bookmarks=True,
                ):
                    if self._closed:
                        return
                    kind = event.get("type")
                    raw = event.get("raw_object") or {}
                    if kind == "ERROR":
                        resource_version = ""  # 410 Gone: too old; list again
                        break
                    version = (raw.get("metadata") or {}).get("resourceVersion")
                    if version:
                        resource_version = str(version)
                    if kind in ("ADDED", "MODIFIED"):
                        self._observe(raw, deleted=False)
                    elif kind == "DELETED":
                        self._observe(raw, deleted=True)
            except ApiException as exc:
                if self._closed:
                    return
                if exc.status == 410:
                    resource_version = ""
                    continue
                log.warning("pod watch failed; watching again", error=_api_error(exc))
                resource_version = ""
                threading.Event().wait(1.0)
            except Exception as exc:
                if self._closed:
                    return
                log.warning("pod watch broke; watching again", error=str(exc)[:200])
                resource_version = ""
                threading.Event().wait(1.0)

    def _relist(self) -> str:
        """Bring every tracked pod up to date from a list; the list's resourceVersion."""
        pods, version = self._list_pods()
        seen = set()
        for pod in pods:
            seen.add((pod.get("metadata") or {}).get("name"))
            self._observe(pod, deleted=False)
        for replica in list(self._replicas.values()):
            if replica.name not in seen and not replica.exited.done() and self._listed(replica):
                self._observe({"metadata": {"name": replica.name}}, deleted=True)
        return version

    def _listed(self, replica: PodReplica) -> bool:
        # A pod created a moment ago may not be in a list that started before it.
        return self._clock() - replica.created > 5.0

    def _observe(self, pod: dict[str, Any], *, deleted: bool) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_pod, pod, deleted)

    def _on_pod(self, pod: dict[str, Any], deleted: bool) -> None:
        """On the loop: a pod changed (or is gone)."""
        name = (pod.get("metadata") or {}).get("name", "")
        replica = self._replicas.get(name) or self._adoptable_named(name)
        if replica is None or replica.exited.done():
            return
        self._track(replica, pod)
        status = exit_status(pod, killed=replica.killed)
        if status is not None:
            self._settle(replica, status)
            self._spawn_delete(replica.name)  # a pod that ended stays until deleted
            return
        if deleted:
            what = "its pod was deleted" + ("" if replica.deleting else " by someone else")
            self._settle(replica, ExitStatus(detail=what, by_runtime=replica.killed))
            return
        reason, message = replica.waiting
        if replica.phase == "Pending" and reason in _HOPELESS:
            self._fail_start(replica, f"its image cannot be pulled ({reason}): {message}")

    def _adoptable_named(self, name: str) -> PodReplica | None:
        for replicas in self._adoptable.values():
            for replica in replicas:
                if replica.name == name:
                    return replica
        return None

    def _track(self, replica: PodReplica, pod: dict[str, Any]) -> None:
        status = pod.get("status") or {}
        replica.phase = str(status.get("phase") or replica.phase)
        replica.ip = str(status.get("podIP") or replica.ip)
        replica.node = str((pod.get("spec") or {}).get("nodeName") or replica.node)
        replica.uid = str((pod.get("metadata") or {}).get("uid") or replica.uid)
        if replica.phase == "Pending":
            waiting = pending_reason(pod)
            if waiting[0] != replica.waiting[0] and waiting[0] not in ("Pending",):
                log.info(
                    "pod waiting", pod=replica.name, reason=waiting[0], message=waiting[1][:300]
                )
            replica.waiting = waiting
        elif replica._deadline is not None:
            replica._deadline.cancel()
            replica._deadline = None
        terminated = (container_status(pod).get("state") or {}).get("terminated") or {}
        _, tail = init_record(str(terminated.get("message") or ""))
        if tail:
            replica.message_tail = tail

    def _past_deadline(self, replica: PodReplica) -> None:
        if replica.exited.done() or replica.phase != "Pending":
            return
        reason, message = replica.waiting
        said = f" ({reason}{': ' + message if message else ''})" if reason else ""
        self._fail_start(
            replica,
            f"its pod stayed Pending for {self.config.start_deadline:g} s{said}; it was deleted",
        )

    def _fail_start(self, replica: PodReplica, detail: str) -> None:
        log.warning("pod did not start", pod=replica.name, reason=detail)
        replica.killed = True
        replica.deleting = True
        self._settle(replica, ExitStatus(detail=detail, reason=replica.waiting[0]))
        self._spawn_delete(replica.name)

    def _settle(self, replica: PodReplica, status: ExitStatus) -> None:
        if replica._deadline is not None:
            replica._deadline.cancel()
            replica._deadline = None
        if not replica.exited.done():
            replica.exited.set_result(status)

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await in_executor(self._executor, fn, *args, **kwargs)


def _default_namespace(in_cluster: bool, config: KubernetesConfig) -> str:
    if in_cluster:
        with contextlib.suppress(OSError):
            return (config.service_account_dir / "namespace").read_text().strip() or "default"
        return "default"
    from kubernetes import config as kube_config

    try:
        _, active = kube_config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=config.kubeconfig
        )
    except Exception:
        return "default"
    if config.context:
        with contextlib.suppress(Exception):
            contexts, _ = kube_config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=config.kubeconfig
            )
            active = next(c for c in contexts if c.get("name") == config.context)
    return str(((active or {}).get("context") or {}).get("namespace") or "default")


def _api_error(exc: Any) -> str:
    """An ApiException as one line: Kubernetes' own message when it sent one."""
    body = getattr(exc, "body", None)
    with contextlib.suppress(Exception):
        message = json.loads(body or "{}").get("message")
        if message:
            return f"{exc.status} {exc.reason}: {message}"
    return f"{getattr(exc, 'status', '')} {getattr(exc, 'reason', '')}".strip() or str(exc)


__all__ = ["API_CALLS", "KubernetesBackend", "PodReplica"]
