"""``reuse-runtime abort run RUN``: stop a run, as Flyte's ``flyte abort run`` does.

Every task of the run is cancelled at once, its children with it, and the run ends
``ABORTED``. A run that has ended already is left as it is.
"""

from __future__ import annotations

import argparse

from reuse_runtime.cli.common import Commands, add_command
from reuse_runtime.cli.run_view import add_source_flags


def add_parser(commands: Commands) -> None:
    p = add_command(commands, "abort", "stop a run")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="{run}")
    run = kinds.add_parser(
        "run",
        help="abort a run: cancel every task of it",
        description="Abort a run: every task of it is cancelled, and it ends ABORTED.",
    )
    run.add_argument("name", help="the run")
    run.add_argument(
        "--reason",
        default="Manually aborted from the CLI",
        help="why (recorded as the run's error; default: %(default)s)",
    )
    add_source_flags(run)
    run.set_defaults(sync_main=_abort_run)


def _abort_run(args: argparse.Namespace) -> int:
    from reuse_runtime.cli import run_view

    source = run_view.run_source(args)
    found = source.get(args.name)
    if found.done:
        print(f"run {args.name} had ended already ({run_view.phase_name(found.phase)})")
        return 0
    cancelled = source.abort(args.name, args.reason)
    print(f"run {args.name} aborted ({cancelled} task{'' if cancelled == 1 else 's'} cancelled)")
    return 0
