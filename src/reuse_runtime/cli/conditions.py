"""``reuse-runtime signal condition RUN NAME VALUE``: signal a condition, as Flyte's
``flyte signal condition`` does.

NAME is the condition's name (or its action id, from ``reuse-runtime get condition
RUN``). VALUE is parsed as the condition's type: ``true``/``false`` (also
``yes``/``no``, ``1``/``0``) for a bool, a number for an int or a float, any text
for a str. The task waiting on it goes on with the value.
"""

from __future__ import annotations

import argparse

from reuse_runtime.cli.common import Commands, add_command
from reuse_runtime.cli.run_view import add_source_flags


def add_parser(commands: Commands) -> None:
    p = add_command(commands, "signal", "signal a run's condition (flyte.new_condition)")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="{condition}")
    condition = kinds.add_parser(
        "condition",
        help="signal a condition a run's task waits on",
        description="Signal a condition a run's task waits on; it goes on with VALUE, parsed "
        "as the condition's type (true/false, a number, or text).",
    )
    condition.add_argument("run", help="the run")
    condition.add_argument("name", help="the condition's name, or its action id")
    condition.add_argument("value", help="the value: true/false, a number, or text")
    add_source_flags(condition)
    condition.set_defaults(sync_main=_signal_condition)


def _signal_condition(args: argparse.Namespace) -> int:
    from reuse_runtime.cli import run_view

    done = run_view.run_source(args).signal_condition(args.run, args.name, args.value)
    print(f"condition {done.name} of run {args.run} signaled with {done.value!r}")
    return 0
