"""``reuse-runtime logs``: a run's log, every task's output labelled, optionally followed.

With a controller to ask (``--endpoint`` or ``$REUSE_RUNTIME_ENDPOINT``) the lines come
from it, so this works from any machine that reaches it; otherwise from the run's log
file on this machine (``Run.url``), written by the process that started the run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from reuse_runtime.cli.common import Commands, add_command
from reuse_runtime.cli.run_view import add_source_flags, explicit_endpoint


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
    add_source_flags(p)
    p.set_defaults(sync_main=_logs_main)


def _logs_main(args: argparse.Namespace) -> int:
    from reuse_runtime import runlog
    from reuse_runtime.paths import state_dir

    if explicit_endpoint(args) is not None:
        lines: Iterable[str] = _from_controller(args)
        where = "the controller"
    else:
        path = runlog.find_run_log(state_dir() / "runs", args.run)
        lines = runlog.follow(path, follow=args.follow)
        where = str(path)
    shown = runlog.show(iter(lines), sys.stdout, task=args.task, colour=sys.stdout.isatty())
    if args.task is not None and not shown:
        print(f"(no output lines from a task named {args.task!r} in {where})", file=sys.stderr)
    return 0


def _from_controller(args: argparse.Namespace) -> Iterator[str]:
    """The run's lines as its log file has them: a header, every line, how it ended."""
    from reuse_runtime import runlog
    from reuse_runtime.cli.run_view import run_source
    from reuse_runtime.model import LogLine
    from reuse_runtime.runinfo import RunFilter

    source = run_source(args)
    name = runlog.run_name_of(args.run) if args.run else args.run
    if not name:
        latest = source.list(RunFilter(), 1, None).items
        if not latest:
            raise ValueError(f"no runs yet at {source.where}")
        name = latest[0].name
    run = source.get(name)
    yield f"run {run.name}: task {run.task} on {source.where}"
    where = _placed(source, name)
    looked = time.monotonic()
    for entry in source.logs(name, follow=args.follow):
        if entry.action_id not in where and time.monotonic() - looked > 1.0:
            where = _placed(source, name)  # actions that ended since: once a second at most
            looked = time.monotonic()
        parent, replica = where.get(entry.action_id, ("", ""))
        line = LogLine(entry.action_id, entry.task, name, entry.stream, entry.text, parent, replica)
        yield runlog.format_line(line, at=entry.at)
    yield _ended(source.get(name))


def _placed(source: Any, run: str, most: int = 100_000) -> dict[str, tuple[str, str]]:
    """The parent and replica of the run's actions recorded so far (they ended)."""
    found: dict[str, tuple[str, str]] = {}
    cursor = None
    while len(found) < most:
        page = source.actions(run, limit=1000, cursor=cursor)
        found.update((a.action_id, (a.parent_id, a.replica)) for a in page.items)
        cursor = page.cursor
        if cursor is None:
            break
    return found


def _ended(run: Any) -> str:
    if not run.done:
        return f"run {run.name} is {run.phase.value}"
    word = {"succeeded": "succeeded", "aborted": "cancelled", "timed_out": "timed out"}.get(
        run.phase.value, "failed"
    )
    took = f" ({run.ended - (run.started or run.created):.2f} s)" if run.ended else ""
    if run.error is None:
        return f"run {run.name} {word}{took}"
    return f"run {run.name} {word}: {run.error.type.rsplit('.', 1)[-1]}: {run.error.message}"


def _complete_runs(prefix: str, **_: Any) -> Iterable[str]:
    """The names of this user's runs, for the shell to complete."""
    from reuse_runtime.paths import state_dir

    runs = (state_dir() / "runs").glob("*.log")
    return sorted(path.stem for path in runs if path.stem.startswith(prefix))
