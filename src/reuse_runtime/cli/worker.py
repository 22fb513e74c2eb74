"""``reuse-runtime worker``: one replica, the long-lived task server a container runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reuse_runtime import gctune, malloctune
from reuse_runtime.cli.common import (
    Commands,
    add_command,
    add_metrics_flags,
    add_security_flags,
    forget_made_token,
    install_signal_handlers,
    record_made_token,
    security_from,
)
from reuse_runtime.errors import ReuseRuntimeError
from reuse_runtime.policy import parse_bytes


def add_parser(commands: Commands) -> None:
    p = add_command(commands, "worker", "run one replica: a long-lived task server")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 picks one (default 0)")
    p.add_argument("--concurrency", type=int, default=1, help="tasks run at once (default 1)")
    p.add_argument(
        "--controller",
        metavar="HOST:PORT",
        help="controller address to attach to, HOST:PORT or dns:///HOST:PORT (default: none, "
        "a worker on its own)",
    )
    p.add_argument(
        "--environment",
        help="with --controller: join this registered environment (its name or key) as a "
        "worker the controller did not start; it is routed to, never stopped (default: none, "
        "a replica the controller started, known by its --replica-id)",
    )
    p.add_argument("--replica-id", help="this replica's id (default HOSTNAME-PID)")
    p.add_argument(
        "--grace-period",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="seconds in-flight tasks get to finish on SIGTERM (default 30)",
    )
    p.add_argument(
        "--heartbeat",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between reports to the controller, at most 5 (default 1; the "
        "controller declares a replica lost after its --report-deadline, 5 s by default)",
    )
    p.add_argument(
        "--max-payload",
        default="64Mi",
        metavar="BYTES",
        help="largest task arguments or result, in bytes or with a suffix such as Ki, Mi, Gi "
        "(default 64Mi; at most 255Mi)",
    )
    p.add_argument(
        "--reconnect",
        type=float,
        default=None,
        metavar="SECONDS",
        help="after losing the controller (a restart, a network partition), keep this replica "
        "warm and dial it again, with backoff, for up to SECONDS; past them it exits (default: "
        "300 with --environment, else 0: a replica the controller started exits at once)",
    )
    p.add_argument(
        "--code-dir",
        metavar="DIR",
        help="where code bundles fetched from the controller are unpacked, one folder per "
        "version (default: $REUSE_RUNTIME_CODE_DIR, else STATE_DIR/code)",
    )
    add_metrics_flags(p)
    add_security_flags(p)
    p.set_defaults(main=_worker_main)


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
        security=security_from(args),
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        code_dir=Path(args.code_dir) if args.code_dir else None,
    )
    server = WorkerServer(config)
    install_signal_handlers(lambda name: server.request_shutdown(f"received {name}"))
    try:
        await serve(server, on_ready=lambda: record_made_token("worker", server))
    finally:
        forget_made_token(server)
    if server.attach_error:
        print(f"reuse-runtime worker: error: {server.attach_error}", file=sys.stderr)
        return 1
    return 0


def _max_payload(text: str) -> int:
    from reuse_runtime.wire.batching import MAX_PAYLOAD_BYTES

    size = parse_bytes(text, field_name="--max-payload")
    if size > MAX_PAYLOAD_BYTES:
        raise ReuseRuntimeError(
            f"--max-payload can be at most {MAX_PAYLOAD_BYTES // 2**20}Mi (one task or result "
            f"travels in one gRPC message), got {text}"
        )
    return size
