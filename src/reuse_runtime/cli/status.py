"""``reuse-runtime status``: a controller's environments and replicas, once or live.

What it shows, and the live view, are :mod:`reuse_runtime.cli.status_view`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import time
from typing import TYPE_CHECKING

from reuse_runtime.cli.common import (
    Commands,
    add_command,
    add_security_flags,
    default_port,
    install_signal_handlers,
    security_from,
)
from reuse_runtime.security import Security

if TYPE_CHECKING:
    from reuse_runtime.client import ControllerClient
    from reuse_runtime.model import ControllerStatus
    from reuse_runtime.sdk.embedded import EmbeddedRecord


def add_parser(commands: Commands) -> None:
    p = add_command(commands, "status", "show environments and replicas of a controller")
    p.add_argument(
        "--endpoint",
        metavar="HOST:PORT",
        help="controller address, HOST:PORT or dns:///HOST:PORT (default: "
        "$REUSE_RUNTIME_ENDPOINT, else the most recent embedded controller, "
        "else a controller on this machine's default port)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--watch",
        action="store_true",
        help="a live view, refreshed in place (q or Ctrl-C quits); printed again and again "
        "when stdout is not a terminal",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="with --watch, seconds between refreshes (default 1)",
    )
    add_security_flags(p)
    p.set_defaults(main=_status_main)


async def _status_main(args: argparse.Namespace) -> int:
    from reuse_runtime.address import parse_address
    from reuse_runtime.client import ControllerClient
    from reuse_runtime.sdk.runtime import ENDPOINT_ENV

    security = security_from(args)
    given = args.endpoint or os.environ.get(ENDPOINT_ENV)
    if given:
        given = str(parse_address(given, "--endpoint" if args.endpoint else f"${ENDPOINT_ENV}"))
    if args.watch:
        from reuse_runtime.cli.status_view import watch

        if args.json:
            raise ValueError("--watch shows tables; for JSON, call status --json repeatedly")
        if args.interval <= 0:
            raise ValueError(f"--interval must be above 0 seconds, got {args.interval:g}")
        stop = asyncio.Event()
        install_signal_handlers(lambda name: stop.set())  # Ctrl-C quits, like q
        async with WatchedController(given, security) as watched:
            await watch(watched.status, interval=args.interval, stop=stop)
        return 0
    endpoint, security = await _find(given, security)
    async with ControllerClient(endpoint, security) as client:
        await client.wait_ready(timeout=5)
        status = await client.status()
    if args.json:
        print(json.dumps(dataclasses.asdict(status), indent=2))
    else:
        from reuse_runtime.cli.status_view import print_status

        print_status(status)
    return 0


async def _find(given: str | None, security: Security) -> tuple[str, Security]:
    """The controller to ask: ``given``, else the live embedded one, else the default port's.

    None of them: a :class:`ControllerUnavailableError` saying what there was.
    """
    from reuse_runtime.errors import ControllerUnavailableError
    from reuse_runtime.sdk.embedded import embedded_record

    found = await _look(given, security)
    if found is not None:
        return found
    default = f"127.0.0.1:{default_port()}"
    record = embedded_record()
    if record is not None and not record.serving:
        raise ControllerUnavailableError(
            f"no controller to ask: {_ended(record)}; none listens on {default} either. Start "
            f"a run, or pass --endpoint HOST:PORT or set $REUSE_RUNTIME_ENDPOINT"
        )
    raise ControllerUnavailableError(
        f"no controller to ask: none was started by a run here, and none listens on "
        f"{default}; pass --endpoint HOST:PORT or set $REUSE_RUNTIME_ENDPOINT"
    )


async def _look(given: str | None, security: Security) -> tuple[str, Security] | None:
    from reuse_runtime.sdk.embedded import embedded_controller

    if given:
        return given, security
    embedded = embedded_controller()
    if embedded is not None:
        if not security.authenticated and embedded.token:
            security = dataclasses.replace(security, token=embedded.token)
        return embedded.address, security
    # No run's embedded controller: a standalone one on the default port, if any.
    default = f"127.0.0.1:{default_port()}"
    return (default, security) if await _answers(default, security) else None


def _ended(record: EmbeddedRecord) -> str:
    """One clause: which run's controller it was, that it ended with its process, its record."""
    at = f" at {time.strftime('%H:%M:%S', time.localtime(record.ended))}" if record.ended else ""
    whose = f"run {record.run}" if record.run else f"process {record.pid} (it started no run)"
    where = f"; the run's record is {record.record}" if record.record else ""
    return (
        f"the embedded controller of {whose} ended with its process (pid {record.pid}){at}{where}"
    )


class WatchedController:
    """The controller ``status --watch`` shows: found as ``status`` finds one, again when it ends.

    :meth:`status` is the view's ``fetch``. When there is no controller to ask,
    or the one it asked has gone, it raises :class:`ControllerUnavailableError`
    with one line saying so (the same line while nothing changes), and the next
    call looks again: a given endpoint comes back, or a new run starts the next
    embedded controller.
    """

    def __init__(self, given: str | None, security: Security) -> None:
        self._given = given
        self._security = security
        self._client: ControllerClient | None = None
        self._endpoint = ""
        self._line = ""  # the last line said for no controller

    async def __aenter__(self) -> WatchedController:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._drop()

    async def status(self) -> ControllerStatus:
        from reuse_runtime.errors import ControllerUnavailableError

        if self._client is None:
            await self._connect()
        assert self._client is not None
        try:
            status = await self._client.status()
        except ControllerUnavailableError:
            gone = self._endpoint
            await self._drop()
            raise ControllerUnavailableError(self._absent(gone)) from None
        self._line = ""
        return status

    async def _connect(self) -> None:
        from reuse_runtime.client import ControllerClient
        from reuse_runtime.errors import ControllerUnavailableError

        found = await _look(self._given, self._security)
        if found is None:
            raise ControllerUnavailableError(self._absent(""))
        client = ControllerClient(*found)
        try:
            await client.wait_ready(timeout=_READY_SECONDS)
        except ControllerUnavailableError:
            await client.close()
            raise ControllerUnavailableError(self._absent(found[0])) from None
        except BaseException:
            await client.close()
            raise
        self._client, self._endpoint = client, found[0]

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _absent(self, endpoint: str) -> str:
        """The one line for no controller to show: which ended, or where none answers."""
        from reuse_runtime.sdk.embedded import embedded_record

        record = embedded_record()
        if self._given:
            line = f"the controller at {self._given} does not answer; waiting for it"
        elif record is not None and not record.serving:
            line = f"{_ended(record)}; waiting for the next controller"
        elif record is not None and self._line:
            return self._line  # the next one is starting up: the next look finds it
        elif record is not None:
            line = f"the embedded controller at {record.address} does not answer; waiting for it"
        else:
            where = endpoint or f"127.0.0.1:{default_port()}"
            line = f"no controller (none started by a run here, none at {where}); waiting for one"
        self._line = line
        return line


#: Seconds ``status --watch`` waits for a controller it found to answer, each look.
_READY_SECONDS = 2.0


async def _answers(endpoint: str, security: Security) -> bool:
    from reuse_runtime.client import ControllerClient
    from reuse_runtime.errors import ControllerUnavailableError

    try:
        async with ControllerClient(endpoint, security) as client:
            await client.wait_ready(timeout=1)
    except ControllerUnavailableError:
        return False
    return True
