"""``reuse-runtime ui``: the web UI over a runs store, after its controller has gone.

It reads the store (read-only; a controller may be writing it meanwhile), shows
runs, their trees, logs and reports, and changes nothing: with no controller
there are no replicas to show and no run to abort.
"""

from __future__ import annotations

import argparse
import errno
import secrets
from pathlib import Path

from reuse_runtime.cli.common import (
    DEFAULT_UI_PORT,
    UI_PORT_ENV,
    Commands,
    add_command,
    install_signal_handlers,
    ui_port,
)
from reuse_runtime.errors import ReuseRuntimeError
from reuse_runtime.security import Security


def add_parser(commands: Commands) -> None:
    p = add_command(commands, "ui", "serve the web UI over a runs store, with no controller")
    p.add_argument(
        "--store",
        type=Path,
        default=None,
        metavar="PATH",
        help="the runs store to read (default: $REUSE_RUNTIME_RUNS_DB, else runs.sqlite in "
        "the state directory)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"port to bind (default {DEFAULT_UI_PORT}, or ${UI_PORT_ENV}; when that one is "
        f"taken, a free port; 0 picks one)",
    )
    p.add_argument(
        "--token",
        help="the token to log in with (default: $REUSE_RUNTIME_TOKEN, else the file named by "
        "$REUSE_RUNTIME_TOKEN_FILE, else a random one: use the login link printed)",
    )
    p.set_defaults(main=_ui_main)


async def _ui_main(args: argparse.Namespace) -> int:
    import asyncio

    from reuse_runtime.store import SqliteRunReader, StoreSettings
    from reuse_runtime.ui import WebUI

    path = args.store or StoreSettings.from_env().path
    if not path.is_file():
        raise ReuseRuntimeError(
            f"there is no runs store at {path}: a controller makes one when it runs something "
            f"(or name one with --store)"
        )
    token = Security.from_env(args.token).token
    if args.host not in ("127.0.0.1", "localhost", "::1") and not token:
        raise ReuseRuntimeError(
            f"refusing to serve runs on {args.host} with a token nobody was told: set one "
            f"(--token or $REUSE_RUNTIME_TOKEN), or bind to 127.0.0.1"
        )
    port, fallback = ui_port(args.port)
    reader = SqliteRunReader(path)
    stop = asyncio.Event()
    install_signal_handlers(lambda _name: stop.set())
    ui = WebUI(reader, token=token or secrets.token_urlsafe(32), host=args.host, port=port)
    try:
        try:
            await ui.start()
        except OSError as exc:
            if not (fallback and exc.errno == errno.EADDRINUSE):
                raise ReuseRuntimeError(
                    f"cannot listen on {args.host}:{port}: {exc.strerror}; choose another --port"
                ) from None
            await ui.close()
            ui = WebUI(reader, token=token or secrets.token_urlsafe(32), host=args.host, port=0)
            await ui.start()
        print(f"web UI on {ui.url}, reading {path}", flush=True)
        print(f"log in once with {ui.login_link()} (good for 10 minutes)", flush=True)
        await stop.wait()
    finally:
        await ui.close()
        reader.close_reads()
    return 0
