"""What every handler of the UI shares: the store, the live controller, the sessions,
the templates, and the reader threads where store reads and rendering run."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from aiohttp import web

from reuse_runtime.store.interface import RunReader
from reuse_runtime.ui import format
from reuse_runtime.ui.auth import COOKIE, Sessions
from reuse_runtime.ui.history import PoolHistory
from reuse_runtime.ui.live import Abort, LiveState, Signal
from reuse_runtime.ui.tree import CountsCache

T = TypeVar("T")

#: The policy of every page: nothing but this server's own scripts and styles.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)
#: The policy of a report: the task's own HTML, scripts and all, in an opaque origin.
REPORT_POLICY = (
    "sandbox allow-scripts allow-popups allow-forms allow-modals; frame-ancestors 'self'"
)


@dataclass
class UiContext:
    """What the handlers share: the store, the live controller (or None), the sessions."""

    reader: RunReader
    sessions: Sessions
    templates: jinja2.Environment
    history: PoolHistory
    executor: ThreadPoolExecutor
    live: LiveState | None = None
    abort: Abort | None = None
    signal: Signal | None = None
    secure: bool = False
    clock: Callable[[], float] = time.time
    counts: CountsCache = field(default_factory=CountsCache)

    async def off_loop(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a reader thread (store reads, rendering)."""
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await loop.run_in_executor(self.executor, call)

    def render(self, template: str, **values: Any) -> str:
        return self.templates.get_template(template).render(
            now=self.clock(), has_live=self.live is not None, **values
        )


CONTEXT: web.AppKey[UiContext] = web.AppKey("reuse_runtime_ui", UiContext)


def context(request: web.Request) -> UiContext:
    return request.app[CONTEXT]


def session_of(request: web.Request) -> str:
    """The nonce of the request's session (the guard let it through: it has one)."""
    return context(request).sessions.verify(request.cookies.get(COOKIE)) or ""


def templates() -> jinja2.Environment:
    """The UI's templates, escaping every value unless a template says otherwise."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reuse_runtime.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    format.install(env)
    return env


def static_dir() -> Path:
    return Path(str(resources.files("reuse_runtime.ui") / "static"))


def own_origin(request: web.Request, ctx: UiContext) -> str:
    return f"{'https' if ctx.secure else 'http'}://{request.host}"
