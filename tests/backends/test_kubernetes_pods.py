"""The kubernetes backend's Pod specs and how it reads pods, without an API server.

Every Pod spec is validated offline against the real Kubernetes schemas
(``kubernetes-validate --strict``), for several Resources and Image forms.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest

from reuse_runtime.backends.base import ReplicaLaunch
from reuse_runtime.backends.kubernetes import (
    CONTROLLER_LABEL,
    ENV_KEY_ANNOTATION,
    ENVIRONMENT_LABEL,
    KubernetesConfig,
    exit_status,
    label_value,
    pending_reason,
    pod_manifest,
    pod_name,
)
from reuse_runtime.errors import PolicyError
from reuse_runtime.images.recipe import Image
from reuse_runtime.images.registry import recipe_tag, registry_reference
from reuse_runtime.model import EnvironmentSpec, PoolPolicy
from reuse_runtime.resources import Resources
from reuse_runtime.security import Security
from reuse_runtime.wire import services

POLICY = PoolPolicy(min_replicas=1, max_replicas=2, concurrency=4, scaledown_ttl=1, idle_ttl=1)
TOKEN = "s3cret-token-never-in-a-spec"
RESOURCES = [
    Resources(),
    Resources(cpu=1, memory="1Gi"),
    Resources(cpu="500m", memory="512Mi"),
    Resources(cpu=(0.5, 2), memory=("100Mi", "200Mi"), shm="auto"),
    Resources(cpu=2, memory=268435456, gpu="T4:1", disk="10Gi", shm="64Mi"),
    Resources(memory="500M", gpu=2),
]
IMAGES = [
    "",  # the default recipe: Image.from_debian_base()
    Image.from_debian_base().with_pip_packages("numpy<2").to_json(),
    Image.from_debian_base(registry="ghcr.io/team", name="models")
    .with_env_vars({"PYTHONPATH": "/opt/lib", "MODEL": "small"})
    .to_json(),
    "registry.example.com/prebuilt:1.2",  # an image name: used as it is
]


def _launch(resources: Resources, image: str, name: str = "My_Env") -> ReplicaLaunch:
    spec = EnvironmentSpec(
        name=name,
        policy=POLICY,
        image=image,
        resources=resources.to_wire(),
        env_vars=(("MODEL_DIR", "/models"),),
    )
    return ReplicaLaunch(
        replica_id=f"{name}-1-ab12",
        environment=spec,
        controller_address="reuse-runtime.team.svc:50050",
        security=Security(token=TOKEN),
        grace_period=12.5,
    )


def _pod(launch: ReplicaLaunch, **config: Any) -> dict[str, Any]:
    cfg = KubernetesConfig(image_registry="registry.example.com/rr", **config)
    image = registry_reference(launch.environment.image, cfg.image_registry)
    owner = {"apiVersion": "v1", "kind": "Pod", "name": "ctl-0", "uid": "1234-5678"}
    return pod_manifest(launch, cfg, namespace="team", image=image, owner=owner, instance="abcd")


@pytest.mark.parametrize("resources", RESOURCES, ids=lambda r: r.describe() or "none")
@pytest.mark.parametrize("image", IMAGES, ids=["default", "pip", "registry-env", "name"])
def test_pod_specs_validate_against_the_kubernetes_schemas(
    resources: Resources, image: str
) -> None:
    pod = _pod(_launch(resources, image))
    kubernetes_validate.validate(pod, "1.37.0", strict=True)
    # The token is mounted from a Secret: it is nowhere in the spec.
    assert TOKEN not in json.dumps(pod)


def test_the_pod_says_who_it_is_and_how_to_run() -> None:
    launch = _launch(Resources(cpu=(0.5, 2), memory=("100Mi", "200Mi"), shm="auto"), IMAGES[2])
    pod = _pod(launch)
    metadata, spec = pod["metadata"], pod["spec"]
    container = spec["containers"][0]
    assert metadata["name"] == "reuse-runtime-my-env-1-ab12"
    assert metadata["labels"][CONTROLLER_LABEL] == "reuse-runtime"
    assert metadata["labels"][ENVIRONMENT_LABEL] == "My_Env"
    assert metadata["annotations"][ENV_KEY_ANNOTATION] == launch.environment.key()
    assert metadata["ownerReferences"][0]["uid"] == "1234-5678"
    # The recipe's own registry wins over --image-registry; the tag is the recipe's digest.
    recipe = Image.from_json(IMAGES[2])
    assert container["image"] == f"ghcr.io/team/models:{recipe_tag(recipe)}"
    # Requests and limits from Resources; /dev/shm as large as the memory limit.
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "100Mi"},
        "limits": {"cpu": "2", "memory": "200Mi"},
    }
    shm = next(v for v in spec["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "200Mi"}
    # The token from its Secret, as a file; the worker reads $REUSE_RUNTIME_TOKEN_FILE.
    token = next(v for v in spec["volumes"] if v["name"] == "token")
    assert token["secret"]["secretName"] == "reuse-runtime-token"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["REUSE_RUNTIME_TOKEN_FILE"] == "/var/run/secrets/reuse-runtime/token"
    assert "REUSE_RUNTIME_TOKEN" not in env
    assert env["MODEL_DIR"] == "/models"
    assert env["REUSE_RUNTIME_STORE_SHARED"] == "0"  # so ctx().checkpoint refuses there
    # Baked-in code under the working directory is importable; the image's path is kept.
    assert env["PYTHONPATH"] == ".:/opt/lib"
    # Native gRPC readiness against the worker's health service.
    assert container["readinessProbe"]["grpc"] == {
        "port": 50051,
        "service": services.WORKER_SERVICE,
    }
    # The drain's grace (12.5 s, rounded up) plus time for the on-stop hook and last report.
    assert spec["terminationGracePeriodSeconds"] == 18
    args = container["args"]
    assert args[args.index("--grace-period") + 1] == "12.5"
    assert args[args.index("--controller") + 1] == "reuse-runtime.team.svc:50050"
    assert args[args.index("--host") + 1] == "0.0.0.0"
    assert args[args.index("--reconnect") + 1] == "300"
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False


def test_gpu_disk_and_plain_bytes() -> None:
    pod = _pod(_launch(Resources(cpu=2, memory=268435456, gpu="T4:1", disk="10Gi"), ""))
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["limits"] == {
        "cpu": "2",
        "memory": "268435456",
        "nvidia.com/gpu": "1",
        "ephemeral-storage": "10Gi",
    }
    assert resources["requests"]["ephemeral-storage"] == "10Gi"


def test_a_recipe_without_a_registry_is_a_clear_error() -> None:
    with pytest.raises(PolicyError, match="--image-registry"):
        registry_reference(Image.from_debian_base().to_json(), None)
    # An image name needs none.
    assert registry_reference("busybox:1", None) == "busybox:1"


def test_names_and_label_values_are_what_kubernetes_accepts() -> None:
    long_id = "A" * 80 + "-1-ab12"
    name = pod_name("reuse-runtime", long_id)
    assert len(name) <= 63 and name == name.lower() and name[0].isalnum() and name[-1].isalnum()
    assert pod_name("reuse-runtime", long_id) != pod_name("reuse-runtime", "A" * 81 + "-1-ab12")
    value = label_value("env with spaces/and:colons" * 5)
    assert len(value) <= 63 and value[0].isalnum() and value[-1].isalnum()
    with pytest.raises(PolicyError, match="DNS label"):
        KubernetesConfig(name="Not_A_Label")


def _terminated(**state: Any) -> dict[str, Any]:
    return {
        "metadata": {"annotations": {"reuse-runtime.io/memory-limit": "200Mi"}},
        "status": {
            "phase": "Failed",
            "containerStatuses": [{"name": "worker", "state": {"terminated": state}}],
        },
    }


def test_an_oom_killed_pod_is_out_of_memory_with_its_limit() -> None:
    status = exit_status(_terminated(exitCode=137, reason="OOMKilled"))
    assert status is not None and status.oom
    assert status.describe() == (
        "ran out of memory (OOMKilled): the OOM killer ended it at its memory limit of 200Mi"
    )
    # A runtime that misses it: the init's record in the termination message says so.
    record = json.dumps({"code": 137, "signal": 9, "oom": True, "memory_limit": 209715200})
    status = exit_status(_terminated(exitCode=137, reason="Error", message=record + "\nlast"))
    assert status is not None and status.oom


def test_evicted_signalled_and_exited_pods() -> None:
    evicted = {
        "status": {
            "phase": "Failed",
            "reason": "Evicted",
            "message": "The node was low on resource: memory.",
        }
    }
    status = exit_status(evicted)
    assert status is not None
    assert status.describe() == (
        "was evicted by Kubernetes (Evicted): The node was low on resource: memory."
    )
    killed = exit_status(_terminated(exitCode=137, reason="Error"), killed=False)
    assert killed is not None and "SIGKILL from outside" in killed.describe()
    done = exit_status(_terminated(exitCode=0, reason="Completed"))
    assert done is not None and done.describe() == "exited with code 0"
    assert exit_status({"status": {"phase": "Running"}}) is None


def test_why_a_pod_is_pending() -> None:
    pulling = {
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": "worker",
                    "state": {
                        "waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling"}
                    },
                }
            ],
        }
    }
    assert pending_reason(pulling) == ("ImagePullBackOff", "Back-off pulling")
    unscheduled = {
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient memory.",
                }
            ],
        }
    }
    assert pending_reason(unscheduled) == (
        "Unschedulable",
        "0/3 nodes are available: 3 Insufficient memory.",
    )


def test_a_task_in_its_own_pod_names_the_pool_its_client_registered(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recipe with a host path (with_source_folder) computed again inside the pod, where
    the folder is elsewhere, would name another pool (and an image nobody built): the pod
    carries the recipe it was started from, and its own environment's spec uses it."""
    import reuse_runtime as flyte

    def environment(folder: Any) -> Any:
        return flyte.TaskEnvironment(
            name="own", image=flyte.Image.from_debian_base().with_source_folder(folder)
        )

    host, pod_side = tmp_path / "host" / "code", tmp_path / "pod" / "code"
    for folder in (host, pod_side):
        folder.mkdir(parents=True)
    client = environment(host).spec()
    assert environment(pod_side).spec().key() != client.key()  # the trap
    launch = _launch(Resources(), client.image, name="own")
    env = {e["name"]: e["value"] for e in _pod(launch)["spec"]["containers"][0]["env"]}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert environment(pod_side).spec().key() == client.key()
    # Another environment of the same name elsewhere is not touched; nor is an image name.
    other = flyte.TaskEnvironment(name="other", image=flyte.Image.from_debian_base()
                                  .with_source_folder(pod_side))  # fmt: skip
    assert other.spec().image != client.image
    named = _pod(_launch(Resources(), "registry.example.com/prebuilt:1.2"))
    names = {e["name"] for e in named["spec"]["containers"][0]["env"]}
    assert "REUSE_RUNTIME_OWN_RECIPE" not in names


def test_a_pod_that_fetches_its_code_unpacks_it_into_an_empty_dir_of_its_own() -> None:
    from dataclasses import replace

    launch = _launch(Resources(shm="64Mi"), IMAGES[0])
    launch = replace(
        launch,
        environment=replace(launch.environment, code_bundle="a" * 64),
        fetch_code=True,
    )
    pod = _pod(launch)
    kubernetes_validate.validate(pod, "1.37.0", strict=True)
    container = pod["spec"]["containers"][0]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["code"] == {"name": "code", "emptyDir": {}}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["code"] == "/var/lib/reuse-runtime/code" and "dshm" in mounts
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["REUSE_RUNTIME_CODE_DIR"] == "/var/lib/reuse-runtime/code"
    # Without a bundle to fetch there is no such volume.
    assert "code" not in {v["name"] for v in _pod(_launch(Resources(), ""))["spec"]["volumes"]}
