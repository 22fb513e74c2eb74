# PYTHON_ARGCOMPLETE_OK
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
    reuse-runtime get run [NAME]                         recent runs, or one with its actions
    reuse-runtime get logs|io|action RUN                 what a run printed, took and gave
    reuse-runtime abort run NAME                         stop a run
    reuse-runtime get condition RUN                      a run's conditions (flyte.new_condition)
    reuse-runtime signal condition RUN NAME VALUE        signal one: its task goes on
    reuse-runtime ui [--store PATH] [--port P]           the web UI over a runs store

Each command is a module of this package with an ``add_parser`` that adds it to
:func:`build_parser`'s parser; what they share is :mod:`reuse_runtime.cli.common`.
Shell completion (argcomplete): ``eval "$(register-python-argcomplete reuse-runtime)"``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Sequence

from reuse_runtime.cli import (
    abort,
    conditions,
    controller,
    engine,
    get,
    health,
    image,
    k8s,
    logs,
    run,
    status,
    ui,
    worker,
)
from reuse_runtime.cli.common import complete_choices, describe, run_async, stdout_is_closed
from reuse_runtime.logs import FORMAT_ENV, LEVEL_ENV, configure

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every command, each option with its help."""
    from reuse_runtime import __version__

    parser = argparse.ArgumentParser(
        prog="reuse-runtime",
        description="Reusable containers: warm worker pools sized by a ReusePolicy.",
    )
    parser.add_argument("--version", action="version", version=f"reuse-runtime {__version__}")
    parser.add_argument(
        "--log-level",
        default=None,
        help="debug, info, warning or error (default: $REUSE_RUNTIME_LOG_LEVEL, else info)",
    ).completer = complete_choices("debug", "info", "warning", "error")  # type: ignore[attr-defined]
    parser.add_argument(
        "--log-format",
        choices=("console", "json"),
        default=None,
        help="log lines for people or JSON (default: $REUSE_RUNTIME_LOG_FORMAT, else JSON into "
        "files, readable elsewhere)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    modules = (
        run,
        controller,
        status,
        get,
        abort,
        conditions,
        worker,
        health,
        engine,
        image,
        k8s,
        logs,
        ui,
    )
    for command in modules:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # A process inherits its launcher's signal mask, and the SDK's runtime thread, which
    # starts an embedded pool's replicas, blocks SIGINT and SIGTERM (sdk/runtime.py):
    # unblocked here, or a replica would never hear the SIGTERM that drains it.
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        try:
            return _main(argv)
        finally:
            if sys.stdout is not None:  # None: started with no stdout at all
                sys.stdout.flush()  # here, where a closed pipe is still ours to handle
    except BrokenPipeError:
        # Whoever read our output has gone (`reuse-runtime logs | head`): stop quietly, as
        # Unix tools do, with the status of a process that SIGPIPE ended. Stdout points at
        # /dev/null from here on, or the interpreter's last flush would fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + signal.SIGPIPE


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions; argcomplete answers, exits
        import argcomplete

        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    if args.log_format:
        os.environ[FORMAT_ENV] = args.log_format
    configure(sys.stderr, level=args.log_level)
    try:
        if hasattr(args, "sync_main"):
            return int(args.sync_main(args))
        return run_async(args.main(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if isinstance(exc, BrokenPipeError) and stdout_is_closed():
            raise
        # One line a person can act on; the traceback only when asked for.
        if (args.log_level or os.environ.get(LEVEL_ENV, "")).lower() == "debug":
            traceback.print_exc()
        print(f"reuse-runtime {args.command}: error: {describe(exc)}", file=sys.stderr)
        return 2
