"""``reuse-runtime health HOST:PORT``: is a worker or controller serving? (exit 0: yes)"""

from __future__ import annotations

import argparse
import sys

from reuse_runtime.cli.common import Commands, add_command, add_security_flags, security_from


def add_parser(commands: Commands) -> None:
    p = add_command(
        commands,
        "health",
        "check a worker or controller with the gRPC health service (exit 0: serving)",
    )
    p.add_argument(
        "address",
        metavar="HOST:PORT",
        help="where it listens, HOST:PORT or dns:///HOST:PORT (e.g. 127.0.0.1:50051)",
    )
    p.add_argument(
        "--timeout", type=float, default=5.0, metavar="SECONDS", help="seconds to wait (default 5)"
    )
    add_security_flags(p)
    p.set_defaults(main=_health_main)


async def _health_main(args: argparse.Namespace) -> int:
    from reuse_runtime.address import parse_address
    from reuse_runtime.client import check_health, describe_rpc_error

    address = str(parse_address(args.address, "address"))
    try:
        status = await check_health(address, security_from(args), timeout=args.timeout)
    except Exception as exc:
        print(f"unhealthy: {describe_rpc_error(exc, address)}", file=sys.stderr)
        return 1
    print(status)
    return 0 if status == "SERVING" else 1
