"""This user's state directory: run logs, replica logs, and the tokens of local servers.

Everything here is private: the directory is mode 0700 and files that hold an
address or a token are created 0600, so another user on the machine can read
none of it (``$REUSE_RUNTIME_HOME``, else ``~/.cache/reuse-runtime``).

A controller or worker started without a token or mTLS makes a random token
(loopback is no boundary on a shared machine) and records it here, under its
port (:func:`record_server`). A client of the same user that connects to a
loopback address without credentials finds it there (:func:`with_local_token`);
nobody else can.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path

from reuse_runtime.security import Security, is_loopback

HOME_ENV = "REUSE_RUNTIME_HOME"
SERVERS = "servers"


def state_dir() -> Path:
    """Where runs' logs and the embedded controller's address are kept."""
    explicit = os.environ.get(HOME_ENV)
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(cache) / "reuse-runtime"


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


def server_record(port: int) -> Path:
    return state_dir() / SERVERS / f"{port}.json"


def record_server(kind: str, address: str, port: int, token: str) -> Path:
    """Record a loopback server's made-up token (mode 0600) for this user's clients."""
    path = server_record(port)
    info = {"kind": kind, "address": address, "pid": os.getpid(), "token": token}
    write_private(path, json.dumps(info))
    _prune(path.parent)
    return path


def _prune(directory: Path) -> None:
    """Remove the records of servers that are gone (killed before they could)."""
    for record in directory.glob("*.json"):
        try:
            os.kill(int(json.loads(record.read_text())["pid"]), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                record.unlink()
        except (OSError, ValueError, KeyError, TypeError):
            continue


def forget_server(port: int) -> None:
    path = server_record(port)
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


def local_token(address: str) -> str | None:
    """The recorded token of the live local server at ``address``, if there is one."""
    host, _, port = address.rpartition(":")
    if not port.isdigit() or not is_loopback(host.strip("[]") or "localhost"):
        return None
    try:
        info = json.loads(server_record(int(port)).read_text())
        os.kill(int(info["pid"]), 0)  # a record of a server that is gone is stale
        return str(info["token"]) or None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def with_local_token(security: Security, address: str) -> Security:
    """``security``, or, if it carries no credentials, the local server's recorded token."""
    if security.authenticated:
        return security
    token = local_token(address)
    return dataclasses.replace(security, token=token) if token else security
