"""``reuse-runtime logs``: a run's log, every task's output labelled, optionally followed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import Any

from reuse_runtime.cli.common import Commands, add_command


def add_parser(commands: Commands) -> None:
    p = add_command(
        commands,
        "logs",
        "show a run's log: every task's output, with run, task, parent and replica",
    )
    p.add_argument(
        "run", nargs="?", help="the run's name (or its log file, or its URL); default: the latest"
    ).completer = _complete_runs  # type: ignore[attr-defined]
    p.add_argument("--task", help="only the lines of tasks with this name (default: every task's)")
    p.add_argument(
        "-f", "--follow", action="store_true", help="keep showing new lines until the run ends"
    )
    p.set_defaults(sync_main=_logs_main)


def _logs_main(args: argparse.Namespace) -> int:
    from reuse_runtime import runlog
    from reuse_runtime.paths import state_dir

    path = runlog.find_run_log(state_dir() / "runs", args.run)
    lines = runlog.follow(path, follow=args.follow)
    shown = runlog.show(lines, sys.stdout, task=args.task, colour=sys.stdout.isatty())
    if args.task is not None and not shown:
        print(f"(no output lines from a task named {args.task!r} in {path})", file=sys.stderr)
    return 0


def _complete_runs(prefix: str, **_: Any) -> Iterable[str]:
    """The names of this user's runs, for the shell to complete."""
    from reuse_runtime.paths import state_dir

    runs = (state_dir() / "runs").glob("*.log")
    return sorted(path.stem for path in runs if path.stem.startswith(prefix))
