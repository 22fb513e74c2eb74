"""``reuse-runtime k8s manifests|workers``: the YAML that runs a controller, or workers, in
Kubernetes; printed for ``kubectl apply -f -``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from reuse_runtime.cli.common import Commands, add_command


def add_parser(commands: Commands) -> None:
    from reuse_runtime.manifests import CONTROLLER_PORT

    p = add_command(
        commands, "k8s", "print Kubernetes manifests (YAML) for a controller or workers"
    )
    actions = p.add_subparsers(dest="action", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--namespace",
            default="reuse-runtime",
            help="the namespace of the controller and its pods (default reuse-runtime)",
        )
        q.add_argument(
            "--name", default="reuse-runtime", help="the controller's name (default reuse-runtime)"
        )
        q.add_argument(
            "--port", type=int, default=CONTROLLER_PORT,
            help=f"the controller's port (default {CONTROLLER_PORT})",
        )  # fmt: skip

    manifests = add_command(
        actions,
        "manifests",
        "Namespace, ServiceAccount, Role, RoleBinding, token Secret, controller Deployment "
        "and Service (the token: $REUSE_RUNTIME_TOKEN, else a random one)",
    )
    common(manifests)
    manifests.add_argument(
        "--image",
        dest="controller_image",
        help="the controller's image: the project's Dockerfile, pushed (default "
        "reuse-runtime:VERSION)",
    )
    manifests.add_argument(
        "--image-registry",
        help="where the controller's pods pull environments' images from (default: none, "
        "images the nodes already have)",
    )
    manifests.add_argument(
        "--no-namespace", action="store_true", help="leave the Namespace out (it exists)"
    )
    manifests.add_argument(
        "--state-size",
        default="4Gi",
        help="size of the controller's state volume, where its runs are kept (default 4Gi)",
    )
    manifests.add_argument(
        "--storage-class",
        default="",
        help="the state volume's StorageClass (default: the cluster's default)",
    )
    manifests.set_defaults(sync_main=_k8s_manifests)
    workers = add_command(
        actions,
        "workers",
        "a Deployment of workers that join an environment of the controller (for an "
        "HPA or KEDA to scale)",
    )
    common(workers)
    workers.add_argument("environment", help="the environment they join (its name or key)")
    workers.add_argument("--image", required=True, help="an image with reuse-runtime and your code")
    workers.add_argument(
        "--replicas", type=int, default=1, help="workers the Deployment starts (default 1)"
    )
    workers.add_argument(
        "--concurrency", type=int, default=1, help="tasks each worker runs at once (default 1)"
    )
    workers.add_argument(
        "--cpu", help="CPU request, e.g. 500m (an HPA on CPU needs it; default: none)"
    )
    workers.add_argument("--memory", help="memory request and limit, e.g. 1Gi (default: none)")
    workers.add_argument(
        "--grace-period",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="seconds a stopped worker's in-flight tasks get to finish (default 30)",
    )
    workers.set_defaults(sync_main=_k8s_workers)


def _k8s_deployment(args: argparse.Namespace) -> Any:
    from reuse_runtime.manifests import Deployment

    return Deployment(
        namespace=args.namespace,
        name=args.name,
        image=getattr(args, "controller_image", "") or "",
        image_registry=getattr(args, "image_registry", "") or "",
        port=args.port,
        token=os.environ.get("REUSE_RUNTIME_TOKEN", ""),
        create_namespace=not getattr(args, "no_namespace", False),
        state_size=getattr(args, "state_size", "4Gi"),
        storage_class=getattr(args, "storage_class", ""),
    )


def _k8s_manifests(args: argparse.Namespace) -> int:
    from reuse_runtime.manifests import controller_manifests, to_yaml

    deployment = _k8s_deployment(args)
    source = "$REUSE_RUNTIME_TOKEN" if os.environ.get("REUSE_RUNTIME_TOKEN") else "a random token"
    header = (
        f"reuse-runtime controller {deployment.name!r} in namespace {deployment.namespace!r}.\n"
        f"Apply: reuse-runtime k8s manifests ... | kubectl apply -f -\n"
        f"The Secret {deployment.secret_name} holds {source}; read it back with\n"
        f"  kubectl -n {deployment.namespace} get secret {deployment.secret_name} "
        f"-o jsonpath='{{.data.token}}' | base64 -d\n"
        f"Clients in the cluster dial {deployment.service_address}; from outside, e.g.\n"
        f"  kubectl -n {deployment.namespace} port-forward svc/{deployment.name} "
        f"{deployment.port}:{deployment.port}"
    )
    sys.stdout.write(to_yaml(controller_manifests(deployment), header))
    return 0


def _k8s_workers(args: argparse.Namespace) -> int:
    from reuse_runtime.manifests import Workers, to_yaml, worker_manifests

    workers = Workers(
        environment=args.environment,
        image=args.image,
        replicas=args.replicas,
        concurrency=args.concurrency,
        cpu=args.cpu or "",
        memory=args.memory or "",
        grace_period=args.grace_period,
    )
    deployment = _k8s_deployment(args)
    docs = worker_manifests(deployment, workers)
    header = (
        f"Workers that join environment {workers.environment!r} of controller "
        f"{deployment.service_address}.\n"
        f"Kubernetes owns their count: e.g. kubectl -n {deployment.namespace} autoscale "
        f"deployment {docs[0]['metadata']['name']} --cpu-percent=70 --min=1 --max=10"
    )
    sys.stdout.write(to_yaml(docs, header))
    return 0
