"""What ``reuse-runtime get run`` and ``get io`` show: runs as a table, one run with its
action tree, a run's inputs and outputs; and where those commands read runs from.

:func:`run_source` picks the source, as ``status`` does for its controller: the one
``--endpoint`` (or ``$REUSE_RUNTIME_ENDPOINT``) names, else a standalone controller
on this machine's default port, else the local runs store that the user's
embedded controllers share (past local runs, with no controller running).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import time
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from reuse_runtime.cli.common import add_security_flags, default_port, security_from
from reuse_runtime.conditions import ConditionInfo
from reuse_runtime.runinfo import ActionInfo, ActionPhase, RunInfo, RunIO
from reuse_runtime.sdk.runsource import RunSource

#: Actions a run's tree shows at most (read from the source); past it, counts only.
TREE_ACTIONS = 5000
#: Children of one task listed one by one under their parent; more are summed up.
LISTED_CHILDREN = 5


def add_source_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint",
        metavar="HOST:PORT",
        help="the controller to ask, HOST:PORT or dns:///HOST:PORT (default: "
        "$REUSE_RUNTIME_ENDPOINT, else a controller on this machine's default port, else the "
        "runs this user's embedded controllers recorded)",
    )
    add_security_flags(parser)


def explicit_endpoint(args: argparse.Namespace) -> str | None:
    from reuse_runtime.sdk.runtime import ENDPOINT_ENV

    return str(args.endpoint or os.environ.get(ENDPOINT_ENV) or "") or None


def run_source(args: argparse.Namespace) -> RunSource:
    """Where the command reads runs (see the module's docstring)."""
    from reuse_runtime.sdk.runsource import store_source

    found = controller_source(args)
    return found if found is not None else store_source()


def controller_source(args: argparse.Namespace) -> RunSource | None:
    """The controller to read runs from: the one named (``--endpoint``,
    ``$REUSE_RUNTIME_ENDPOINT``), else one serving on this machine's default port;
    None when neither."""
    import reuse_runtime as flyte
    from reuse_runtime.address import parse_address
    from reuse_runtime.sdk.runtime import ENDPOINT_ENV, runtime

    security = security_from(args)
    endpoint = explicit_endpoint(args)
    if endpoint is not None:
        label = "--endpoint" if args.endpoint else f"${ENDPOINT_ENV}"
        endpoint = str(parse_address(endpoint, label))
    else:
        local = f"127.0.0.1:{default_port()}"
        if _serving(local, security):
            endpoint = local
    if endpoint is None:
        return None
    flyte.init(endpoint=endpoint, token=security.token)
    return runtime().source


def _serving(address: str, security: Any) -> bool:
    from reuse_runtime.client import check_health

    try:
        return asyncio.run(check_health(address, security, timeout=1.0)) == "SERVING"
    except Exception:
        return False


# ---------------------------------------------------------------- formatting


def when(seconds: float | None) -> str:
    if not seconds:
        return "-"
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def took(start: float | None, end: float | None) -> str:
    if not start:
        return "-"
    seconds = (end or time.time()) - start
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def phase_name(phase: ActionPhase) -> str:
    """As Flyte's CLI shows it: ``SUCCEEDED``."""
    return phase.value.upper()


def run_table(runs: Iterable[RunInfo]) -> str:
    """Runs, one a line: name, phase, task, created, duration, actions, user."""
    rows = [("NAME", "PHASE", "TASK", "CREATED", "DURATION", "ACTIONS", "USER")]
    for run in runs:
        rows.append(
            (
                run.name,
                phase_name(run.phase),
                run.task,
                when(run.created),
                took(run.started or run.created, run.ended),
                str(sum(run.counts.values())),
                run.client.user or "-",
            )
        )
    if len(rows) == 1:
        return "no runs yet"
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def condition_table(conditions: Iterable[ConditionInfo]) -> str:
    """Conditions, one a line: name, phase, type, action id, value, prompt's first line."""
    rows = [("NAME", "PHASE", "TYPE", "ACTION", "VALUE", "PROMPT")]
    for c in conditions:
        prompt = c.prompt.strip().splitlines()[0] if c.prompt.strip() else ""
        rows.append(
            (
                c.name,
                phase_name(c.phase),
                c.data_type,
                c.action_id,
                "-" if c.value is None else repr(c.value),
                prompt[:57] + "..." if len(prompt) > 60 else prompt,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def run_details(run: RunInfo, actions: list[ActionInfo], truncated: bool) -> str:
    """One run: what, when, by whom, how it ended; then its actions as a tree."""
    lines = [
        f"run {run.name}",
        f"  phase:        {phase_name(run.phase)}",
        f"  task:         {run.task} (environment {run.environment})",
        f"  created:      {when(run.created)} by {run.client.user or '-'}@{run.client.host or '-'}",
        f"  started:      {when(run.started)}",
        f"  ended:        {when(run.ended)}",
        f"  duration:     {took(run.started or run.created, run.ended)}",
        f"  inputs:       {run.inputs_preview or '-'}",
    ]
    if run.labels:
        lines.append(f"  labels:       {', '.join(f'{k}={v}' for k, v in run.labels)}")
    counts = ", ".join(
        f"{n} {phase.value}" for phase, n in sorted(run.counts.items(), key=lambda kv: kv[0].value)
    )
    lines.append(f"  actions:      {sum(run.counts.values())}" + (f" ({counts})" if counts else ""))
    if run.output_size is not None:
        lines.append(f"  output:       {run.output_size} bytes (reuse-runtime get io {run.name})")
    if run.url:
        lines.append(f"  url:          {run.url}")
    if run.error is not None:
        lines.append(f"  error:        {run.error.type}: {run.error.message}")
        if run.error.traceback:
            lines.extend("    " + line for line in run.error.traceback.rstrip().splitlines())
    if actions:
        lines.append("")
        lines.extend(action_tree(actions))
        if truncated:
            lines.append(f"  (the first {len(actions)} actions; `get action {run.name}` lists all)")
    return "\n".join(lines)


def action_tree(actions: list[ActionInfo]) -> list[str]:
    """Each action under its parent; many calls of one task under a parent on one line."""
    children: dict[str, list[ActionInfo]] = {}
    ids = {a.action_id for a in actions}
    roots = []
    for action in actions:
        if action.parent_id and action.parent_id in ids:
            children.setdefault(action.parent_id, []).append(action)
        else:
            roots.append(action)
    out: list[str] = []

    def show(action: ActionInfo, depth: int) -> None:
        pad = "  " * depth
        out.append(
            f"{pad}{_task(action)}  {action.phase.value}  {took(action.started, action.ended)}  "
            f"{action.action_id}" + (f"  ({action.error.type})" if action.error else "")
        )
        mine = children.get(action.action_id, [])
        by_task: dict[str, list[ActionInfo]] = {}
        for child in mine:
            by_task.setdefault(_task(child), []).append(child)
        for task, calls in by_task.items():
            if len(calls) <= LISTED_CHILDREN:
                for child in calls:
                    show(child, depth + 1)
                continue
            phases = Counter(c.phase.value for c in calls)
            spent = [c.ended - c.started for c in calls if c.started and c.ended]
            mean = f", {sum(spent) / len(spent):.2f} s each" if spent else ""
            summary = ", ".join(f"{n} {phase}" for phase, n in sorted(phases.items()))
            out.append(f"{pad}  {task} x{len(calls)}: {summary}{mean}")
            for child in calls:
                if child.action_id in children:
                    show(child, depth + 1)

    for root in roots:
        show(root, 1)
    return out


def _task(action: ActionInfo) -> str:
    return f"{action.group}/{action.task}" if action.group else action.task


def show_io(io: RunIO, *, inputs: bool, outputs: bool) -> str:
    lines = []
    if inputs:
        lines.append("inputs:")
        if io.inputs is None:
            lines.append(f"  {io.inputs_preview or '(not kept)'}")
        else:
            value = _load(io.inputs)
            if isinstance(value, dict):
                lines.extend([f"  {k} = {v!r}" for k, v in value.items()] or ["  -"])
            else:
                lines.append(f"  {value!r}")
    if outputs:
        lines.append("outputs:")
        if io.error is not None:
            lines.append(f"  {phase_name(io.phase)}: {io.error.type}: {io.error.message}")
        elif io.output is not None:
            lines.append(f"  o0 = {_load(io.output)!r}")
        elif io.phase.is_terminal:
            lines.append("  (not kept)")
        else:
            lines.append(f"  (not yet: it is {io.phase.value})")
    return "\n".join(lines)


def _load(data: bytes) -> Any:
    try:
        return pickle.loads(data)
    except Exception as exc:  # a class this process cannot import
        return f"<{len(data)} pickled bytes: {type(exc).__name__}: {exc}>"
