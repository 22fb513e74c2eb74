"""``reuse-runtime status``: a controller's environments and replicas, once or live.

What it shows, and the live view, are :mod:`reuse_runtime.cli.status_view`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os

from reuse_runtime.cli.common import (
    Commands,
    add_command,
    add_security_flags,
    default_port,
    install_signal_handlers,
    security_from,
)
from reuse_runtime.security import Security


def add_parser(commands: Commands) -> None:
    p = add_command(commands, "status", "show environments and replicas of a controller")
    p.add_argument(
        "--endpoint",
        metavar="HOST:PORT",
        help="controller address (default: $REUSE_RUNTIME_ENDPOINT, else the most recent "
        "embedded controller, else a controller on this machine's default port)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--watch",
        action="store_true",
        help="a live view, refreshed in place (q or Ctrl-C quits); printed again and again "
        "when stdout is not a terminal",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="with --watch, seconds between refreshes (default 1)",
    )
    add_security_flags(p)
    p.set_defaults(main=_status_main)


async def _status_main(args: argparse.Namespace) -> int:
    from reuse_runtime.client import ControllerClient
    from reuse_runtime.errors import ControllerUnavailableError
    from reuse_runtime.sdk.runtime import ENDPOINT_ENV, embedded_controller

    security = security_from(args)
    endpoint = args.endpoint or os.environ.get(ENDPOINT_ENV)
    if not endpoint:
        embedded = embedded_controller()
        if embedded is not None:
            endpoint = embedded.address
            if not security.authenticated and embedded.token:
                security = dataclasses.replace(security, token=embedded.token)
    if not endpoint:
        # No run's embedded controller: a standalone one on the default port, if any.
        endpoint = f"127.0.0.1:{default_port()}"
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
            from reuse_runtime.cli.status_view import watch

            if args.json:
                raise ValueError("--watch shows tables; for JSON, call status --json repeatedly")
            if args.interval <= 0:
                raise ValueError(f"--interval must be above 0 seconds, got {args.interval:g}")
            stop = asyncio.Event()
            install_signal_handlers(lambda name: stop.set())  # Ctrl-C quits, like q
            await watch(client.status, interval=args.interval, stop=stop)
            return 0
        status = await client.status()
    if args.json:
        print(json.dumps(dataclasses.asdict(status), indent=2))
    else:
        from reuse_runtime.cli.status_view import print_status

        print_status(status)
    return 0


async def _answers(endpoint: str, security: Security) -> bool:
    from reuse_runtime.client import ControllerClient
    from reuse_runtime.errors import ControllerUnavailableError

    try:
        async with ControllerClient(endpoint, security) as client:
            await client.wait_ready(timeout=1)
    except ControllerUnavailableError:
        return False
    return True
