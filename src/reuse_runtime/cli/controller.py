"""``reuse-runtime controller``: a standalone controller (what ``init(endpoint=...)`` dials)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from reuse_runtime import gctune, malloctune
from reuse_runtime.cli.common import (
    DEFAULT_CONTROLLER_PORT,
    DEFAULT_UI_PORT,
    PORT_ENV,
    UI_PORT_ENV,
    Commands,
    add_command,
    add_metrics_flags,
    add_security_flags,
    complete_choices,
    default_port,
    forget_made_token,
    install_signal_handlers,
    record_made_token,
    security_from,
    ui_port,
)
from reuse_runtime.errors import ReuseRuntimeError


def add_parser(commands: Commands) -> None:
    from reuse_runtime.controller.server import DEFAULT_MAX_BACKLOG

    p = add_command(commands, "controller", "run a standalone controller (init(endpoint=...))")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"port to bind (default {DEFAULT_CONTROLLER_PORT}, or ${PORT_ENV})",
    )
    p.add_argument(
        "--max-backlog",
        type=int,
        default=DEFAULT_MAX_BACKLOG,
        help=f"tasks that may wait per environment (default {DEFAULT_MAX_BACKLOG})",
    )
    p.add_argument(
        "--replica-loss-budget",
        type=int,
        default=2,
        help="retries of a task whose replica died, apart from its own retries (default 2)",
    )
    p.add_argument(
        "--cancel-grace",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds a cancelled task gets before its replica is replaced (default 5)",
    )
    add_metrics_flags(p)
    ui = p.add_argument_group("web UI")
    ui.add_argument(
        "--ui-port",
        type=int,
        default=None,
        help=f"serve the web UI here, at the --host address (default {DEFAULT_UI_PORT}, or "
        f"${UI_PORT_ENV}; when that one is taken, a free port; 0 picks one). It takes the "
        f"same token as the gRPC API",
    )
    ui.add_argument("--no-ui", action="store_true", help="serve no web UI")
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where the controller keeps its runs (runs.sqlite): one controller per state dir; "
        "a controller restarted on it finishes the runs the last one left "
        "(default: $REUSE_RUNTIME_HOME/controller)",
    )
    p.add_argument(
        "--report-deadline",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds a replica may stop reporting before it is killed and its tasks retried "
        "(default: 5 heartbeats, 5 s)",
    )
    p.add_argument(
        "--drain-grace",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM, seconds running tasks get to finish; the rest go back to their "
        "clients, which send them to the next controller (default 30)",
    )
    p.add_argument(
        "--backend",
        help="where replicas run: local (subprocesses), container, or kubernetes "
        "(default: $REUSE_RUNTIME_BACKEND, else local)",
    ).completer = complete_choices("local", "container", "kubernetes")  # type: ignore[attr-defined]
    p.add_argument(
        "--advertise-address",
        metavar="HOST[:PORT]",
        help="the address replicas dial when it is not the bind address (default: the bind "
        "address; the kubernetes backend needs it: the Service, NAME.NAMESPACE.svc:PORT)",
    )
    p.add_argument(
        "--code-delivery",
        choices=("auto", "fetch"),
        help="how code reaches replicas: auto (those that see this machine's files import "
        "them, pods and remote containers fetch the client's code bundle) or fetch (every "
        "replica fetches it: clients on other machines) (default: $REUSE_RUNTIME_CODE_DELIVERY, "
        "else auto)",
    )
    p.add_argument(
        "--network",
        help="container network: bridge, host, or a network's name "
        "(default: $REUSE_RUNTIME_CONTAINER_NETWORK, else bridge)",
    )
    k8s = p.add_argument_group("kubernetes backend")
    k8s.add_argument(
        "--k8s-name",
        help="this controller's name: its pods' label and their name prefix, and its token "
        "Secret's (default: $REUSE_RUNTIME_K8S_NAME, else reuse-runtime)",
    )
    k8s.add_argument(
        "--k8s-namespace",
        help="where pods run (default: $REUSE_RUNTIME_K8S_NAMESPACE, else the service "
        "account's namespace in a cluster, else the kubeconfig context's)",
    )
    k8s.add_argument(
        "--image-registry",
        help="registry that environments' images are pulled from, as pushed by `image build "
        "--registry R --push` (default: $REUSE_RUNTIME_IMAGE_REGISTRY)",
    )
    k8s.add_argument(
        "--token-secret",
        help="the Secret (key 'token') pods mount the token from (default: NAME-token)",
    )
    k8s.add_argument(
        "--image-pull-policy",
        choices=("Always", "IfNotPresent", "Never"),
        help="of replica pods (default IfNotPresent)",
    )
    k8s.add_argument(
        "--pod-start-deadline",
        type=float,
        metavar="SECONDS",
        help="seconds a pod may stay Pending (unschedulable, image not pulled) before it is "
        "deleted and reported (default 300)",
    )
    k8s.add_argument(
        "--adopt-window",
        type=float,
        metavar="SECONDS",
        help="seconds a restarted controller holds its predecessor's pods for their "
        "environments to come back (default 300)",
    )
    add_security_flags(p)
    p.set_defaults(main=_controller_main)


async def _controller_main(args: argparse.Namespace) -> int:

    from reuse_runtime.backends import backend_name, controller_placement, open_backend
    from reuse_runtime.controller.server import ControllerConfig, ControllerServer
    from reuse_runtime.errors import AuthConfigError
    from reuse_runtime.store.settings import recording_wanted

    gctune.tune(freeze=True)
    malloctune.tune()
    security = security_from(args)
    directory = _state_dir(args.state_dir)
    record = recording_wanted()
    name = backend_name(args.backend)
    if name != "local" and not security.authenticated:
        raise AuthConfigError(
            f"the {name} backend needs auth: replicas reach the controller over a network. "
            f"Set a shared token (--token or $REUSE_RUNTIME_TOKEN) or mTLS"
        )
    opened = await open_backend(
        name, network=args.network, kubernetes=_kubernetes_config(args, name), security=security
    )
    try:
        host, advertise = controller_placement(opened, args.host, args.advertise_address, security)
        server = ControllerServer(
            ControllerConfig(
                host=host,
                port=args.port if args.port is not None else default_port(),
                max_backlog=args.max_backlog,
                replica_loss_budget=args.replica_loss_budget,
                cancel_grace=args.cancel_grace,
                report_deadline=args.report_deadline,
                drain_grace=args.drain_grace,
                security=security,
                advertise_address=advertise,
                metrics_port=args.metrics_port,
                metrics_host=args.metrics_host,
                state_dir=directory,
                record_runs=record,
                **_ui_options(args),
                **({"code_delivery": args.code_delivery} if args.code_delivery else {}),
            ),
            opened.backend,
        )
    except BaseException:
        await opened.backend.close()
        raise
    install_signal_handlers(lambda name: server.request_shutdown(f"received {name}"))
    try:
        await server.start()
        record_made_token("controller", server)
        if server.store_notice:
            print(f"reuse-runtime controller: {server.store_notice}", file=sys.stderr, flush=True)
        print(f"listening on {server.address}", flush=True)
        if server.metrics_url:
            print(f"metrics on {server.metrics_url}", flush=True)
        if await server.ui_ready() and server.ui is not None:
            print(f"web UI on {server.ui_url}", flush=True)
            if not server.security.token:  # mTLS alone: the UI made a token nobody knows
                print(f"log in to the web UI once with {server.ui.login_link()}", flush=True)
        await server.wait_for_shutdown_request()
    finally:
        await server.close()
        forget_made_token(server)
    return 0


def _ui_options(args: argparse.Namespace) -> dict[str, Any]:
    """The web UI's settings: on by default, at DEFAULT_UI_PORT unless told otherwise."""
    if args.no_ui:
        return {"ui_port": None}
    port, fallback = ui_port(args.ui_port)
    return {"ui_port": port, "ui_port_fallback": fallback}


def _state_dir(given: str | None) -> Path:
    """``--state-dir``, or the default: ``controller`` under the user's state directory
    (apart from the runs store the user's embedded controllers share)."""
    from reuse_runtime.paths import state_dir

    return Path(given).expanduser() if given else state_dir() / "controller"


def _kubernetes_config(args: argparse.Namespace, backend: str) -> Any:
    """The kubernetes backend's settings from the controller's flags (None for others)."""
    flags = {
        "name": args.k8s_name,
        "namespace": args.k8s_namespace,
        "image_registry": args.image_registry,
        "token_secret": args.token_secret,
        "image_pull_policy": args.image_pull_policy,
        "start_deadline": args.pod_start_deadline,
        "adopt_window": args.adopt_window,
    }
    if backend != "kubernetes":
        given = sorted(k for k, v in flags.items() if v is not None)
        if given:
            raise ReuseRuntimeError(
                f"--{given[0].replace('_', '-')} applies to the kubernetes backend only"
            )
        return None
    from reuse_runtime.backends.kubernetes import KubernetesConfig

    return KubernetesConfig.from_env(**flags)
