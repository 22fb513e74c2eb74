"""The UI's aiohttp application: its routes, the guard in front of them, its headers.

Pages (``/runs``, ``/runs/{run}``, ...) answer a visitor without a session with a
redirect to ``/login``; everything under ``/api/`` (the fragments the pages load,
the JSON of the charts, the abort) answers 401. Static files (the vendored
htmx and Chart.js, the UI's own CSS and JS) are public.

Store reads and template rendering run in the UI's own reader threads
(:meth:`UiContext.off_loop`), so a slow page never holds up the controller's
event loop; the live state is read on the loop, as its protocol requires.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from reuse_runtime.store.errors import StoreError
from reuse_runtime.ui import api, format, pages
from reuse_runtime.ui.auth import COOKIE
from reuse_runtime.ui.context import (
    CONTEXT,
    PAGE_POLICY,
    UiContext,
    context,
    own_origin,
    static_dir,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

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


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every answer; store failures as one line, not a traceback."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _secure(request, exc)
        raise
    except StoreError as exc:
        response = web.Response(status=503, text=f"the runs store cannot be read: {exc}")
    _secure(request, response)
    return response


def _secure(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Not no-referrer: under it a browser sends "Origin: null" with the UI's own forms.
    response.headers["Referrer-Policy"] = "same-origin"
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    elif "v" in request.query:  # a versioned name: its content never changes
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"


def build_app(ctx: UiContext) -> web.Application:
    """The application, its routes and middlewares, sharing ``ctx``."""
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
    app.router.add_post("/api/runs/{run}/conditions/{action}/signal", api.signal_condition)
    app.router.add_get("/api/runs/{run}/actions/{action}/panel", api.action_panel)
    app.router.add_get("/api/runs/{run}/actions/{action}/facts", api.action_facts)
    app.router.add_get("/api/runs/{run}/actions/{action}/logs", api.logs)
    app.router.add_get("/api/runs/{run}/actions/{action}/search", api.search)
    app.router.add_get("/api/runs/{run}/actions/{action}/report", api.report)
    app.router.add_get("/api/environments/panel", api.environments_panel)
    app.router.add_get("/api/environments/history", api.history)
    static = app.router.add_static("/static/", static_dir(), name="static")
    assert isinstance(static, web.StaticResource)
    versions: dict[str, str] = {}

    def versioned(name: str) -> str:
        """``/static/NAME?v=DIGEST``: a browser keeps it until the file changes."""
        if name not in versions:
            versions[name] = str(static.url_for(filename=name, append_version=True))
        return versions[name]

    ctx.templates.globals["static"] = versioned
    return app
