"""``reuse-runtime run FILE FUNCTION [ARGS]``: run a task of a script, print its result."""

from __future__ import annotations

import argparse
from pathlib import Path

from reuse_runtime.cli.common import Commands, add_command, complete_python_files, load_script
from reuse_runtime.errors import ReuseRuntimeError


def add_parser(commands: Commands) -> None:
    p = add_command(commands, "run", "run a task of a Python file and print its result")
    p.add_argument(
        "file", help="the Python file that defines the task"
    ).completer = complete_python_files  # type: ignore[attr-defined]
    p.add_argument("function", help="the task to run")
    p.add_argument(
        "params",
        nargs=argparse.REMAINDER,
        help="the task's arguments: name=value or --name value, converted by its annotations "
        "as flyte run does (JSON, or a JSON/YAML file, for dataclasses, models, lists and "
        "dicts; a local path for a File or Dir)",
    )
    p.set_defaults(sync_main=_run_file)


def _run_file(args: argparse.Namespace) -> int:
    import reuse_runtime as flyte
    from reuse_runtime.sdk.environment import TaskTemplate
    from reuse_runtime.sdk.inputs import task_inputs

    path = Path(args.file)
    if not path.is_file():
        raise ReuseRuntimeError(f"no such file: {path}")
    module = load_script(path)
    task = getattr(module, args.function, None)
    if not isinstance(task, TaskTemplate):
        tasks = sorted(n for n, v in vars(module).items() if isinstance(v, TaskTemplate))
        raise ReuseRuntimeError(
            f"{path} has no task named {args.function!r}; its tasks: {', '.join(tasks) or 'none'}"
        )
    kwargs = task_inputs(task, args.params)
    flyte.init_from_config()
    run = flyte.run(task, **kwargs)
    print(run.name)
    print(run.url)
    run.wait()
    if run.status != "succeeded":
        return 1
    outputs = run.outputs()
    print(repr(outputs[0]) if len(outputs) == 1 else repr(tuple(outputs)))
    return 0
