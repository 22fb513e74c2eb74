"""The UI's pages: the login, the runs, a run, an action, the environments.

Each page is rendered whole on the server; the parts that change while a run runs
(its header, its tree's lists, an action's log, the environments' replicas) are
fragments of :mod:`reuse_runtime.ui.api` that the page polls with htmx.
"""

from __future__ import annotations

from aiohttp import web

from reuse_runtime.store.phases import ActionPhase
from reuse_runtime.store.views import RunFilter
from reuse_runtime.ui import views
from reuse_runtime.ui.auth import COOKIE, SESSION_SECONDS, safe_next
from reuse_runtime.ui.context import context, own_origin, session_of


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html")


async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/runs")


async def no_icon(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


# ------------------------------------------------------------------ login


async def login_form(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    target = safe_next(request.query.get("next"))
    code = request.query.get("code")
    if code is not None:
        # A single-use login link: the code is spent, and the answer's URL carries nothing.
        if ctx.sessions.redeem(code):
            return _logged_in(request, target)
        return _html(ctx.render("login.html", next=target, failed="that login link was used "
                                "or has expired"), status=401)  # fmt: skip
    if ctx.sessions.verify(request.cookies.get(COOKIE)) is not None:
        raise web.HTTPSeeOther(target)
    return _html(ctx.render("login.html", next=target, failed=""))


async def login(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    origin = request.headers.get("Origin")
    if origin is not None and origin != own_origin(request, ctx):
        raise web.HTTPForbidden(text="refused: a login from another site's page")
    form = await request.post()
    target = safe_next(str(form.get("next", "")))
    if ctx.sessions.throttled():
        return _html(
            ctx.render("login.html", next=target, failed="too many failed logins; wait a minute"),
            status=429,
        )
    if not ctx.sessions.token_matches(str(form.get("token", ""))):
        return _html(ctx.render("login.html", next=target, failed="that is not the token"), 401)
    return _logged_in(request, target)


def _logged_in(request: web.Request, target: str) -> web.StreamResponse:
    ctx = context(request)
    response = web.Response(status=303, headers={"Location": target})
    response.set_cookie(
        COOKIE,
        ctx.sessions.issue(),
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=ctx.secure,
    )
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    response = web.Response(status=303, headers={"Location": "/login"})
    response.del_cookie(COOKIE, path="/")
    return response


# ------------------------------------------------------------------ runs


def run_filter(query: web.Request) -> tuple[RunFilter, dict[str, str]]:
    """The runs filter of a request's query (``phase``, ``env``, ``name``), and its values."""
    values = {key: query.query.get(key, "").strip() for key in ("phase", "env", "name")}
    phases: tuple[ActionPhase, ...] = ()
    if values["phase"]:
        try:
            phases = (ActionPhase(values["phase"]),)
        except ValueError:
            raise web.HTTPBadRequest(text=f"{values['phase']!r} is not a phase") from None
    where = RunFilter(
        phases=phases,
        environment=values["env"] or None,
        name_contains=values["name"] or None,
    )
    return where, values


async def runs(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    where, values = run_filter(request)
    cursor = request.query.get("cursor") or None
    listing = await ctx.off_loop(views.runs_listing, ctx, where, cursor)
    environments = sorted({e.name for e in ctx.live.environments()}) if ctx.live else []
    return _html(
        await ctx.off_loop(
            ctx.render,
            "runs.html",
            listing=listing,
            filters=values,
            cursor=cursor,
            phases=[p.value for p in ActionPhase],
            environments=environments,
            csrf=ctx.sessions.csrf(session_of(request)),
        )
    )


async def run(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    name = request.match_info["run"]
    tab = request.query.get("tab", "actions")
    if tab not in ("actions", "timeline"):
        tab = "actions"
    header = await views.run_header(ctx, name)
    if header is None:
        return _html(ctx.render("missing.html", what=f"run {name}"), status=404)
    tree = None
    if tab == "actions":
        tree = await views.root_tree(ctx, header.run)
    return _html(
        await ctx.off_loop(
            ctx.render,
            "run.html",
            header=header,
            tree=tree,
            tab=tab,
            csrf=ctx.sessions.csrf(session_of(request)),
        )
    )


async def action(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    name, action_id = request.match_info["run"], request.match_info["action"]
    tab = request.query.get("tab", "logs")
    panel = await views.action_panel(ctx, name, action_id)
    if panel is None:
        return _html(ctx.render("missing.html", what=f"action {action_id} of run {name}"), 404)
    return _html(
        await ctx.off_loop(
            ctx.render,
            "action.html",
            panel=panel,
            tab="report" if tab == "report" and panel.report is not None else "logs",
            csrf=ctx.sessions.csrf(session_of(request)),
        )
    )


async def environments(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    found = ctx.live.environments() if ctx.live is not None else ()
    return _html(
        await ctx.off_loop(
            ctx.render,
            "environments.html",
            environments=found,
            names=sorted({e.name for e in found} | set(ctx.history.names())),
            csrf=ctx.sessions.csrf(session_of(request)),
        )
    )
