"""``reuse-runtime engine start|stop``: Podman's Docker-compatible service, for containers."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

from reuse_runtime.cli.common import Commands, add_command
from reuse_runtime.errors import ReuseRuntimeError


def add_parser(commands: Commands) -> None:
    p = add_command(commands, "engine", "start or stop Podman's Docker-compatible service")
    actions = p.add_subparsers(dest="action", required=True)
    start = add_command(
        actions,
        "start",
        "run `podman system service` in the background, with ulimits this host can grant",
    )
    start.add_argument(
        "--socket",
        help="socket path (default: Podman's: /run/podman/podman.sock for root, "
        "$XDG_RUNTIME_DIR/podman/podman.sock otherwise)",
    )
    start.set_defaults(sync_main=_engine_start)
    stop = add_command(actions, "stop", "stop the service `engine start` started")
    stop.set_defaults(sync_main=_engine_stop)


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
