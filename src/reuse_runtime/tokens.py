"""The tokens local servers make up, kept where only their own user can read them.

They live in the private state directory (:mod:`reuse_runtime.paths`: mode 0700,
files 0600), so another user on the machine can read none of them.

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

from reuse_runtime.address import parse_address
from reuse_runtime.errors import ConfigError
from reuse_runtime.paths import state_dir, write_private
from reuse_runtime.security import Security, is_loopback

SERVERS = "servers"


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
    try:
        where = parse_address(address)
    except ConfigError:
        return None
    if not is_loopback(where.host):
        return None
    try:
        info = json.loads(server_record(where.port).read_text())
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
