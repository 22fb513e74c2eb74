"""`WebUI`: the web UI's HTTP server, in the event loop of whoever starts it.

The controller starts one beside its gRPC server (``--ui-port``), the embedded
default on a free loopback port, and ``reuse-runtime ui`` over a runs store
alone::

    from reuse_runtime.store import SqliteRunReader
    from reuse_runtime.ui import WebUI

    async with WebUI(SqliteRunReader(path), token="s3cret", port=0) as ui:
        print(ui.url)                 # http://127.0.0.1:PORT
        print(ui.run_url("my-run"))   # a run's page

It installs no signal handler (aiohttp's runner with ``handle_signals=False``),
logs no request, and while no browser asks for anything it costs one sample of
the controller's counters every :data:`~reuse_runtime.ui.history.SAMPLE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import structlog
from aiohttp import web

from reuse_runtime.aio import TaskSet
from reuse_runtime.store.interface import RunReader
from reuse_runtime.ui.app import build_app
from reuse_runtime.ui.auth import Sessions
from reuse_runtime.ui.context import UiContext, templates
from reuse_runtime.ui.history import SAMPLE_SECONDS, PoolHistory
from reuse_runtime.ui.live import Abort, LiveState, Signal

log = structlog.get_logger("reuse_runtime.ui")

#: Reader threads: store reads and rendering, off the event loop.
READERS = 2
#: Seconds open connections get to finish when the UI closes.
SHUTDOWN_GRACE = 2.0


class WebUI:
    """The web UI over ``reader`` (and ``live``, a running controller, when there is one).

    ``token`` is what a person logs in with: the controller's own. ``abort`` ends a
    run and ``signal`` signals a run's condition (the state changes the UI makes);
    without them the UI only reads. It listens
    on ``host:port``, or on ``sock``, a socket already listening. With an
    ``ssl_context`` it serves HTTPS. ``close()`` is idempotent and safe before
    ``start()``.
    """

    def __init__(
        self,
        reader: RunReader,
        *,
        token: str,
        live: LiveState | None = None,
        abort: Abort | None = None,
        signal: Signal | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        sock: socket.socket | None = None,
        ssl_context: ssl.SSLContext | None = None,
        sample_interval: float = SAMPLE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self.port = port
        self._sock = sock
        if sock is not None:
            self.host, self.port = str(sock.getsockname()[0]), int(sock.getsockname()[1])
        self._ssl = ssl_context
        self._live = live
        self._sessions = Sessions(token, clock=clock)
        self._context = UiContext(
            reader=reader,
            sessions=self._sessions,
            templates=templates(),
            history=PoolHistory(interval=sample_interval),
            executor=ThreadPoolExecutor(READERS, thread_name_prefix="reuse-runtime-ui"),
            live=live,
            abort=abort,
            signal=signal,
            secure=ssl_context is not None,
            clock=clock,
        )
        self._runner: web.AppRunner | None = None
        self._tasks = TaskSet("ui")
        self._closed = False

    @property
    def url(self) -> str:
        """Where the UI is served (``http://HOST:PORT``); "" before ``start()``."""
        if self._runner is None:
            return ""
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self._ssl else 'http'}://{host}:{self.port}"

    def run_url(self, run: str) -> str:
        """The page of ``run``."""
        return f"{self.url}/runs/{quote(run, safe='')}"

    def login_link(self, target: str = "/runs") -> str:
        """A link that logs one browser in once, within minutes (it holds a single-use
        code, not the token): what ``reuse-runtime ui`` prints."""
        code = self._sessions.link_code()
        return f"{self.url}/login?code={code}&next={quote(target, safe='/')}"

    async def start(self) -> None:
        runner = web.AppRunner(
            build_app(self._context),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=SHUTDOWN_GRACE,
        )
        await runner.setup()
        try:
            site: web.BaseSite
            if self._sock is not None:
                site = web.SockSite(runner, self._sock, ssl_context=self._ssl)
            else:
                site = web.TCPSite(runner, self.host, self.port, ssl_context=self._ssl)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = _bound_port(runner, self.port)
        if self._live is not None:
            self._tasks.spawn(self._sample(self._live), "history")
        log.info("web ui started", url=self.url)

    async def _sample(self, live: LiveState) -> None:
        history, clock = self._context.history, self._context.clock
        while True:
            history.record(clock(), live.counters())
            await asyncio.sleep(history.interval)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._tasks.cancel_all("web ui closing")
        if self._runner is not None:
            # Open connections (a browser's keep-alive, a poll under way) get a grace.
            await self._runner.cleanup()
        self._context.executor.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> WebUI:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _bound_port(runner: web.AppRunner, asked: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return asked
