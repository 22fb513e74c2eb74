"""Where reuse-runtime keeps its files on this machine.

Everything lives under one private state directory: runs' logs, the embedded
controller's address, the result cache, and the file store behind
``flyte.io.File``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

HOME_ENV = "REUSE_RUNTIME_HOME"
STORE_ENV = "REUSE_RUNTIME_STORE"
#: "0" in a replica whose file store is its own, not this machine's (Kubernetes, a remote
#: container engine): what it writes there, no other replica reads.
STORE_SHARED_ENV = "REUSE_RUNTIME_STORE_SHARED"
#: Where a replica unpacks code bundles (``reuse-runtime worker --code-dir``).
CODE_DIR_ENV = "REUSE_RUNTIME_CODE_DIR"


def state_dir() -> Path:
    """Where runs' logs and the embedded controller's address are kept.

    ``$REUSE_RUNTIME_HOME``, else ``$XDG_CACHE_HOME/reuse-runtime``, else
    ``~/.cache/reuse-runtime``.
    """
    explicit = os.environ.get(HOME_ENV)
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(cache) / "reuse-runtime"


def store_dir() -> Path:
    """The file store of ``flyte.io.File`` and ``Dir``: ``$REUSE_RUNTIME_STORE``, else
    ``state_dir() / "store"``. Replicas read it at the same absolute path (the
    container backend mounts it there)."""
    explicit = os.environ.get(STORE_ENV)
    return Path(explicit).resolve() if explicit else state_dir().resolve() / "store"


def code_dir() -> Path:
    """Where a replica unpacks the code bundles it fetches, one folder per digest:
    ``$REUSE_RUNTIME_CODE_DIR``, else ``state_dir() / "code"``."""
    explicit = os.environ.get(CODE_DIR_ENV)
    return Path(explicit) if explicit else state_dir() / "code"


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) readable by this user only: mode 0700.

    The state directory holds the embedded controller's address and token, and
    every run's output, so nobody else on the machine may read it.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, created mode 0600 (never readable by others)."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
