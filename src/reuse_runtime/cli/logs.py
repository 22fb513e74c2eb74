"""``reuse-runtime logs``: a run's log, every task's output labelled, optionally followed.

The lines come from a controller, as ``get`` finds one (``--endpoint``,
``$REUSE_RUNTIME_ENDPOINT``, else one serving on this machine's default port), so
this works from any machine that reaches it. With no controller named, a run the
controller on the default port does not know (an embedded run), a log file or its
URL is read from this machine: the run's log file (``Run.url``), written by the
process that started the run.
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
    from reuse_runtime.cli.run_view import controller_source
    from reuse_runtime.errors import ReuseRuntimeError
    from reuse_runtime.paths import state_dir

    lines: Iterable[str] | None = None
    named = explicit_endpoint(args) is not None
    if named or not _a_file(args.run):
        source = controller_source(args)
        if source is not None:
            try:
                lines = _from_controller(args, source)
            except (ReuseRuntimeError, OSError):
                # Not named: a controller that happens to serve on the default port
                # (and does not know the run, or refuses this user) is not an error.
                if named:
                    raise
            where = "the controller"
    if lines is None:  # no controller, or one that does not know the run: the log file
        path = runlog.find_run_log(state_dir() / "runs", args.run)
        lines = runlog.follow(path, follow=args.follow)
        where = str(path)
    shown = runlog.show(iter(lines), sys.stdout, task=args.task, colour=sys.stdout.isatty())
    if args.task is not None and not shown:
        print(f"(no output lines from a task named {args.task!r} in {where})", file=sys.stderr)
    return 0


def _a_file(run: str | None) -> bool:
    """``run`` names a log file or its ``file://`` URL, not a run (a run's name has no
    '/'; a run page's ``http(s)://`` URL names a run)."""
    from reuse_runtime import runlog

    if not run:
        return False
    name = runlog.run_name_of(run)
    return "/" in name or name.endswith(".log")


def _from_controller(args: argparse.Namespace, source: Any) -> Iterator[str]:
    """The run's lines as its log file has them: a header, every line, how it ended.

    Raises :class:`RunNotFoundError` at once (not when iterated) for a run the
    controller does not know, or when it has no runs and none was named."""
    from reuse_runtime import runlog
    from reuse_runtime.errors import RunNotFoundError
    from reuse_runtime.runinfo import RunFilter

    name = runlog.run_name_of(args.run) if args.run else args.run
    if not name:
        latest = source.list(RunFilter(), 1, None).items
        if not latest:
            raise RunNotFoundError(f"no runs yet at {source.where}")
        name = latest[0].name
    run = source.get(name)
    return _lines(args, source, run)


def _lines(args: argparse.Namespace, source: Any, run: Any) -> Iterator[str]:
    from reuse_runtime import runlog
    from reuse_runtime.model import LogLine

    name = run.name
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


def _placed(source: Any, run: str) -> dict[str, tuple[str, str]]:
    """The parent and replica of the run's actions recorded so far (they ended)."""
    from reuse_runtime.sdk.action import run_actions

    actions, _ = run_actions(source, run, 100_000)
    return {a.action_id: (a.parent_id, a.replica) for a in actions}


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
