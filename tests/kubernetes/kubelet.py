"""A kubelet stand-in for the tests: the pods the backend creates, run for real by Podman.

Test code, not product. It follows the API server stand-in's pods and does a
kubelet's part for each, on one node:

* **schedule**: a pod whose memory requests exceed the node's capacity stays
  Pending with ``PodScheduled=False, Unschedulable``; others are bound;
* **pull**: an image the engine does not have gives ``ErrImagePull`` then
  ``ImagePullBackOff`` (there is no registry here), retried until deleted;
* **run**: the Pod spec *as the backend wrote it* goes to ``podman kube
  play``, with only what a kubelet itself provides swapped in: Secret and
  emptyDir volumes become node directories (a kubelet materializes them the
  same way; Podman 4.3's own secret volumes crash), the termination-message
  file is a node file, and the run's label is added so the test can remove
  what it made;
* **report**: phase, pod IP, container state, a readiness condition from a
  real gRPC health check of the probe's service (Podman 4.3 ignores gRPC
  probes), and the exit: ``OOMKilled`` when the container was SIGKILLed and
  its termination message (written by reuse-runtime-init from the memory
  cgroup) says so - Podman 4.3 reports ``OOMKilled=false`` itself;
* **delete**: a pod marked for deletion gets ``podman pod stop -t GRACE``
  (SIGTERM, then SIGKILL past the grace), then leaves the API for good;
* **evict**: :meth:`Kubelet.evict` kills a pod and reports it ``Evicted``.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import queue
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from reuse_runtime import engine
from reuse_runtime.policy import parse_bytes
from tests.kubernetes.apiserver import ApiError, ApiServer, now

NODE = "standin-node"


@dataclass
class PodRun:
    namespace: str
    name: str
    deleting: threading.Event = field(default_factory=threading.Event)
    grace: int = 30
    evicted: str = ""
    started: bool = False
    ready: bool = False
    ip: str = ""
    thread: threading.Thread | None = None


class Kubelet:
    """Run the API server stand-in's pods with Podman. ``start()``; ``close()`` removes all."""

    def __init__(
        self,
        api: ApiServer,
        work: Path,
        *,
        run_label: tuple[str, str],
        network: str = "podman",
        memory_capacity: str = "8Gi",
    ) -> None:
        self.api = api
        self.work = work
        self.run_label = run_label
        self.network = network
        self.capacity = parse_bytes(memory_capacity)
        self.conf = engine.write_containers_conf(work / "containers.conf")
        self._runs: dict[tuple[str, str], PodRun] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._feed = api.subscribe()
        self._thread: threading.Thread | None = None
        #: Every pod this kubelet handed to `podman kube play`, in order.
        self.played: list[str] = []

    # -------------------------------------------------------------- podman

    def podman(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        env = {**os.environ, "CONTAINERS_CONF": str(self.conf)}
        # conmon writes an `oom` marker into the working directory of the podman that
        # started a container: that is the conf's directory, never the checkout.
        result = subprocess.run(
            ["podman", *args], capture_output=True, text=True, timeout=timeout, env=env,
            cwd=self.conf.parent,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args[:3])}: {result.stderr.strip()[:500]}")
        return result.stdout

    def gateway(self) -> str:
        """The address pods on the network reach this host at."""
        info = json.loads(self.podman("network", "inspect", self.network))
        return str(info[0]["subnets"][0]["gateway"])

    # -------------------------------------------------------------- lifecycle

    def start(self) -> Kubelet:
        self._thread = threading.Thread(target=self._follow, name="kubelet", daemon=True)
        self._thread.start()
        return self

    def close(self) -> list[str]:
        """Stop following; remove every pod of this run. Returns what was left over."""
        self._closed.set()
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.deleting.set()
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout=60)
        key, value = self.run_label
        for _ in range(5):
            left = self.podman(
                "pod", "ps", "-q", "--filter", f"label={key}={value}", check=False
            ).split()
            if not left:
                break
            for pod_id in left:
                self.podman("pod", "rm", "-f", "-t", "0", pod_id, check=False)
            time.sleep(1)
        return left

    def __enter__(self) -> Kubelet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- test controls

    def evict(self, namespace: str, name: str, message: str) -> None:
        """The node's eviction manager: kill the pod and report it Evicted."""
        with self._lock:
            run = self._runs[(namespace, name)]
        run.evicted = message
        self.podman("pod", "kill", name, check=False)

    def running(self) -> list[str]:
        with self._lock:
            return [r.name for r in self._runs.values() if r.started and not r.deleting.is_set()]

    # -------------------------------------------------------------- following pods

    def _follow(self) -> None:
        while not self._closed.is_set():
            try:
                kind, obj = self._feed.get(timeout=0.5)
            except queue.Empty:
                continue
            if obj.get("kind") != "Pod":
                continue
            metadata = obj["metadata"]
            key = (metadata["namespace"], metadata["name"])
            with self._lock:
                run = self._runs.get(key)
                if kind == "ADDED" and run is None:
                    run = self._runs[key] = PodRun(*key)
                    run.thread = threading.Thread(
                        target=self._run, args=(run, obj), name=f"pod-{key[1]}", daemon=True
                    )
                    run.thread.start()
                    continue
            if run is None:
                continue
            if kind == "DELETED" or metadata.get("deletionTimestamp"):
                run.grace = int(metadata.get("deletionGracePeriodSeconds") or 0)
                if not run.deleting.is_set():
                    run.deleting.set()
                    if run.started:
                        threading.Thread(
                            target=self.podman,
                            args=("pod", "stop", "-t", str(run.grace), run.name),
                            kwargs={"check": False},
                            daemon=True,
                        ).start()

    def _patch(self, run: PodRun, status: dict[str, Any]) -> None:
        with contextlib.suppress(ApiError):
            self.api.patch_status(run.namespace, run.name, status)

    def _run(self, run: PodRun, pod: dict[str, Any]) -> None:
        try:
            self._run_pod(run, pod)
        finally:
            self.podman("pod", "rm", "-f", "-t", "0", run.name, check=False)
            with self._lock:
                self._runs.pop((run.namespace, run.name), None)

    def _run_pod(self, run: PodRun, pod: dict[str, Any]) -> None:
        spec = pod["spec"]
        container = spec["containers"][0]
        requested = parse_bytes(
            (container.get("resources") or {}).get("requests", {}).get("memory") or 0
        )
        if requested > self.capacity:
            self._patch(run, {"conditions": [_condition("PodScheduled", False, "Unschedulable",
                        "0/1 nodes are available: 1 Insufficient memory.")]})  # fmt: skip
            run.deleting.wait()
            self.api.remove_pod(run.namespace, run.name)
            return
        with contextlib.suppress(ApiError):
            self.api.patch_spec(run.namespace, run.name, {"nodeName": NODE})
        self._patch(
            run,
            {
                "conditions": [_condition("PodScheduled", True)],
                "hostIP": "10.88.0.1",
                "startTime": now(),
            },
        )
        image = container["image"]
        while not self._has(image):
            for reason in ("ErrImagePull", "ImagePullBackOff"):
                self._patch(run, _waiting(container, reason, f'Back-off pulling image "{image}"'))
            if run.deleting.wait(2.0):
                self.api.remove_pod(run.namespace, run.name)
                return
        if run.deleting.is_set():
            self.api.remove_pod(run.namespace, run.name)
            return
        node_dir = self.work / "pods" / f"{run.namespace}-{run.name}"
        node_dir.mkdir(parents=True, exist_ok=True)
        played, message_file = self._materialize(pod, node_dir)
        manifest = node_dir / "pod.yaml"
        manifest.write_text(yaml.safe_dump(played))
        self._patch(run, _waiting(container, "ContainerCreating", ""))
        try:
            self.podman("kube", "play", "--network", self.network, str(manifest))
        except RuntimeError as exc:
            self._patch(run, _waiting(container, "CreateContainerError", str(exc)))
            run.deleting.wait()
            self.api.remove_pod(run.namespace, run.name)
            return
        self.played.append(run.name)
        run.started = True
        if run.deleting.is_set():  # deleted while it started
            self.podman("pod", "stop", "-t", str(run.grace), run.name, check=False)
        cid = f"{run.name}-{container['name']}"
        run.ip = self._pod_ip(run.name)
        self._patch(
            run,
            {
                "phase": "Running",
                "podIP": run.ip,
                "podIPs": [{"ip": run.ip}],
                "conditions": [_condition("PodScheduled", True), _condition("Ready", False)],
                "containerStatuses": [
                    _status(container, cid, {"running": {"startedAt": now()}}, ready=False)
                ],
            },
        )
        probing = threading.Thread(
            target=self._probe, args=(run, container, cid), name=f"probe-{run.name}", daemon=True
        )
        probing.start()
        code = self._wait(cid)
        run.started = False
        probing.join(timeout=10)
        message = message_file.read_text(errors="replace") if message_file.exists() else ""
        record: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            record = json.loads(message.partition("\n")[0] or "{}")
        if code == 0:
            reason = "Completed"
        elif code == 137 and record.get("oom"):
            reason = "OOMKilled"  # what a CRI reads from the memory cgroup; Podman 4.3 does not
        else:
            reason = "Error"
        terminated = {"exitCode": code, "reason": reason, "finishedAt": now(), "message": message}
        status: dict[str, Any] = {
            "phase": "Succeeded" if code == 0 else "Failed",
            "conditions": [_condition("PodScheduled", True), _condition("Ready", False)],
            "containerStatuses": [_status(container, cid, {"terminated": terminated}, False)],
        }
        if run.evicted:
            status.update({"phase": "Failed", "reason": "Evicted", "message": run.evicted})
        self._patch(run, status)
        if run.deleting.is_set():
            self.api.remove_pod(run.namespace, run.name)

    def _has(self, image: str) -> bool:
        env = {**os.environ, "CONTAINERS_CONF": str(self.conf)}
        exists = subprocess.run(["podman", "image", "exists", image], env=env, capture_output=True)
        return exists.returncode == 0

    def _wait(self, cid: str) -> int:
        """The container's exit code, once it has exited (polled: `podman wait` can hang
        while a `podman pod stop` of the same pod runs)."""
        while True:
            out = self.podman(
                "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", cid, check=False
            ).split()
            if len(out) != 2:
                return -1  # gone
            if out[0] in ("exited", "stopped", "dead"):
                return int(out[1])
            time.sleep(0.3)

    def _pod_ip(self, name: str) -> str:
        pod = json.loads(self.podman("pod", "inspect", name))
        infra = pod[0]["InfraContainerID"] if isinstance(pod, list) else pod["InfraContainerID"]
        info = json.loads(self.podman("inspect", infra))
        networks = info[0]["NetworkSettings"]["Networks"]
        return str(next(iter(networks.values()))["IPAddress"])

    def _probe(self, run: PodRun, container: dict[str, Any], cid: str) -> None:
        """The readiness probe: gRPC health of the probe's service at the pod's IP."""
        probe = (container.get("readinessProbe") or {}).get("grpc")
        if not probe:
            return
        target = f"{run.ip}:{probe['port']}"
        period = 1.0
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while run.started:
                try:
                    answer = stub.Check(
                        health_pb2.HealthCheckRequest(service=probe.get("service", "")), timeout=1
                    )
                    ready = answer.status == health_pb2.HealthCheckResponse.SERVING
                except grpc.RpcError:
                    ready = False
                if ready != run.ready and run.started:
                    run.ready = ready
                    self._patch(
                        run,
                        {
                            "conditions": [
                                _condition("PodScheduled", True),
                                _condition("Ready", ready),
                            ],
                            "containerStatuses": [
                                _status(
                                    container,
                                    cid,
                                    {"running": {"startedAt": now()}},
                                    ready=ready,
                                )
                            ],
                        },
                    )
                time.sleep(period)

    def _materialize(self, pod: dict[str, Any], node_dir: Path) -> tuple[dict[str, Any], Path]:
        """The pod as Podman gets it: a kubelet's volumes as node directories, the run label."""
        played = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod["metadata"]["name"],
                "labels": {
                    **(pod["metadata"].get("labels") or {}),
                    self.run_label[0]: self.run_label[1],
                },
            },
            "spec": copy.deepcopy(pod["spec"]),
        }
        spec = played["spec"]
        volumes = []
        for volume in spec.get("volumes") or []:
            where = node_dir / "volumes" / volume["name"]
            where.mkdir(parents=True, exist_ok=True)
            if "secret" in volume:
                source = volume["secret"]
                secret = self.api.get("secrets", pod["metadata"]["namespace"], source["secretName"])
                items = source.get("items") or [{"key": k, "path": k} for k in secret["data"]]
                for item in items:
                    target = where / item["path"]
                    target.write_bytes(base64.b64decode(secret["data"][item["key"]]))
                    target.chmod(source.get("defaultMode", 0o644))
            volumes.append(
                {"name": volume["name"], "hostPath": {"path": str(where), "type": "Directory"}}
            )
        container = spec["containers"][0]
        message_file = node_dir / "termination-log"
        message_file.write_text("")
        message_file.chmod(0o666)
        volumes.append(
            {"name": "termination-log", "hostPath": {"path": str(message_file), "type": "File"}}
        )
        container.setdefault("volumeMounts", []).append(
            {
                "name": "termination-log",
                "mountPath": container.get("terminationMessagePath", "/dev/termination-log"),
            }
        )
        spec["volumes"] = volumes
        # Probes are this kubelet's job (Podman 4.3 ignores gRPC ones); container ports are
        # only informational to a kubelet, while Podman would publish them on the host.
        for key in ("readinessProbe", "livenessProbe", "terminationMessagePath",
                    "terminationMessagePolicy", "ports"):  # fmt: skip
            container.pop(key, None)
        return played, message_file


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    condition = {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": now()}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _status(
    container: dict[str, Any], cid: str, state: dict[str, Any], ready: bool
) -> dict[str, Any]:
    return {
        "name": container["name"],
        "image": container["image"],
        "imageID": "",
        "containerID": f"podman://{cid}",
        "ready": ready,
        "restartCount": 0,
        "state": state,
    }


def _waiting(container: dict[str, Any], reason: str, message: str) -> dict[str, Any]:
    state = {"waiting": {"reason": reason, "message": message} if message else {"reason": reason}}
    return {"containerStatuses": [_status(container, "", state, False)]}
