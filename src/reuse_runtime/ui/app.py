"""The UI's aiohttp application: its routes, its guard, and what every handler shares.

Pages (``/runs``, ``/runs/{run}``, ...) answer a visitor without a session with a
redirect to ``/login``; everything under ``/api/`` (the fragments the pages load,
the JSON of the charts, the abort) answers 401. Static files (the vendored
htmx and Chart.js, the UI's own CSS and JS) are public.

Store reads and template rendering run in the UI's own reader threads
(:meth:`UiContext.off_loop`), so a slow page never holds up the controller's
event loop; the live state is read on the loop, as its protocol requires.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from aiohttp import web

from reuse_runtime.store.errors import StoreError
from reuse_runtime.store.interface import RunReader
from reuse_runtime.ui import format
from reuse_runtime.ui.auth import COOKIE, Sessions
from reuse_runtime.ui.history import PoolHistory
from reuse_runtime.ui.live import Abort, LiveState

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

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
    secure: bool = False
    clock: Callable[[], float] = time.time

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
    """The nonce of the request's session (the guard let it through)."""
    return str(request["session"])


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


# ------------------------------------------------------------------ middlewares


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No session, no page (a redirect to the login) and no API (401); a POST must carry
    the session's CSRF token, and come from this server's own pages."""
    path = request.path
    if path.startswith("/static/") or path in ("/login", "/favicon.ico"):
        return await handler(request)
    ctx = context(request)
    nonce = ctx.sessions.verify(request.cookies.get(COOKIE))
    if nonce is None:
        if path.startswith("/api/"):
            return web.json_response(
                {"error": "log in first: POST the token to /login"}, status=401
            )
        raise web.HTTPSeeOther(f"/login?{format.query(next=request.path_qs)}")
    request["session"] = nonce
    if request.method not in ("GET", "HEAD"):
        await _check_post(request, ctx, nonce)
    return await handler(request)


async def _check_post(request: web.Request, ctx: UiContext, nonce: str) -> None:
    origin = request.headers.get("Origin")
    if origin is not None and origin != own_origin(request, ctx):
        raise web.HTTPForbidden(text="refused: this request came from another site's page")
    given = request.headers.get("X-CSRF-Token", "")
    if not given and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        given = str((await request.post()).get("csrf", ""))
    if not ctx.sessions.csrf_matches(nonce, given):
        raise web.HTTPForbidden(text="refused: the form's CSRF token is missing or stale; reload")


def own_origin(request: web.Request, ctx: UiContext) -> str:
    return f"{'https' if ctx.secure else 'http'}://{request.host}"


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every answer; store failures as one line, not a traceback."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    except StoreError as exc:
        response = web.Response(status=503, text=f"the runs store cannot be read: {exc}")
    response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Not no-referrer: under it a browser sends "Origin: null" with the UI's own forms.
    response.headers["Referrer-Policy"] = "same-origin"
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response


def build_app(ctx: UiContext) -> web.Application:
    """The application, its routes and middlewares, sharing ``ctx``."""
    from reuse_runtime.ui import api, pages

    app = web.Application(middlewares=[headers, guard], client_max_size=64 * 1024)
    app[CONTEXT] = ctx
    app.router.add_get("/", pages.home)
    app.router.add_get("/favicon.ico", pages.no_icon)
    app.router.add_get("/login", pages.login_form)
    app.router.add_post("/login", pages.login)
    app.router.add_post("/logout", pages.logout)
    app.router.add_get("/runs", pages.runs)
    app.router.add_get("/runs/{run}", pages.run)
    app.router.add_get("/runs/{run}/actions/{action}", pages.action)
    app.router.add_get("/environments", pages.environments)
    app.router.add_get("/api/runs", api.runs_json)
    app.router.add_get("/api/runs/table", api.runs_table)
    app.router.add_get("/api/runs/{run}", api.run_json)
    app.router.add_get("/api/runs/{run}/header", api.run_header)
    app.router.add_get("/api/runs/{run}/children", api.children)
    app.router.add_get("/api/runs/{run}/timeline", api.timeline)
    app.router.add_post("/api/runs/{run}/abort", api.abort)
    app.router.add_get("/api/runs/{run}/actions/{action}/panel", api.action_panel)
    app.router.add_get("/api/runs/{run}/actions/{action}/logs", api.logs)
    app.router.add_get("/api/runs/{run}/actions/{action}/search", api.search)
    app.router.add_get("/api/runs/{run}/actions/{action}/report", api.report)
    app.router.add_get("/api/environments/panel", api.environments_panel)
    app.router.add_get("/api/environments/history", api.history)
    app.router.add_static("/static/", static_dir(), append_version=False)
    return app
