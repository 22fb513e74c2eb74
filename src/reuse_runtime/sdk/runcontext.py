"""`with_runcontext(...)`: a run's own settings, then ``.run(task, ...)``, as Flyte spells it.

::

    r = flyte.with_runcontext(name="nightly", env_vars={"STAGE": "test"},
                              overwrite_cache=True).run(main, n=10)
    r = await flyte.with_runcontext(log_level=logging.DEBUG).run.aio(main)

Settings with a local meaning have it:

* ``name``: the run's name (its log file is ``runs/<name>.log``);
* ``env_vars``: set in every replica that runs the run's tasks (the run gets
  pools of its own);
* ``overwrite_cache``: run cached tasks anyway, and store the new results;
  ``disable_run_cache``: no caching in this run;
* ``custom_context``: the root task's ``flyte.get_custom_context()``, passed on
  to its children;
* ``log_level``: the level of ``flyte.logger`` in the run's tasks;
* ``labels``, ``annotations``, ``project``, ``domain``, ``run_start_time``:
  recorded in the run's log and in ``flyte.ctx()``;
* ``copy_style``: which files of the project (``flyte.init(root_dir=...)``,
  else the working directory) make the run's code bundle, for replicas that
  cannot see this machine's files: ``"loaded_modules"`` (the default: the
  modules this process loaded from the project, and the project modules they
  import), ``"all"`` (every file not excluded by ``.gitignore`` or
  ``.dockerignore``), or ``"none"`` (the code is in the image). The bundle's
  digest is the code's version: a new version runs on a pool of its own.

Options that only mean something on a Flyte backend (``service_account``,
``queue``, ``notifications``, ...) are accepted with a one-line warning naming
them; ``dry_run=True`` is refused, since running would not be dry.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from reuse_runtime.bundles import check_copy_style
from reuse_runtime.sdk.aio import BlockingMethod
from reuse_runtime.sdk.ignored import note_ignored
from reuse_runtime.sdk.run import RunSettings
from reuse_runtime.sdk.runtime import start

_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class Runner:
    """A run context: ``.run(task, *args, **kwargs)`` starts the task with its settings."""

    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings

    @BlockingMethod
    def run(self, task: Any, *args: Any, **kwargs: Any) -> Any:
        """Start ``task(*args, **kwargs)`` with this context's settings; returns a ``Run``."""
        return start(task, args, kwargs, self.settings)

    def __repr__(self) -> str:
        return f"Runner({self.settings!r})"


def _check_str_map(name: str, value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise TypeError(f"{name} must be a dict of str to str, got {value!r}")
    return dict(value)


def with_runcontext(
    mode: str | None = None,
    *,
    name: str | None = None,
    service_account: str | None = None,
    version: str | None = None,
    copy_style: str = "loaded_modules",
    dry_run: bool = False,
    copy_bundle_to: Any = None,
    interactive_mode: bool | None = None,
    raw_data_path: str | None = None,
    run_base_dir: str | None = None,
    run_start_time: datetime | None = None,
    overwrite_cache: bool = False,
    project: str | None = None,
    domain: str | None = None,
    env_vars: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    interruptible: bool | None = None,
    log_level: int | None = None,
    log_format: str = "console",
    user_log_level: int | None = None,
    reset_root_logger: bool = False,
    disable_run_cache: bool = False,
    queue: str | None = None,
    max_action_concurrency: int | None = None,
    notifications: Any = None,
    custom_context: dict[str, str] | None = None,
    cache_lookup_scope: str = "global",
    preserve_original_types: bool = False,
    debug: bool = False,
    tracked: bool = False,
    tracked_strict: bool = False,
) -> Runner:
    """A run context with these settings; start a task with ``.run(task, ...)``.

    Example::

        r = flyte.with_runcontext(name="demo-run", env_vars={"MODE": "test"}).run(main, n=3)
        print(r.name, r.url)

    See the module docstring for what each setting does here.
    """
    copy_style = check_copy_style(copy_style)
    if mode not in (None, "local", "remote"):
        note_ignored(f"with_runcontext(mode={mode!r})", "every run goes to the configured pool")
    if dry_run:
        raise ValueError("with_runcontext(dry_run=True) is not supported: reuse-runtime runs tasks")
    if name is not None and (not isinstance(name, str) or not _RUN_NAME.fullmatch(name)):
        raise ValueError(
            f"run name must be 1 to 128 letters, digits, '_', '.' or '-', starting with a "
            f"letter or digit; got {name!r}"
        )
    if max_action_concurrency is not None and (
        max_action_concurrency < 0 or max_action_concurrency == 1
    ):
        raise ValueError(
            f"max_action_concurrency must be 0 (platform default) or at least 2, got "
            f"{max_action_concurrency}."
        )
    if log_level is not None and not isinstance(log_level, int):
        log_level = logging.getLevelName(str(log_level).upper())
        if not isinstance(log_level, int):
            raise ValueError("log_level must be a logging level, like logging.DEBUG or 'debug'")
    unsupported: dict[str, tuple[object, str]] = {
        "service_account": (service_account, "replicas run as this user"),
        "version": (version, "the code version is the digest of the code"),
        "copy_bundle_to": (copy_bundle_to, "there is no dry run to copy a bundle for"),
        "raw_data_path": (raw_data_path, "data goes to the file store (REUSE_RUNTIME_STORE)"),
        "run_base_dir": (run_base_dir, "data goes to the file store (REUSE_RUNTIME_STORE)"),
        "interruptible": (interruptible, "local replicas are not preempted"),
        "user_log_level": (user_log_level, "use log_level"),
        "queue": (queue, "there is one local queue per environment"),
        "max_action_concurrency": (max_action_concurrency, "pools bound concurrency"),
        "notifications": (notifications, "there is no notifier; watch the run's log"),
        "debug": (debug, "attach a debugger to a replica yourself"),
        "tracked": (tracked, "there is no Flyte control plane to report to"),
        "tracked_strict": (tracked_strict, "there is no Flyte control plane to report to"),
        "reset_root_logger": (reset_root_logger, "the root logger is left alone"),
    }
    for option, (value, why) in unsupported.items():
        if value:
            note_ignored(f"with_runcontext({option}=...)", why)
    if log_format != "console":
        note_ignored("with_runcontext(log_format=...)", "task output keeps its own format")
    if cache_lookup_scope != "global":
        note_ignored("with_runcontext(cache_lookup_scope=...)", "one cache serves every run")
    # interactive_mode and preserve_original_types ask for what happens anyway here:
    # the code replicas need travels, and values keep their types.
    labels_ = _check_str_map("labels", labels)
    if project or domain:
        labels_ = {
            **({"project": project} if project else {}),
            **({"domain": domain} if domain else {}),
            **labels_,
        }
    return Runner(
        RunSettings(
            name=name,
            env_vars=_check_str_map("env_vars", env_vars),
            overwrite_cache=bool(overwrite_cache),
            disable_run_cache=bool(disable_run_cache),
            custom_context=_check_str_map("custom_context", custom_context),
            log_level=log_level,
            labels=labels_,
            annotations=_check_str_map("annotations", annotations),
            run_start_time=run_start_time,
            copy_style=copy_style,
        )
    )
