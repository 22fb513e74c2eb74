"""``python -m reuse_runtime.cli.forkserver FD``: the local backend's fork server.

A zygote (see :mod:`reuse_runtime.backends.forkserver`): it imports what a worker
imports, once, then forks a replica per request on the socket ``FD``; each runs
``reuse_runtime worker ...`` through the CLI's own main. The local backend starts
it; it is not meant to be run by hand.
"""

from __future__ import annotations

import gc
import socket
import sys

# What a replica imports before its first task: paid here once, not per replica.
import grpc  # noqa: F401
import uvloop  # noqa: F401

import reuse_runtime.cli.worker
import reuse_runtime.worker.server  # noqa: F401
from reuse_runtime.backends import forkserver
from reuse_runtime.cli import build_parser
from reuse_runtime.cli import main as cli_main
from reuse_runtime.worker.executor import forked_as_replica


def _replica(args: list[str]) -> int:
    """In a forked child: run ``reuse-runtime ARGS`` as a replica of its own."""
    forked_as_replica()
    return cli_main(args)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m reuse_runtime.cli.forkserver FD (the local backend runs it)",
              file=sys.stderr)  # fmt: skip
        return 2
    sock = socket.socket(fileno=int(argv[0]))
    # What is alive now stays shared with every replica: no collection touches it.
    gc.freeze()
    return forkserver.serve(sock, _replica, warm=_warm)


def _warm() -> None:
    """Import every command's module, as the CLI's parser does: once, here, not in each
    replica (after the first ones, which need not wait for it)."""
    build_parser()
    gc.freeze()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
