"""What of this machine a replica's container sees: the caller's code, mounted.

With an engine on this machine, the container backend mounts the caller's own
code directories read-only at their paths (:func:`code_paths`). An engine on
another host (:func:`remote_engine`) sees none of them: its replicas fetch the
project's code bundle from the controller instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from reuse_runtime.errors import PolicyError

#: ``$REUSE_RUNTIME_CONTAINER_REMOTE``: "1", the engine runs on another host; "0", on this one.
REMOTE_ENV = "REUSE_RUNTIME_CONTAINER_REMOTE"

# Directories never mounted into a replica, even when they are on sys.path.
_SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/boot", "/proc", "/sys",
                "/dev", "/run", "/var/lib")  # fmt: skip


def remote_engine(docker_host: str, setting: str = "") -> bool:
    """Whether the engine at ``docker_host`` (DOCKER_HOST form) runs on another host.

    ``setting`` (``$REUSE_RUNTIME_CONTAINER_REMOTE``) decides when given; else a
    unix socket, or TCP to a loopback address, is this machine, and anything else
    (``tcp://``, ``ssh://``, ``https://`` to another host) is remote.
    """
    if setting.strip():
        value = setting.strip().lower()
        if value not in ("1", "true", "yes", "0", "false", "no"):
            raise PolicyError(f"{REMOTE_ENV} must be 1 or 0, got {setting!r}")
        return value in ("1", "true", "yes")
    scheme, sep, rest = docker_host.strip().partition("://")
    if not sep or scheme in ("unix", "npipe", ""):
        return False
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 or "]" in host else host
    return host.strip("[]") not in ("127.0.0.1", "localhost", "::1", "")


def code_paths(working_dir: str, python_path: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(directories to mount, ``PYTHONPATH``) for the caller's own modules.

    The working directory comes first on the path, as for ``python -m``; then
    the caller's ``sys.path`` entries, in order. Left out: Python's own
    directories, site-packages (the image has its own), system directories.
    Only the outermost directories are mounted.
    """
    path: list[str] = []
    for raw in (working_dir, *python_path):
        if raw and _is_user_dir(raw):
            normalized = os.path.normpath(raw)
            if normalized not in path:
                path.append(normalized)
    mounts: list[str] = []
    for entry in sorted(path, key=len):
        if not any(entry == m or entry.startswith(m.rstrip("/") + "/") for m in mounts):
            mounts.append(entry)
    return mounts, path


def _is_user_dir(raw: str) -> bool:
    if not os.path.isabs(raw) or not os.path.isdir(raw):
        return False
    path = os.path.normpath(raw)
    parts = Path(path).parts
    if path == "/" or "site-packages" in parts or "dist-packages" in parts:
        return False
    if any(path == d or path.startswith(d + "/") for d in _SYSTEM_DIRS):
        return False
    # A Python standard library.
    return not (os.path.exists(os.path.join(path, "os.py")) or parts[-1] == "lib-dynload")


__all__ = ["REMOTE_ENV", "code_paths", "remote_engine"]
