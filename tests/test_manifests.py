"""`reuse-runtime k8s manifests|workers`: valid Kubernetes YAML, least privilege, real flags."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from reuse_runtime.backends.kubernetes import API_CALLS
from reuse_runtime.cli import build_parser
from reuse_runtime.manifests import (
    Deployment,
    Workers,
    controller_manifests,
    role_rules,
    worker_manifests,
)
from tests.helpers import ROOT, run_cli, subprocess_env


def _cli(tmp_path: Path, *args: str, **env: str) -> str:
    result = run_cli(tmp_path, *args, timeout=60, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_k8s_manifests_piped_to_kubernetes_validate_strict_passes() -> None:
    # docs/kubernetes.md's check: `reuse-runtime k8s manifests | kubernetes-validate --strict -`
    validate = subprocess.run(
        f"{sys.executable} -m reuse_runtime k8s manifests --namespace ml --image "
        f"registry.example.com/reuse-runtime:0.1.0 --image-registry registry.example.com/rr "
        f"| {sys.executable} -m kubernetes_validate --strict -",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    for kind in ("namespace", "serviceaccount", "role", "rolebinding", "secret", "deployment"):
        assert f"passed for resource {kind}/" in validate.stdout + validate.stderr
    assert "service/reuse-runtime" in validate.stdout + validate.stderr


def test_the_yaml_has_every_object_and_the_token_from_the_environment(tmp_path: Path) -> None:
    docs = list(
        yaml.safe_load_all(_cli(tmp_path, "k8s", "manifests", REUSE_RUNTIME_TOKEN="tok-123"))
    )
    kinds = [d["kind"] for d in docs]
    assert kinds == [
        "Namespace", "ServiceAccount", "Role", "RoleBinding", "Secret", "PersistentVolumeClaim",
        "Deployment", "Service",
    ]  # fmt: skip
    secret = docs[4]
    assert secret["stringData"] == {"token": "tok-123"}
    # Without $REUSE_RUNTIME_TOKEN: a random one, different each time.
    first = list(yaml.safe_load_all(_cli(tmp_path, "k8s", "manifests", REUSE_RUNTIME_TOKEN="")))[4]
    second = list(yaml.safe_load_all(_cli(tmp_path, "k8s", "manifests", REUSE_RUNTIME_TOKEN="")))[4]
    assert len(first["stringData"]["token"]) >= 32
    assert first["stringData"]["token"] != second["stringData"]["token"]
    no_ns = list(yaml.safe_load_all(_cli(tmp_path, "k8s", "manifests", "--no-namespace")))
    assert "Namespace" not in [d["kind"] for d in no_ns]


def test_the_role_grants_exactly_the_backends_calls_on_pods() -> None:
    role = next(d for d in controller_manifests(Deployment()) if d["kind"] == "Role")
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["pods"],
            "verbs": ["create", "delete", "get", "list", "watch"],
        }
    ]
    assert role["rules"] == role_rules(API_CALLS)
    binding = next(d for d in controller_manifests(Deployment()) if d["kind"] == "RoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "reuse-runtime", "namespace": "reuse-runtime"}
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(doc["spec"]["template"]["spec"]["containers"][0])


def test_the_controller_deployment_runs_a_real_command_and_replicas_dial_its_service() -> None:
    docs = controller_manifests(
        Deployment(namespace="ml", image="reg.example/rr:1", image_registry="reg.example/envs")
    )
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    service = next(d for d in docs if d["kind"] == "Service")
    container = _container(deployment)
    assert container["command"] == ["reuse-runtime", "controller"]
    args = build_parser().parse_args(["controller", *container["args"]])
    assert args.backend == "kubernetes"
    assert args.host == "0.0.0.0" and args.port == 50050
    assert args.advertise_address == "reuse-runtime.ml.svc:50050"
    assert args.image_registry == "reg.example/envs"
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    # Its state dir (the runs store) is a volume of its own, kept across restarts.
    assert args.state_dir == "/var/lib/reuse-runtime/controller"
    claim = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "4Gi"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["state"] == {
        "name": "state",
        "persistentVolumeClaim": {"claimName": "reuse-runtime-state"},
    }
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert args.state_dir.startswith(mounts["state"] + "/")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "reuse-runtime"
    # The Service selects the controller's pods, on the port replicas dial.
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["port"] == 50050
    # The token comes from the Secret, as a file: never a literal.
    env = {e["name"]: e for e in container["env"]}
    assert env["REUSE_RUNTIME_TOKEN_FILE"]["value"] == "/var/run/secrets/reuse-runtime/token"
    assert "REUSE_RUNTIME_TOKEN" not in env
    assert env["REUSE_RUNTIME_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    for doc in docs:
        kubernetes_validate.validate(doc, "1.37.0", strict=True)


def test_k8s_workers_is_a_valid_deployment_of_workers_that_join(tmp_path: Path) -> None:
    text = _cli(
        tmp_path,
        "k8s", "workers", "reusable-env", "--image", "reg.example/env:r-1", "--replicas", "3",
        "--concurrency", "4", "--cpu", "500m", "--memory", "1Gi", "--namespace", "ml",
    )  # fmt: skip
    docs = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in docs] == ["Deployment"]
    for doc in docs:
        kubernetes_validate.validate(doc, "1.37.0", strict=True)
    container = _container(docs[0])
    assert docs[0]["spec"]["replicas"] == 3
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"memory": "1Gi"},
    }
    args = build_parser().parse_args(["worker", *container["args"]])
    assert args.controller == "reuse-runtime.ml.svc:50050"
    assert args.environment == "reusable-env"
    assert args.replica_id == "$(POD_NAME)"  # Kubernetes puts the pod's name there
    assert args.concurrency == 4 and args.reconnect == 300
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert "REUSE_RUNTIME_TOKEN" not in env
    # Several environments and names give valid objects too.
    for environment in ("a", "Reuse_Concurrency", "x" * 70):
        for doc in worker_manifests(Deployment(), Workers(environment, "img:1")):
            kubernetes_validate.validate(doc, "1.37.0", strict=True)


def test_bad_k8s_input_is_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reuse_runtime", "k8s", "manifests", "--name", "Bad_Name"],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
    )
    assert result.returncode == 2
    assert result.stderr.startswith("reuse-runtime k8s: error: controller name 'Bad_Name'")
    assert len(result.stderr.strip().splitlines()) == 1


def _docs_kubernetes_commands() -> list[str]:
    """The shell commands of docs/kubernetes.md that use a cluster (the blocks with kubectl),
    continuation lines joined."""
    page = (ROOT / "docs" / "kubernetes.md").read_text()
    blocks = [b for b in re.findall(r"```bash\n(.*?)```", page, flags=re.S) if "kubectl" in b]
    joined = "\n".join(blocks).replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def test_the_docs_k8s_commands_print_valid_yaml_and_name_what_the_page_uses(
    tmp_path: Path,
) -> None:
    """Acceptance 7, the part without a cluster: each `reuse-runtime k8s ...` line of
    docs/kubernetes.md's walk-through, run as written up to its pipe, prints objects that
    pass `kubernetes-validate --strict`, plain YAML (no anchors), with the names the page's
    kubectl lines use. The kubectl lines run in tests/kubernetes/test_real_cluster.py."""
    commands = _docs_kubernetes_commands()
    k8s = [c for c in commands if c.startswith("reuse-runtime k8s ")]
    assert [c.split()[2] for c in k8s] == ["manifests", "workers"], commands
    for command in k8s:
        line = command.split("|")[0].replace("$REGISTRY", "registry.example.com/team")
        text = _cli(tmp_path, *shlex.split(line)[1:])
        assert "&id" not in text and "*id" not in text  # kubectl reads anchors; people do not
        docs = list(yaml.safe_load_all(text))
        for doc in docs:
            kubernetes_validate.validate(doc, "1.37.0", strict=True)
        names = {(d["kind"], d["metadata"]["name"]) for d in docs}
        if "manifests" in command:
            assert "| kubectl apply -f -" in command
            assert {("Deployment", "reuse-runtime"), ("Service", "reuse-runtime"),
                    ("Secret", "reuse-runtime-token")} <= names  # fmt: skip
        else:
            autoscale = next(
                c for c in commands if c.startswith("kubectl -n reuse-runtime autoscale")
            )
            assert ("Deployment", autoscale.split()[5]) in names
            assert f"deployment {autoscale.split()[5]} " in text  # the header names it too
    # The kubectl lines name the objects `k8s manifests` makes.
    walk = " ".join(commands)
    for used in ("deployment/reuse-runtime", "svc/reuse-runtime", "secret reuse-runtime-token",
                 "reuse-runtime.io/controller=reuse-runtime"):  # fmt: skip
        assert used in walk
