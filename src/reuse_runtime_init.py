"""`reuse-runtime-init`: PID 1 of a replica container.

Usage (the image's entrypoint)::

    reuse-runtime-init reuse-runtime worker --controller HOST:PORT ...

It runs the worker as its child and does what a container init does, plus the
one thing an engine may get wrong:

* **Signals.** SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are
  forwarded to the worker, so ``docker stop`` / ``podman stop`` drains it.
* **Zombies.** Every orphan the kernel re-parents to PID 1 is reaped.
* **Out of memory.** When the worker is SIGKILLed and the container's memory
  cgroup counted an OOM kill meanwhile, it says so on stderr, naming the limit.
  Podman 4.3 reports ``OOMKilled=false`` for such a container, so this is the
  signal that is right on every engine. The worker's ``oom_score_adj`` is
  raised, so the kernel picks it, not this small process, at the limit.
* **An exit record.** With ``$REUSE_RUNTIME_INIT_DIR`` set (the container
  backend mounts a host directory there), the worker's stderr is copied to
  ``stderr.log`` in it and ``exit.json`` says how the worker ended, so the
  controller can read both after the engine has removed the container.
* **A termination message.** With ``$REUSE_RUNTIME_TERMINATION_LOG`` set (a
  Kubernetes pod's ``terminationMessagePath``), the same record, as one JSON
  line, and the worker's last stderr lines are written there (at most 4 KiB,
  Kubernetes' limit): the pod's status then says how the worker ended, with no
  access to its logs.

It exits as the worker did: its exit code, or 128 + the signal that killed it.

This module imports only the standard library (and not the ``reuse_runtime``
package), so it costs a few MB of the container's memory limit, not the
worker's 40.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import IO

INIT_DIR_ENV = "REUSE_RUNTIME_INIT_DIR"
TERMINATION_LOG_ENV = "REUSE_RUNTIME_TERMINATION_LOG"
#: Kubernetes keeps at most this much of a termination message.
TERMINATION_MESSAGE_LIMIT = 4096
EXIT_RECORD = "exit.json"
STDERR_LOG = "stderr.log"
#: Raised for the worker, so the OOM killer takes it rather than this process.
WORKER_OOM_SCORE_ADJ = 500
#: A cgroup v1 memory limit at or above this is "no limit" (the kernel's PAGE_COUNTER_MAX).
_UNLIMITED = 1 << 62
_FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


class MemoryCgroup:
    """The container's memory cgroup, as seen from inside (cgroup v2, else v1)."""

    def __init__(self, root: Path = Path("/sys/fs/cgroup")) -> None:
        if (root / "memory.events").exists():
            self.events, self.limit_file = root / "memory.events", root / "memory.max"
        else:
            self.events = root / "memory" / "memory.oom_control"
            self.limit_file = root / "memory" / "memory.limit_in_bytes"

    def oom_kills(self) -> int:
        """How many processes the OOM killer has killed in this cgroup (0 if unknown)."""
        try:
            for line in self.events.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def limit(self) -> int | None:
        """The memory limit in bytes, or None when there is none."""
        try:
            text = self.limit_file.read_text().strip()
        except OSError:
            return None
        if not text.isdigit():
            return None  # "max": cgroup v2's "no limit"
        value = int(text)
        return value if value < _UNLIMITED else None


def describe_bytes(value: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:.4g} {unit}"
    return f"{value} bytes"


def _raise_oom_score() -> None:
    # Runs in the child between fork and exec. Raising one's own score needs no privilege.
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text(str(WORKER_OOM_SCORE_ADJ))


def _copy_stderr(source: IO[bytes], log: IO[bytes] | None, tail: deque[bytes]) -> None:
    """Copy the worker's stderr to ours (the container log) and to the log file."""
    out = sys.stderr.buffer
    for line in iter(source.readline, b""):
        out.write(line)
        out.flush()
        tail.append(line)
        if log is not None:
            log.write(line)
            log.flush()


def run(
    command: list[str],
    record_dir: Path | None,
    cgroup: MemoryCgroup,
    termination_log: Path | None = None,
) -> int:
    """Run ``command`` as the worker; returns the exit code to exit with."""
    oom_before = cgroup.oom_kills()
    log = (record_dir / STDERR_LOG).open("ab") if record_dir is not None else None
    tail: deque[bytes] = deque(maxlen=40)
    piped = log is not None or termination_log is not None
    # Signals that arrive before the child exists are kept and sent once it does.
    pending: list[int] = []
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: object) -> None:
        if child is None:
            pending.append(signum)
        else:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    try:
        child = subprocess.Popen(
            command,
            stderr=subprocess.PIPE if piped else None,
            preexec_fn=_raise_oom_score,  # no threads exist yet, so this is safe
        )
    except OSError as exc:
        print(f"reuse-runtime-init: cannot start {command[0]!r}: {exc}", file=sys.stderr)
        return 127
    copier = None
    if child.stderr is not None:
        copier = threading.Thread(target=_copy_stderr, args=(child.stderr, log, tail), daemon=True)
        copier.start()
    for early in pending:
        child.send_signal(early)
    status = _reap_until(child.pid)
    if copier is not None:
        # A grandchild may hold the pipe open; the worker's own lines are in by now.
        copier.join(timeout=2.0)
    code, killed_by = _decode(status)
    oom = killed_by == signal.SIGKILL and cgroup.oom_kills() > oom_before
    limit = cgroup.limit()
    if oom:
        where = f"its memory limit of {describe_bytes(limit)}" if limit else "the memory available"
        message = (
            f"reuse-runtime-init: out of memory: the kernel's OOM killer ended the worker "
            f"(pid {child.pid}) when the container reached {where}\n"
        )
        sys.stderr.write(message)
        sys.stderr.flush()
        if log is not None:
            log.write(message.encode())
    if log is not None:
        log.close()
    record = {"code": code, "signal": killed_by, "oom": oom, "memory_limit": limit}
    if record_dir is not None:
        tmp = record_dir / f".{EXIT_RECORD}.tmp"
        tmp.write_text(json.dumps(record))
        tmp.replace(record_dir / EXIT_RECORD)
    if termination_log is not None:
        if oom:
            tail.append(message.encode())
        write_termination_message(termination_log, record, list(tail))
    return code


def write_termination_message(path: Path, record: Mapping[str, object], tail: list[bytes]) -> None:
    """The record as one JSON line, then as many of the last stderr lines as fit in 4 KiB."""
    head = json.dumps(record).encode() + b"\n"
    room = TERMINATION_MESSAGE_LIMIT - len(head)
    kept: list[bytes] = []
    for line in reversed(tail):
        if len(line) > room:
            break
        kept.insert(0, line)
        room -= len(line)
    try:
        path.write_bytes(head + b"".join(kept))
    except OSError as exc:
        print(f"reuse-runtime-init: cannot write {path}: {exc}", file=sys.stderr)


def _reap_until(pid: int) -> int:
    """Reap every child (orphans included) until ``pid`` has ended; returns its status."""
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        except InterruptedError:  # pragma: no cover - PEP 475 retries for us
            continue
        if reaped == pid:
            return status


def _decode(status: int) -> tuple[int, int | None]:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        return 128 + signum, signum
    return os.waitstatus_to_exitcode(status), None


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 2
    raw_dir = os.environ.get(INIT_DIR_ENV)
    record_dir = Path(raw_dir) if raw_dir else None
    if record_dir is not None and not record_dir.is_dir():
        print(f"reuse-runtime-init: {INIT_DIR_ENV}={raw_dir} is not a directory", file=sys.stderr)
        record_dir = None
    raw_log = os.environ.get(TERMINATION_LOG_ENV)
    return run(args, record_dir, MemoryCgroup(), Path(raw_log) if raw_log else None)


if __name__ == "__main__":
    sys.exit(main())
