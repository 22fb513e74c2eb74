"""The runs store's settings: where it lives, what it keeps, how often it writes.

Every setting has a default; :meth:`StoreSettings.from_env` reads the ones a
person may want to change from the environment:

==================================  ================================  ==========
variable                            setting                           default
==================================  ================================  ==========
``REUSE_RUNTIME_RUNS_DB``           ``path``                          ``<state dir>/runs.sqlite``
``REUSE_RUNTIME_RUNS_MAX``          ``max_runs``                      10000
``REUSE_RUNTIME_RUNS_MAX_AGE_DAYS`` ``max_age_days``                  30
``REUSE_RUNTIME_RUNS_MAX_BYTES``    ``max_bytes`` (``2Gi``, bytes)    2 GiB
``REUSE_RUNTIME_RUNS_BLOB_BYTES``   ``blob_threshold``                64 KiB
``REUSE_RUNTIME_RUNS_FLUSH_MS``     ``flush_interval`` (ms)           100
``REUSE_RUNTIME_RUNS_RECORD``       whether a controller records      1
==================================  ================================  ==========

``REUSE_RUNTIME_RUNS_RECORD=0`` runs a controller with no store: its runs are still
its own while it runs, but nothing is recorded, so nothing survives it (benchmarks
compare the two).

(``REUSE_RUNTIME_STORE`` is another thing: the file store behind ``flyte.io.File``.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from reuse_runtime.envvars import env_number, env_size
from reuse_runtime.errors import ConfigError, PolicyError
from reuse_runtime.paths import state_dir

PATH_ENV = "REUSE_RUNTIME_RUNS_DB"
MAX_RUNS_ENV = "REUSE_RUNTIME_RUNS_MAX"
MAX_AGE_ENV = "REUSE_RUNTIME_RUNS_MAX_AGE_DAYS"
MAX_BYTES_ENV = "REUSE_RUNTIME_RUNS_MAX_BYTES"
BLOB_ENV = "REUSE_RUNTIME_RUNS_BLOB_BYTES"
FLUSH_ENV = "REUSE_RUNTIME_RUNS_FLUSH_MS"
RECORD_ENV = "REUSE_RUNTIME_RUNS_RECORD"

#: The store's file in the state dir.
FILE_NAME = "runs.sqlite"
KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
#: The smallest byte bound: the schema and one batch must fit with room to spare.
MIN_MAX_BYTES = 1 * MiB


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """How the runs store behaves. Only ``path`` is required.

    Retention keeps the runs of the last ``max_age_days`` days and at most
    ``max_runs`` runs, and the whole store (database, its log, value files) under
    ``max_bytes``; it removes the oldest finished runs first, and never an
    unfinished one.
    """

    #: The database file; value files go in ``<path>.blobs/`` beside it.
    path: Path
    max_runs: int = 10_000
    max_age_days: float = 30.0
    max_bytes: int = 2 * GiB
    #: Values, and log lines, larger than this go to files beside the database.
    blob_threshold: int = 64 * KiB
    #: Values larger than this are not kept (their size is): an output of 100 MiB
    #: would crowd out every other run.
    value_max: int = 64 * MiB
    #: A run's pickled inputs larger than this are not kept (their preview is).
    inputs_max: int = 1 * MiB
    #: Previews (inputs, shown by the UI) are cut to this many characters.
    preview_max: int = 256
    #: A report (``flyte.report``) larger than this is kept as a notice saying so.
    report_max: int = 8 * MiB
    #: Per action, the first ``log_head`` and the last ``log_tail`` lines are kept.
    log_head: int = 1000
    log_tail: int = 1000
    #: How often the writer commits what has arrived, in seconds. A commit costs about
    #: as much as 60 small rows: at 25 ms, a controller running 5,000 tasks/s spent a
    #: third more on its commits than on its rows. A process killed with -9 loses at
    #: most what arrived in the last interval; a stop (SIGTERM, close) writes it all.
    flush_interval: float = 0.1
    #: The most records one transaction writes.
    batch_max: int = 10_000
    #: The most records held in memory while writes fail (the disk is full); past
    #: it the newest are dropped and counted.
    max_queued: int = 500_000
    #: How often a failed write is tried again, in seconds.
    retry_interval: float = 1.0
    #: How often retention looks at age and bytes, in seconds (the run count is
    #: checked after every batch).
    retention_interval: float = 30.0
    #: The longest ``close()`` waits for the last records, in seconds.
    close_timeout: float = 10.0
    #: The longest one read runs, and a write waits for another process's, in seconds.
    read_timeout: float = 10.0
    #: Several processes (embedded controllers of several scripts) share the file:
    #: no exclusive lock; SQLite's own locking and a busy timeout serialize writes.
    shared: bool = False

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem is not None:
            raise ConfigError(problem)

    def problem(self) -> str | None:
        """Why these settings cannot work, or None."""
        if self.max_runs < 1:
            return f"max_runs must be at least 1, got {self.max_runs}"
        if not self.max_age_days > 0:
            return f"max_age_days must be above 0, got {self.max_age_days}"
        if self.max_bytes < MIN_MAX_BYTES:
            return f"max_bytes must be at least {MIN_MAX_BYTES} (1 MiB), got {self.max_bytes}"
        if self.blob_threshold < 1:
            return f"blob_threshold must be at least 1 byte, got {self.blob_threshold}"
        if not 0 < self.flush_interval <= 10:
            return (
                f"flush_interval must be above 0 and at most 10 seconds, got {self.flush_interval}"
            )
        for name in (
            "batch_max",
            "max_queued",
            "log_head",
            "log_tail",
            "preview_max",
            "report_max",
        ):
            if getattr(self, name) < 1:
                return f"{name} must be at least 1, got {getattr(self, name)}"
        for name in ("retry_interval", "retention_interval", "close_timeout", "read_timeout"):
            if not getattr(self, name) > 0:
                return f"{name} must be above 0 seconds, got {getattr(self, name)}"
        return None

    @property
    def blob_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".blobs")

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    @classmethod
    def from_env(cls, directory: Path | None = None, **overrides: object) -> StoreSettings:
        """The settings from the environment (see the module's table).

        ``directory`` is the state dir (default: :func:`reuse_runtime.paths.state_dir`);
        ``overrides`` set fields directly. A variable that does not parse raises
        :class:`~reuse_runtime.errors.ConfigError` naming it.
        """
        explicit = os.environ.get(PATH_ENV, "")
        path = Path(explicit) if explicit else (directory or state_dir()) / FILE_NAME
        settings = cls(
            path=path,
            max_runs=env_number(
                MAX_RUNS_ENV,
                10_000,
                int,
                valid=lambda n: n >= 1,
                needs="a whole number of runs, at least 1",
                error=ConfigError,
            ),
            max_age_days=env_number(
                MAX_AGE_ENV,
                30.0,
                float,
                valid=lambda days: days > 0,
                needs="a number of days above 0",
                error=ConfigError,
            ),
            max_bytes=_size(MAX_BYTES_ENV, 2 * GiB, least=MIN_MAX_BYTES, needs="1Mi"),
            blob_threshold=_size(BLOB_ENV, 64 * KiB, least=1, needs="1"),
            flush_interval=env_number(
                FLUSH_ENV,
                25.0,
                float,
                valid=lambda ms: 0 < ms <= 10_000,
                needs="a number of milliseconds above 0, at most 10000",
                error=ConfigError,
            )
            / 1000,
        )
        return replace(settings, **overrides) if overrides else settings  # type: ignore[arg-type]


def _size(name: str, default: int, *, least: int, needs: str) -> int:
    try:
        return env_size(
            name, default, least=least, needs=f"a size in bytes like 2Gi, at least {needs}"
        )
    except PolicyError as exc:  # one line, as a ConfigError like the other settings'
        raise ConfigError(str(exc)) from None


def recording_wanted() -> bool:
    """``$REUSE_RUNTIME_RUNS_RECORD``: a controller records its runs unless it is 0 (or
    false, no, off). Raises :class:`~reuse_runtime.errors.ConfigError` for another value."""
    value = os.environ.get(RECORD_ENV, "").strip().lower()
    if value in ("", "1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{RECORD_ENV} must be 1 or 0, got {value!r}")
