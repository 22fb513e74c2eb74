"""A run's log file, and ``reuse-runtime logs``, which shows it.

``Run.url`` points at the file. Its first line names the run, and its last says
how the run ended. Between them, every line a task printed, with where it came
from::

    2026-11-23T16:53:00.123 [leaf] run=r20261123-165259-3fa2c1 action=9c1e..02
        parent=9c1e..01 replica=fan-1-3f2a: hello

(one line in the file; ids shortened here).

``action`` is the task's id and ``parent`` its parent's (``-`` for the run's
root), so one ``grep`` of an id finds a task's lines and its children's; the
replica shows where each ran. A line the task wrote to stderr has ``stderr``
before its colon (``cache`` and ``trace`` mark the runtime's own notes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import unquote

from reuse_runtime.errors import ReuseRuntimeError
from reuse_runtime.model import LogLine

_LINE = re.compile(
    r"^(?P<time>\S+) \[(?P<task>[^\]]*)\] run=(?P<run>\S*) action=(?P<action>\S*) "
    r"parent=(?P<parent>\S*) replica=(?P<replica>\S*)(?: (?P<stream>[a-z]+))?: (?P<text>.*)$"
)
_HEADER = re.compile(r"^run (?P<run>\S+): task .* on controller .*?(?:, pid (?P<pid>\d+))?$")
_END = re.compile(r"^run (?P<run>\S+) (succeeded|failed|cancelled|timed out)\b")


def format_line(line: LogLine, at: float | None = None) -> str:
    """One output line of a task, as the run's log file has it."""
    stamp = dt.datetime.fromtimestamp(time.time() if at is None else at).isoformat(
        timespec="milliseconds"
    )
    stream = f" {line.stream}" if line.stream != "stdout" else ""
    return (
        f"{stamp} [{line.task_name}] run={line.run_id} action={line.task_id} "
        f"parent={line.parent_task_id or '-'} replica={line.replica_id or '-'}{stream}: "
        f"{line.text}"
    )


def header(run: str, task: str, controller: str, embedded: bool) -> str:
    """The file's first line; ``reuse-runtime logs --follow`` reads the pid from it."""
    where = f"{controller} (embedded)" if embedded else controller
    return f"run {run}: task {task} on controller {where}, pid {os.getpid()}"


@dataclass(frozen=True)
class RunLogLine:
    """A task's line, parsed back from the file."""

    time: str
    task: str
    run: str
    action: str
    parent: str
    replica: str
    stream: str  # "stdout", "stderr", or a runtime stream ("cache", "trace")
    text: str

    @property
    def stderr(self) -> bool:
        return self.stream == "stderr"


def parse_line(text: str) -> RunLogLine | None:
    """A task's line, or None for the run's own lines (its header, how it ended)."""
    match = _LINE.match(text)
    if match is None:
        return None
    return RunLogLine(
        time=match["time"],
        task=match["task"],
        run=match["run"],
        action=match["action"],
        parent=match["parent"],
        replica=match["replica"],
        stream=match["stream"] or "stdout",
        text=match["text"],
    )


# ---------------------------------------------------------------- reuse-runtime logs


def run_name_of(text: str) -> str:
    """A run's name from what a user may paste: its name, or its page's URL
    (``http://HOST:PORT/runs/NAME``, what ``Run.url`` is while a web UI serves it)."""
    if text.startswith(("http://", "https://")) and "/runs/" in text:
        tail = text.split("/runs/", 1)[1]
        return unquote(tail.split("?", 1)[0].split("#", 1)[0].split("/", 1)[0])
    return text


def find_run_log(runs_dir: Path, run: str | None) -> Path:
    """The log of ``run`` (a name, a path, a ``file://`` URL or its page's URL), or of the
    latest run."""
    if run:
        run = run_name_of(run)
        if run.startswith("file://"):
            run = run[len("file://") :]
        candidate = Path(run)
        if candidate.suffix == ".log" and candidate.is_file():
            return candidate
        path = runs_dir / f"{run}.log"
        if path.is_file():
            return path
    logs = sorted(runs_dir.glob("*.log"), key=lambda p: p.stat().st_mtime)
    if not run and logs:
        return logs[-1]
    recent = ", ".join(p.stem for p in reversed(logs[-5:])) or "none yet"
    what = f"no run named {run!r}" if run else "no runs yet"
    raise ReuseRuntimeError(f"{what} in {runs_dir}; recent runs: {recent}")


def follow(path: Path, *, follow: bool, poll: float = 0.2) -> Iterator[str]:
    """The file's lines; with ``follow``, new ones as they come, until the run ends.

    Following stops at the line that says how the run ended, or when the process
    that ran it is gone without saying (killed, say).
    """
    with path.open(encoding="utf-8", errors="replace") as stream:
        pid: int | None = None
        pending = ""
        while True:
            chunk = stream.readline()
            if chunk:
                pending += chunk
                if not pending.endswith("\n"):
                    continue  # a line still being written
                line, pending = pending[:-1], ""
                if pid is None:
                    head = _HEADER.match(line)
                    pid = int(head["pid"]) if head and head["pid"] else 0
                yield line
                if _END.match(line):
                    return
                continue
            if not follow:
                if pending:
                    yield pending
                return
            if pid and not _alive(pid):
                yield f"(the process that ran this run, pid {pid}, ended without finishing it)"
                return
            time.sleep(poll)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "bright_cyan", "bright_magenta")


def _colour(task: str) -> str:
    return _COLOURS[hashlib.sha256(task.encode()).digest()[0] % len(_COLOURS)]


def show(lines: Iterator[str], out: TextIO, *, task: str | None, colour: bool) -> int:
    """Print the run's lines (only ``task``'s, when given); returns how many task lines."""
    from rich.console import Console
    from rich.text import Text

    console = Console(file=out, highlight=False, soft_wrap=True) if colour else None
    shown = 0
    for raw in lines:
        parsed = parse_line(raw)
        if parsed is not None:
            # A task in a flyte.group() is labelled "group/task": either name selects it.
            if task is not None and task not in (parsed.task, parsed.task.rpartition("/")[2]):
                continue
            shown += 1
        if console is None:
            print(raw, file=out, flush=True)
            continue
        if parsed is None:
            end = _END.match(raw)
            style = "bold" if end is None else "bold green" if end[2] == "succeeded" else "bold red"
            console.print(Text(raw, style=style))
            continue
        text = Text()
        text.append(parsed.time, style="dim")
        text.append(" ")
        text.append(f"[{parsed.task}]", style=f"bold {_colour(parsed.task)}")
        text.append(
            f" run={parsed.run} action={parsed.action} parent={parsed.parent} "
            f"replica={parsed.replica}",
            style="dim",
        )
        text.append(f" {parsed.stream}: " if parsed.stream != "stdout" else ": ", style="dim")
        text.append(parsed.text, style="red" if parsed.stderr else "")
        console.print(text)
    return shown
