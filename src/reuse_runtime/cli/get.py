"""``reuse-runtime get run|action|logs|io|condition``: runs as Flyte's ``flyte get`` shows them.

* ``get run`` lists recent runs; ``get run NAME`` shows one, with its action tree.
* ``get action RUN [ACTION]``: a run's actions, or one.
* ``get logs RUN [ACTION] [--follow]``: what its tasks printed.
* ``get io RUN [ACTION]``: its inputs and outputs.
* ``get condition RUN [ACTION]``: its conditions (``flyte.new_condition``): name, phase,
  type, prompt (signal one with ``reuse-runtime signal condition``).

They read from the controller (any machine that reaches it), or with none from the
runs the user's embedded controllers recorded (see :mod:`~reuse_runtime.cli.run_view`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from reuse_runtime.cli.common import Commands, add_command
from reuse_runtime.cli.run_view import add_source_flags


def add_parser(commands: Commands) -> None:
    p = add_command(commands, "get", "show runs, their actions, logs, inputs and outputs")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="{run,action,logs,io,condition}")

    run = kinds.add_parser(
        "run",
        help="recent runs, or one run's details and action tree",
        description="Recent runs as a table, or one run's details with its action tree.",
    )
    run.add_argument("name", nargs="?", help="the run (default: list recent runs)")
    run.add_argument("--limit", type=int, default=50, help="runs listed at most (default 50)")
    run.add_argument(
        "--in-phase",
        metavar="PHASE",
        help="only runs in this phase: queued, running, succeeded, failed, aborted, timed_out "
        "(default: any)",
    )
    run.add_argument("--task-name", help="only runs of this task (default: any)")
    run.add_argument(
        "--with-label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only runs with this label (repeat: all of them; default: any labels)",
    )
    run.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_source_flags(run)
    run.set_defaults(sync_main=_get_run)

    action = kinds.add_parser(
        "action", help="a run's actions, or one action", description="A run's actions, or one."
    )
    action.add_argument("run", help="the run")
    action.add_argument(
        "action",
        nargs="?",
        help="the action's id, or a0 for the root (default: every action)",
    )
    action.add_argument(
        "--in-phase", metavar="PHASE", help="only actions in this phase (default: any)"
    )
    action.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_source_flags(action)
    action.set_defaults(sync_main=_get_action)

    logs = kinds.add_parser(
        "logs",
        help="what a run's tasks printed",
        description="What a run's tasks printed (one action's, with ACTION), as recorded.",
    )
    logs.add_argument("run", help="the run")
    logs.add_argument("action", nargs="?", help="only this action's lines")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep showing new lines until the run ends"
    )
    logs.add_argument("--show-ts", action="store_true", help="show each line's time")
    add_source_flags(logs)
    logs.set_defaults(sync_main=_get_logs)

    io = kinds.add_parser(
        "io",
        help="a run's inputs and outputs",
        description="A run's inputs and outputs (an action's, with ACTION).",
    )
    io.add_argument("run", help="the run")
    io.add_argument("action", nargs="?", help="an action of the run (default: the run)")
    io.add_argument("-i", "--inputs-only", action="store_true", help="only the inputs")
    io.add_argument("-o", "--outputs-only", action="store_true", help="only the outputs")
    add_source_flags(io)
    io.set_defaults(sync_main=_get_io)

    condition = kinds.add_parser(
        "condition",
        help="a run's conditions (flyte.new_condition)",
        description="A run's conditions: name, phase, payload type, prompt and value. Signal "
        "one with `reuse-runtime signal condition RUN NAME VALUE`.",
    )
    condition.add_argument("run", help="the run")
    condition.add_argument(
        "action", nargs="?", help="only those this action created (default: all)"
    )
    condition.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_source_flags(condition)
    condition.set_defaults(sync_main=_get_condition)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


def _get_run(args: argparse.Namespace) -> int:
    from reuse_runtime.cli import run_view
    from reuse_runtime.runinfo import RunFilter, parse_phase
    from reuse_runtime.sdk.action import run_actions

    source = run_view.run_source(args)
    if args.name:
        run = source.get(args.name)
        actions, truncated = run_actions(source, args.name, run_view.TREE_ACTIONS)
        if args.json:
            print(_json({"run": asdict(run), "actions": [asdict(a) for a in actions]}))
        else:
            print(run_view.run_details(run, actions, truncated))
        return 0
    labels = []
    for item in args.with_label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--with-label takes KEY=VALUE, got {item!r}")
        labels.append((key, value))
    where = RunFilter(
        phases=(parse_phase(args.in_phase),) if args.in_phase else (),
        task=args.task_name,
        labels=tuple(labels),
    )
    if args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    runs = source.list(where, args.limit, None).items
    if args.json:
        print(_json([asdict(r) for r in runs]))
    else:
        print(run_view.run_table(runs))
    return 0


def _get_action(args: argparse.Namespace) -> int:
    from reuse_runtime.cli import run_view
    from reuse_runtime.runinfo import parse_phase
    from reuse_runtime.sdk.action import action_id_of, run_actions

    source = run_view.run_source(args)
    if args.action:
        action = source.action(args.run, action_id_of(source, args.run, args.action))
        print(_json(asdict(action)) if args.json else run_view.action_tree([action])[0].strip())
        return 0
    phases = (parse_phase(args.in_phase),) if args.in_phase else ()
    actions, _ = run_actions(source, args.run, 1_000_000, phases=phases)
    if args.json:
        print(_json([asdict(a) for a in actions]))
        return 0
    for action in actions:
        print(
            f"{action.action_id}  {action.task}  {action.phase.value}  "
            f"{run_view.took(action.started, action.ended)}  parent={action.parent_id or '-'}"
        )
    return 0


def _get_logs(args: argparse.Namespace) -> int:
    from reuse_runtime.cli import run_view
    from reuse_runtime.sdk.action import action_id_of, log_lines

    source = run_view.run_source(args)
    action = action_id_of(source, args.run, args.action or "")
    entries = source.logs(args.run, action, follow=args.follow)
    shown = 0
    for line in log_lines(entries, show_ts=args.show_ts, label=not args.action):
        print(line, flush=args.follow)
        shown += 1
    if not shown:
        print(
            f"(no output recorded for {args.run}{' ' + args.action if args.action else ''})",
            file=sys.stderr,
        )
    return 0


def _get_io(args: argparse.Namespace) -> int:
    from reuse_runtime.cli import run_view
    from reuse_runtime.sdk.action import action_id_of

    if args.inputs_only and args.outputs_only:
        raise ValueError("--inputs-only and --outputs-only together show nothing: pick one")
    source = run_view.run_source(args)
    io = source.io(args.run, action_id_of(source, args.run, args.action or ""))
    print(run_view.show_io(io, inputs=not args.outputs_only, outputs=not args.inputs_only))
    return 0


def _get_condition(args: argparse.Namespace) -> int:
    from reuse_runtime.cli import run_view

    found = run_view.run_source(args).conditions(args.run, args.action)
    if args.json:
        print(_json([asdict(c) for c in found]))
    elif not found:
        print(f"(run {args.run} has no conditions)", file=sys.stderr)
    else:
        print(run_view.condition_table(found))
    return 0
