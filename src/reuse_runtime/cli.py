"""The `reuse-runtime` command. The only place that installs signal handlers.

reuse-runtime worker [--host H] [--port P] [--concurrency N] [--controller ADDR] ...
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from reuse_runtime import logs
from reuse_runtime.errors import ReuseRuntimeError
from reuse_runtime.policy import parse_bytes
from reuse_runtime.security import Security


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


def _security(args: argparse.Namespace) -> Security:
    return Security.from_env(args.token, args.tls_cert, args.tls_key, args.tls_ca)


# ---------------------------------------------------------------- worker


async def _worker_main(args: argparse.Namespace) -> int:
    from reuse_runtime.worker.server import WorkerConfig, WorkerServer, default_replica_id, serve

    config = WorkerConfig(
        host=args.host,
        port=args.port,
        concurrency=args.concurrency,
        replica_id=args.replica_id or default_replica_id(),
        controller=args.controller,
        grace_period=args.grace_period,
        heartbeat=args.heartbeat,
        max_payload=parse_bytes(args.max_payload, field_name="--max-payload"),
        security=_security(args),
    )
    server = WorkerServer(config)
    _install_signal_handlers(lambda name: server.request_shutdown(f"received {name}"))
    await serve(server)
    return 0


def _worker_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("worker", help="run one replica: a long-lived task server")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 picks one (default)")
    p.add_argument("--concurrency", type=int, default=1, help="tasks run at once (default 1)")
    p.add_argument("--controller", help="controller address to attach to (host:port)")
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
        default=5.0,
        help="seconds between reports to the controller, at most 5 (default 5)",
    )
    p.add_argument(
        "--max-payload",
        default="64Mi",
        help="largest task arguments or result, e.g. 64Mi (default)",
    )
    _add_security_flags(p)
    p.set_defaults(main=_worker_main)


# ---------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reuse-runtime",
        description="Reusable containers: warm worker pools sized by a ReusePolicy.",
    )
    parser.add_argument("--log-level", default=None, help="debug, info (default), warning, error")
    sub = parser.add_subparsers(dest="command", required=True)
    _worker_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(sys.stderr, level=args.log_level)
    try:
        return _run(args.main(args))
    except (ReuseRuntimeError, ValueError) as exc:
        print(f"reuse-runtime {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
