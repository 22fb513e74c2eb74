"""The `reuse-runtime` command. The only place that installs signal handlers.

Usage::

    reuse-runtime run FILE.py FUNCTION [key=value ...]   run a task on the embedded pool
    reuse-runtime controller [--port P]                  a standalone controller
    reuse-runtime status [--endpoint ADDR] [--watch]     environments and replicas, live
    reuse-runtime worker [--concurrency N] ...           one replica (the container entrypoint)
    reuse-runtime health HOST:PORT                       is a worker or controller serving?
    reuse-runtime engine start|stop                      Podman's Docker-compatible service
    reuse-runtime image base|build ...                   the Debian base; environments' images
    reuse-runtime k8s manifests|workers ...              YAML to run a controller in Kubernetes
    reuse-runtime logs [RUN] [--task NAME] [--follow]    a run's log
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from reuse_runtime import gctune, logs, malloctune
from reuse_runtime.envvars import env_number
from reuse_runtime.errors import ReuseRuntimeError, ScriptFailedError
from reuse_runtime.model import CodeBundle
from reuse_runtime.policy import parse_bytes
from reuse_runtime.security import Security

#: Where ``reuse-runtime controller`` listens unless told otherwise; ``status`` looks here.
#: ``$REUSE_RUNTIME_CONTROLLER_PORT`` changes it for both.
PORT_ENV = "REUSE_RUNTIME_CONTROLLER_PORT"
DEFAULT_CONTROLLER_PORT = 50050


def _default_port() -> int:
    return env_number(
        PORT_ENV,
        DEFAULT_CONTROLLER_PORT,
        int,
        valid=lambda port: 0 < port <= 65535,
        needs="a port number",
        error=ReuseRuntimeError,
    )


def _run(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return int(uvloop.run(main))


def _install_signal_handlers(on_signal: Callable[[str], None]) -> None:
    """First SIGTERM/SIGINT asks for a graceful shutdown; a second one exits at once."""
    loop = asyncio.get_running_loop()
    seen: list[int] = []

    def handle(signum: int) -> None:
        if seen:
            os._exit(128 + signum)
        seen.append(signum)
        on_signal(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, handle, signum)


def _add_security_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", help="shared token (default: $REUSE_RUNTIME_TOKEN)")
    parser.add_argument("--tls-cert", help="PEM certificate (default: $REUSE_RUNTIME_TLS_CERT)")
    parser.add_argument("--tls-key", help="PEM private key (default: $REUSE_RUNTIME_TLS_KEY)")
    parser.add_argument(
        "--tls-ca", help="PEM CA that client certificates must chain to: enables mTLS"
    )


def _add_metrics_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics at http://HOST:PORT/metrics (0 picks a port; default off)",
    )
    parser.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address the metrics endpoint binds (default 127.0.0.1); it is read-only "
        "and unauthenticated",
    )


def _security(args: argparse.Namespace) -> Security:
    return Security.from_env(args.token, args.tls_cert, args.tls_key, args.tls_ca)


# ---------------------------------------------------------------- worker


def _max_payload(text: str) -> int:
    from reuse_runtime.wire.batching import MAX_PAYLOAD_BYTES

    size = parse_bytes(text, field_name="--max-payload")
    if size > MAX_PAYLOAD_BYTES:
        raise ReuseRuntimeError(
            f"--max-payload can be at most {MAX_PAYLOAD_BYTES // 2**20}Mi (one task or result "
            f"travels in one gRPC message), got {text}"
        )
    return size


async def _worker_main(args: argparse.Namespace) -> int:
    from reuse_runtime.worker.server import WorkerConfig, WorkerServer, default_replica_id, serve

    gctune.tune(freeze=True)  # after the imports: a full collection skips the runtime's own
    malloctune.tune()
    config = WorkerConfig(
        host=args.host,
        port=args.port,
        concurrency=args.concurrency,
        replica_id=args.replica_id or default_replica_id(),
        controller=args.controller,
        environment=args.environment,
        grace_period=args.grace_period,
        heartbeat=args.heartbeat,
        reconnect=args.reconnect,
        max_payload=_max_payload(args.max_payload),
        security=_security(args),
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
    )
    server = WorkerServer(config)
    _install_signal_handlers(lambda name: server.request_shutdown(f"received {name}"))
    try:
        await serve(server, on_ready=lambda: _record_made_token("worker", server))
    finally:
        _forget_made_token(server)
    if server.attach_error:
        print(f"reuse-runtime worker: error: {server.attach_error}", file=sys.stderr)
        return 1
    return 0


def _record_made_token(kind: str, server: Any) -> None:
    """A server started without credentials made up a token: keep it for this user's clients."""
    if not server.made_token:
        return
    from reuse_runtime.tokens import record_server

    path = record_server(kind, server.address, server.port, server.security.token)
    print(
        f"reuse-runtime {kind}: no token configured, so this {kind} made one; it is in {path} "
        f"(mode 0600), where clients of this user on this machine find it. Others need "
        f"REUSE_RUNTIME_TOKEN set to it.",
        file=sys.stderr,
        flush=True,
    )


def _forget_made_token(server: Any) -> None:
    if server.made_token and server.port:
        from reuse_runtime.tokens import forget_server

        forget_server(server.port)


def _worker_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("worker", help="run one replica: a long-lived task server")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 picks one (default)")
    p.add_argument("--concurrency", type=int, default=1, help="tasks run at once (default 1)")
    p.add_argument("--controller", help="controller address to attach to (host:port)")
    p.add_argument(
        "--environment",
        help="with --controller: join this registered environment (its name or key) as a "
        "worker the controller did not start; it is routed to, never stopped",
    )
    p.add_argument("--replica-id", help="this replica's id (default HOSTNAME-PID)")
    p.add_argument(
        "--grace-period",
        type=float,
        default=30.0,
        help="seconds in-flight tasks get to finish on SIGTERM (default 30)",
    )
    p.add_argument(
        "--heartbeat",
        type=float,
        default=1.0,
        help="seconds between reports to the controller, at most 5 (default 1; the "
        "controller declares a replica lost after its --report-deadline, 5 s by default)",
    )
    p.add_argument(
        "--max-payload",
        default="64Mi",
        help="largest task arguments or result, e.g. 64Mi (default)",
    )
    p.add_argument(
        "--reconnect",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="after losing the controller, keep this replica warm and dial it again for up to "
        "SECONDS, so a restarted controller takes it back (default 0: exit at once)",
    )
    _add_metrics_flags(p)
    _add_security_flags(p)
    p.set_defaults(main=_worker_main)


# ---------------------------------------------------------------- controller


async def _controller_main(args: argparse.Namespace) -> int:
    from reuse_runtime.backends import backend_name, controller_placement, open_backend
    from reuse_runtime.controller.server import ControllerConfig, ControllerServer
    from reuse_runtime.errors import AuthConfigError

    gctune.tune(freeze=True)
    malloctune.tune()
    security = _security(args)
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
                port=args.port if args.port is not None else _default_port(),
                max_backlog=args.max_backlog,
                replica_loss_budget=args.replica_loss_budget,
                cancel_grace=args.cancel_grace,
                report_deadline=args.report_deadline,
                drain_grace=args.drain_grace,
                security=security,
                advertise_address=advertise,
                metrics_port=args.metrics_port,
                metrics_host=args.metrics_host,
            ),
            opened.backend,
        )
    except BaseException:
        await opened.backend.close()
        raise
    _install_signal_handlers(lambda name: server.request_shutdown(f"received {name}"))
    try:
        await server.start()
        _record_made_token("controller", server)
        print(f"listening on {server.address}", flush=True)
        if server.metrics_url:
            print(f"metrics on {server.metrics_url}", flush=True)
        await server.wait_for_shutdown_request()
    finally:
        await server.close()
        _forget_made_token(server)
    return 0


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


def _controller_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from reuse_runtime.controller.server import DEFAULT_MAX_BACKLOG

    p = sub.add_parser("controller", help="run a standalone controller (init(endpoint=...))")
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
        help="seconds a cancelled task gets before its replica is replaced (default 5)",
    )
    _add_metrics_flags(p)
    p.add_argument(
        "--report-deadline",
        type=float,
        default=None,
        help="seconds a replica may stop reporting before it is killed and its tasks retried "
        "(default: 5 heartbeats, 5 s)",
    )
    p.add_argument(
        "--drain-grace",
        type=float,
        default=30.0,
        help="on SIGTERM, seconds running tasks get to finish; the rest go back to their "
        "clients, which send them to the next controller (default 30)",
    )
    p.add_argument(
        "--backend",
        help="where replicas run: local (subprocesses, the default), container, or kubernetes "
        "(default: $REUSE_RUNTIME_BACKEND)",
    )
    p.add_argument(
        "--advertise-address",
        help="the address replicas dial (HOST or HOST:PORT) when it is not the bind address",
    )
    p.add_argument(
        "--network",
        help="container network: bridge (default), host, or a network's name "
        "(default: $REUSE_RUNTIME_CONTAINER_NETWORK)",
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
        help="seconds a pod may stay Pending (unschedulable, image not pulled) before it is "
        "deleted and reported (default 300)",
    )
    k8s.add_argument(
        "--adopt-window",
        type=float,
        help="seconds a restarted controller holds its predecessor's pods for their "
        "environments to come back (default 300)",
    )
    _add_security_flags(p)
    p.set_defaults(main=_controller_main)


# ---------------------------------------------------------------- status


async def _status_main(args: argparse.Namespace) -> int:
    from reuse_runtime.errors import ControllerUnavailableError
    from reuse_runtime.sdk.runtime import ENDPOINT_ENV, embedded_controller
    from reuse_runtime.wire.clients import ControllerClient

    security = _security(args)
    endpoint = args.endpoint or os.environ.get(ENDPOINT_ENV)
    if not endpoint:
        embedded = embedded_controller()
        if embedded is not None:
            endpoint = embedded.address
            if not security.authenticated and embedded.token:
                security = dataclasses.replace(security, token=embedded.token)
    if not endpoint:
        # No run's embedded controller: a standalone one on the default port, if any.
        endpoint = f"127.0.0.1:{_default_port()}"
        if not await _answers(endpoint, security):
            raise ControllerUnavailableError(
                f"no controller to ask: none was started by a run here, and none listens on "
                f"{endpoint}; pass --endpoint HOST:PORT or set $REUSE_RUNTIME_ENDPOINT"
            )
    from reuse_runtime.sdk.config import check_endpoint

    check_endpoint(endpoint, "--endpoint")
    async with ControllerClient(endpoint, security) as client:
        await client.wait_ready(timeout=5)
        if args.watch:
            from reuse_runtime.status_view import watch

            if args.json:
                raise ValueError("--watch shows tables; for JSON, call status --json repeatedly")
            if args.interval <= 0:
                raise ValueError(f"--interval must be above 0 seconds, got {args.interval:g}")
            stop = asyncio.Event()
            _install_signal_handlers(lambda name: stop.set())  # Ctrl-C quits, like q
            await watch(client.status, interval=args.interval, stop=stop)
            return 0
        status = await client.status()
    if args.json:
        print(json.dumps(dataclasses.asdict(status), indent=2))
    else:
        from reuse_runtime.status_view import print_status

        print_status(status)
    return 0


async def _answers(endpoint: str, security: Security) -> bool:
    from reuse_runtime.errors import ControllerUnavailableError
    from reuse_runtime.wire.clients import ControllerClient

    try:
        async with ControllerClient(endpoint, security) as client:
            await client.wait_ready(timeout=1)
    except ControllerUnavailableError:
        return False
    return True


def _status_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="show environments and replicas of a controller")
    p.add_argument(
        "--endpoint",
        help="controller address (default: $REUSE_RUNTIME_ENDPOINT, "
        "else the most recent embedded controller)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--watch",
        action="store_true",
        help="a live view, refreshed in place (q or Ctrl-C quits); printed again and again "
        "when stdout is not a terminal",
    )
    p.add_argument(
        "--interval", type=float, default=1.0, help="seconds between refreshes (default 1)"
    )
    _add_security_flags(p)
    p.set_defaults(main=_status_main)


# ---------------------------------------------------------------- logs


def _logs_main(args: argparse.Namespace) -> int:
    from reuse_runtime import runlog
    from reuse_runtime.paths import state_dir

    path = runlog.find_run_log(state_dir() / "runs", args.run)
    lines = runlog.follow(path, follow=args.follow)
    shown = runlog.show(lines, sys.stdout, task=args.task, colour=sys.stdout.isatty())
    if args.task is not None and not shown:
        print(f"(no output lines from a task named {args.task!r} in {path})", file=sys.stderr)
    return 0


def _logs_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "logs", help="show a run's log: every task's output, with run, task, parent and replica"
    )
    p.add_argument(
        "run", nargs="?", help="the run's name (or its log file, or its URL); default: the latest"
    )
    p.add_argument("--task", help="only the lines of tasks with this name")
    p.add_argument(
        "-f", "--follow", action="store_true", help="keep showing new lines until the run ends"
    )
    p.set_defaults(sync_main=_logs_main)


# ---------------------------------------------------------------- engine


def _engine_start(args: argparse.Namespace) -> int:
    from reuse_runtime import engine
    from reuse_runtime.errors import EngineUnavailableError
    from reuse_runtime.paths import state_dir

    socket = Path(args.socket) if args.socket else engine.default_podman_socket()
    address = f"unix://{socket}"
    try:
        engine.connect(address, timeout=5.0).close()
    except EngineUnavailableError:
        pass
    else:
        print(f"an engine already answers at {address}")
        return 0
    home = state_dir()
    process = engine.start_podman_service(
        socket, conf=home / "containers.conf", log=home / "podman-service.log"
    )
    print(f"podman service (pid {process.pid}) ready at {address}; log: {home}/podman-service.log")
    if address not in engine.candidate_hosts():
        print(f"point clients at it: export {engine.DOCKER_HOST_ENV}={address}")
    return 0


def _engine_stop(args: argparse.Namespace) -> int:
    from reuse_runtime.paths import state_dir

    pid_file = state_dir() / "podman-service.pid"
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        raise ReuseRuntimeError(f"no podman service of ours is recorded ({pid_file})") from None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"podman service (pid {pid}) is not running")
    else:
        print(f"stopped podman service (pid {pid})")
    pid_file.unlink(missing_ok=True)
    return 0


def _engine_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("engine", help="start or stop Podman's Docker-compatible service")
    actions = p.add_subparsers(dest="action", required=True)
    start = actions.add_parser(
        "start",
        help="run `podman system service` in the background, with ulimits this host can grant",
    )
    start.add_argument(
        "--socket",
        help="socket path (default: Podman's: /run/podman/podman.sock for root, "
        "$XDG_RUNTIME_DIR/podman/podman.sock otherwise)",
    )
    start.set_defaults(sync_main=_engine_start)
    stop = actions.add_parser("stop", help="stop the service `engine start` started")
    stop.set_defaults(sync_main=_engine_stop)


# ---------------------------------------------------------------- image


def _image_base(args: argparse.Namespace) -> int:
    import docker.errors

    from reuse_runtime import engine
    from reuse_runtime.backends.container import ContainerConfig
    from reuse_runtime.images.builder import debian_base
    from reuse_runtime.images.debian import make_debian_base

    tag = args.tag or debian_base()
    client = engine.connect()
    if not args.rebuild:
        try:
            image = client.images.get(tag)
        except docker.errors.ImageNotFound:
            pass
        else:
            python = (image.labels or {}).get("io.reuse-runtime.python", "?")
            print(f"{tag} is already in the engine (Python {python}); --rebuild makes it again")
            return 0
    labels = dict(ContainerConfig.from_env().labels)
    python = make_debian_base(client, tag, suite=args.suite, mirror=args.mirror, labels=labels)
    print(f"{tag}: Debian {args.suite} with Python {python}")
    return 0


def _image_build(args: argparse.Namespace) -> int:
    import time

    from reuse_runtime import engine
    from reuse_runtime.backends.container import ContainerConfig
    from reuse_runtime.images.builder import ImageBuilder
    from reuse_runtime.images.recipe import parse_image_field
    from reuse_runtime.paths import state_dir
    from reuse_runtime.sdk.environment import TaskEnvironment, TaskTemplate

    path = Path(args.file)
    if not path.is_file():
        raise ReuseRuntimeError(f"no such file: {path}")
    module = _load_script(path)
    environments: dict[str, TaskEnvironment] = {}
    for value in vars(module).values():
        env = value.env if isinstance(value, TaskTemplate) else value
        if isinstance(env, TaskEnvironment):
            environments.setdefault(env.name, env)
    if not environments:
        raise ReuseRuntimeError(f"{path} defines no TaskEnvironment")
    config = ContainerConfig.from_env()
    client = engine.connect()
    builder = ImageBuilder(client, cache_dir=state_dir() / "build", labels=dict(config.labels))

    def progress(name: str) -> Callable[[str], None]:
        return lambda line: print(f"[{name}] {line}", flush=True)

    if args.push and not args.registry:
        raise ReuseRuntimeError("--push needs --registry: where to push the images")
    for name, env in environments.items():
        started = time.monotonic()
        image_field = env.spec().image
        image = parse_image_field(image_field)
        built = builder.ensure(image, progress=progress(name))
        for notice in built.notices if not built.built else ():
            print(f"[{name}] notice: {notice}")
        state = "built" if built.built else "up to date"
        took = time.monotonic() - started
        print(f"{name}: {built.tag} ({state}, {took:.1f} s)", flush=True)
        if args.registry:
            from reuse_runtime.images.registry import publish, registry_reference

            reference = registry_reference(image_field, args.registry)
            publish(client, built.tag, reference, push=args.push)
            print(f"{name}: {reference} ({'pushed' if args.push else 'tagged'})", flush=True)
    return 0


def _image_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from reuse_runtime.images.builder import DEFAULT_DEBIAN_BASE

    p = sub.add_parser("image", help="make the Debian base, or build environments' images")
    actions = p.add_subparsers(dest="action", required=True)
    base = actions.add_parser(
        "base",
        help="make the Debian base image (debootstrap; about a minute; as root) with no registry",
    )
    base.add_argument(
        "--tag",
        help=f"image name (default: $REUSE_RUNTIME_DEBIAN_BASE, else {DEFAULT_DEBIAN_BASE})",
    )
    base.add_argument("--suite", default="bookworm", help="Debian release (default bookworm)")
    base.add_argument("--mirror", help="Debian mirror URL (default: debootstrap's)")
    base.add_argument("--rebuild", action="store_true", help="make it even if it exists")
    base.set_defaults(sync_main=_image_base)
    build = actions.add_parser(
        "build", help="build the image of every environment a Python file defines"
    )
    build.add_argument("file", help="the Python file that defines the environments")
    build.add_argument(
        "--registry",
        help="also tag each image REGISTRY/NAME:r-<recipe digest>: the name a controller with "
        "--image-registry REGISTRY gives its pods",
    )
    build.add_argument("--push", action="store_true", help="push those tags (needs --registry)")
    build.set_defaults(sync_main=_image_build)


# ---------------------------------------------------------------- k8s


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


def _k8s_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from reuse_runtime.manifests import CONTROLLER_PORT

    p = sub.add_parser("k8s", help="print Kubernetes manifests (YAML) for a controller or workers")
    actions = p.add_subparsers(dest="action", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--namespace", default="reuse-runtime", help="(default reuse-runtime)")
        q.add_argument(
            "--name", default="reuse-runtime", help="the controller's name (default reuse-runtime)"
        )
        q.add_argument(
            "--port", type=int, default=CONTROLLER_PORT,
            help=f"the controller's port (default {CONTROLLER_PORT})",
        )  # fmt: skip

    manifests = actions.add_parser(
        "manifests",
        help="Namespace, ServiceAccount, Role, RoleBinding, token Secret, controller Deployment "
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
        "--image-registry", help="where the controller's pods pull environments' images from"
    )
    manifests.add_argument(
        "--no-namespace", action="store_true", help="leave the Namespace out (it exists)"
    )
    manifests.set_defaults(sync_main=_k8s_manifests)
    workers = actions.add_parser(
        "workers",
        help="a Deployment of workers that join an environment of the controller (for an "
        "HPA or KEDA to scale)",
    )
    common(workers)
    workers.add_argument("environment", help="the environment they join (its name or key)")
    workers.add_argument("--image", required=True, help="an image with reuse-runtime and your code")
    workers.add_argument("--replicas", type=int, default=1, help="(default 1)")
    workers.add_argument("--concurrency", type=int, default=1, help="(default 1)")
    workers.add_argument("--cpu", help="CPU request, e.g. 500m (an HPA on CPU needs it)")
    workers.add_argument("--memory", help="memory request and limit, e.g. 1Gi")
    workers.add_argument("--grace-period", type=float, default=30.0, help="(default 30)")
    workers.set_defaults(sync_main=_k8s_workers)


# ---------------------------------------------------------------- health


async def _health_main(args: argparse.Namespace) -> int:
    from reuse_runtime.wire.clients import check_health, describe_rpc_error

    try:
        status = await check_health(args.address, _security(args), timeout=args.timeout)
    except Exception as exc:
        print(f"unhealthy: {describe_rpc_error(exc, args.address)}", file=sys.stderr)
        return 1
    print(status)
    return 0 if status == "SERVING" else 1


def _health_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "health", help="check a worker or controller with the gRPC health service (exit 0: serving)"
    )
    p.add_argument("address", help="HOST:PORT, e.g. 127.0.0.1:50051")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait (default 5)")
    _add_security_flags(p)
    p.set_defaults(main=_health_main)


# ---------------------------------------------------------------- run


def _run_file(args: argparse.Namespace) -> int:
    import reuse_runtime as flyte
    from reuse_runtime.sdk.environment import TaskTemplate
    from reuse_runtime.sdk.inputs import task_inputs

    path = Path(args.file)
    if not path.is_file():
        raise ReuseRuntimeError(f"no such file: {path}")
    module = _load_script(path)
    task = getattr(module, args.function, None)
    if not isinstance(task, TaskTemplate):
        tasks = sorted(n for n, v in vars(module).items() if isinstance(v, TaskTemplate))
        raise ReuseRuntimeError(
            f"{path} has no task named {args.function!r}; its tasks: {', '.join(tasks) or 'none'}"
        )
    kwargs = task_inputs(task, args.params)
    flyte.init_from_config()
    run = flyte.run(task, **kwargs)
    print(run.name)
    print(run.url)
    run.wait()
    if run.status != "succeeded":
        return 1
    outputs = run.outputs()
    print(repr(outputs[0]) if len(outputs) == 1 else repr(tuple(outputs)))
    return 0


def _load_script(path: Path) -> Any:
    """Import a script under its bundle name, so its tasks travel as a code bundle."""
    import importlib.util

    from reuse_runtime import code
    from reuse_runtime.sdk.excepthook import one_line

    source = path.read_bytes()
    name = code.bundle_module_name(str(path))
    bundle = CodeBundle(name, code.digest(source), str(path.resolve()), source)
    code.register_bundle(name, bundle)
    sys.path.insert(0, str(path.resolve().parent))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        # As in a replica: a run started while the script is imported is a mistake.
        with code.importing_script(str(path)):
            spec.loader.exec_module(module)
    except ReuseRuntimeError:
        raise
    except Exception as exc:
        raise ScriptFailedError(f"{path} failed when imported: {one_line(exc)}") from exc
    return module


def _run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run a task of a Python file and print its result")
    p.add_argument("file", help="the Python file that defines the task")
    p.add_argument("function", help="the task to run")
    p.add_argument(
        "params",
        nargs=argparse.REMAINDER,
        help="the task's arguments: name=value or --name value, converted by its annotations",
    )
    p.set_defaults(sync_main=_run_file)


# ---------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    from reuse_runtime import __version__

    parser = argparse.ArgumentParser(
        prog="reuse-runtime",
        description="Reusable containers: warm worker pools sized by a ReusePolicy.",
    )
    parser.add_argument("--version", action="version", version=f"reuse-runtime {__version__}")
    parser.add_argument("--log-level", default=None, help="debug, info (default), warning, error")
    parser.add_argument(
        "--log-format",
        choices=("console", "json"),
        default=None,
        help="log lines for people or JSON (default: JSON into files, else readable)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _run_parser(sub)
    _controller_parser(sub)
    _status_parser(sub)
    _worker_parser(sub)
    _health_parser(sub)
    _engine_parser(sub)
    _image_parser(sub)
    _k8s_parser(sub)
    _logs_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # A process inherits its launcher's signal mask, and the SDK's runtime thread, which
    # starts an embedded pool's replicas, blocks SIGINT and SIGTERM (sdk/runtime.py):
    # unblocked here, or a replica would never hear the SIGTERM that drains it.
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    args = build_parser().parse_args(argv)
    if args.log_format:
        os.environ[logs.FORMAT_ENV] = args.log_format
    logs.configure(sys.stderr, level=args.log_level)
    try:
        if hasattr(args, "sync_main"):
            return int(args.sync_main(args))
        return _run(args.main(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # One line a person can act on; the traceback only when asked for.
        if (args.log_level or os.environ.get(logs.LEVEL_ENV, "")).lower() == "debug":
            traceback.print_exc()
        print(f"reuse-runtime {args.command}: error: {_describe(exc)}", file=sys.stderr)
        return 2


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (ReuseRuntimeError, ValueError)):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return (
        f"{type(exc).__name__}: {exc} (this is a bug in reuse-runtime; run with "
        f"--log-level debug for the traceback, and please report it)"
    )


if __name__ == "__main__":
    sys.exit(main())
