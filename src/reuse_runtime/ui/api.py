"""The UI's API: the fragments its pages load and poll, the charts' JSON, the abort.

Everything here answers 401 without a session (see :func:`reuse_runtime.ui.app.guard`).
Fragments are HTML rendered with the same escaping templates as the pages; a
fragment of something still running carries its own polling trigger, and one of
something finished does not, so a page stops polling by itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from reuse_runtime.errors import BadInputError, RunNotFoundError
from reuse_runtime.store.phases import ActionPhase
from reuse_runtime.ui import views
from reuse_runtime.ui.context import REPORT_POLICY, context, session_of
from reuse_runtime.ui.pages import run_filter


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html")


def _missing(what: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=f"no {what} here (it may have been removed by retention)")


def _int(request: web.Request, key: str) -> int:
    try:
        return max(0, int(request.query.get(key, "0")))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{key} must be a whole number") from None


# ------------------------------------------------------------------ runs


async def runs_json(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    where, _ = run_filter(request)
    listing = await ctx.off_loop(views.runs_listing, ctx, where, request.query.get("cursor"))
    return web.json_response(
        {"runs": [_run_json(run) for run in listing.runs], "cursor": listing.cursor}
    )


async def runs_table(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    where, values = run_filter(request)
    listing = await ctx.off_loop(views.runs_listing, ctx, where, None)
    return _html(await ctx.off_loop(ctx.render, "_runs_table.html", listing=listing,
                                    filters=values, cursor=None))  # fmt: skip


async def run_json(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    header = await views.run_header(ctx, request.match_info["run"])
    if header is None:
        raise _missing("such run")
    found = _run_json(header.run)
    found["counts"] = {phase.value: n for phase, n in header.counts}
    return web.json_response(found)


def _run_json(run: Any) -> dict[str, Any]:
    found = dataclasses.asdict(run)
    found["phase"] = run.phase.value
    found["counts"] = {phase.value: n for phase, n in run.counts.items()}
    if run.error is not None:
        found["error"] = {k: v for k, v in found["error"].items() if k != "pickled"}
    return found


async def run_header(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    header = await views.run_header(ctx, request.match_info["run"])
    if header is None:
        raise _missing("such run")
    return await _header(request, header)


def _ended(response: web.Response, header: views.RunHeader) -> web.Response:
    """A header of a run that ended tells the page's other polled parts to look once more
    (and stop): htmx raises ``run-ended`` on the body."""
    if not header.live:
        response.headers["HX-Trigger"] = "run-ended"
    return response


async def _header(request: web.Request, header: views.RunHeader) -> web.Response:
    ctx = context(request)
    html = await ctx.off_loop(ctx.render, "_run_header.html", header=header,
                              csrf=ctx.sessions.csrf(session_of(request)))  # fmt: skip
    return _ended(_html(html), header)


async def children(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    run = request.match_info["run"]
    parent = request.query.get("parent", "")
    group = request.query.get("group")
    phases = tuple(request.query.getall("phase", ()))
    for phase in phases:
        if phase not in {p.value for p in ActionPhase}:
            raise web.HTTPBadRequest(text=f"{phase!r} is not a phase")
    cursor = request.query.get("cursor") or None
    part = request.query.get("part", "")
    if part not in ("", "live", "finished"):
        raise web.HTTPBadRequest(text=f"part must be live or finished, got {part!r}")
    if cursor is not None:
        part = "finished"
    info = await ctx.off_loop(ctx.reader.get_run, run)
    if info is None:
        raise _missing("such run")
    found = await views.children(
        ctx, info, parent, group=group, phases=phases, cursor=cursor, part=part
    )
    template = (
        "_more.html" if cursor is not None else f"_{part}_part.html" if part else "_children.html"
    )
    return _html(await ctx.off_loop(ctx.render, template, run=info, kids=found,
                                    live=not info.done))  # fmt: skip


async def abort(request: web.Request) -> web.StreamResponse:
    """Abort the run (a POST with the session's CSRF token: the guard checked it)."""
    ctx = context(request)
    name = request.match_info["run"]
    if ctx.abort is None:
        raise web.HTTPConflict(text="no controller here: this UI only reads a runs store")
    info = await ctx.off_loop(ctx.reader.get_run, name)
    if info is None:
        raise _missing("such run")
    if not info.done:
        await ctx.abort(name, "aborted from the web UI")
    if request.headers.get("HX-Request") != "true":
        raise web.HTTPSeeOther(f"/runs/{request.match_info['run']}")
    header = await views.run_header(ctx, name)
    assert header is not None
    return await _header(request, header)


async def signal_condition(request: web.Request) -> web.StreamResponse:
    """Signal a condition of the run (a POST with the session's CSRF token: the guard
    checked it); ``value`` is parsed as the condition's type."""
    ctx = context(request)
    name, action_id = request.match_info["run"], request.match_info["action"]
    if ctx.signal is None:
        raise web.HTTPConflict(text="no controller here: this UI only reads a runs store")
    form = await request.post()
    try:
        await ctx.signal(name, action_id, str(form.get("value", "")))
    except (BadInputError, RunNotFoundError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    if request.headers.get("HX-Request") != "true":
        raise web.HTTPSeeOther(f"/runs/{name}")
    header = await views.run_header(ctx, name)
    if header is None:
        raise _missing("such run")
    return await _header(request, header)


# ------------------------------------------------------------------ an action


async def action_panel(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    run, action_id = request.match_info["run"], request.match_info["action"]
    panel = await views.action_panel(ctx, run, action_id)
    if panel is None:
        raise _missing(f"action {action_id} of run {run}")
    return _html(await ctx.off_loop(ctx.render, "_action_panel.html", panel=panel,
                                    standalone=False))  # fmt: skip


async def action_facts(request: web.Request) -> web.StreamResponse:
    """An action's facts, polled while it is live (its log has a poll of its own)."""
    ctx = context(request)
    run, action_id = request.match_info["run"], request.match_info["action"]
    panel = await views.action_panel(ctx, run, action_id, facts_only=True)
    if panel is None:
        raise _missing(f"action {action_id} of run {run}")
    return _html(await ctx.off_loop(ctx.render, "_action_facts.html", panel=panel,
                                    standalone=bool(request.query.get("standalone"))))  # fmt: skip


async def logs(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    run, action_id = request.match_info["run"], request.match_info["action"]
    tail = await views.log_tail(ctx, run, action_id, _int(request, "after"))
    return _html(await ctx.off_loop(ctx.render, "_log_tail.html", run=run,
                                    action_id=action_id, tail=tail))  # fmt: skip


async def search(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    run, action_id = request.match_info["run"], request.match_info["action"]
    text = request.query.get("q", "").strip()
    found = await ctx.off_loop(views.search, ctx.reader, run, action_id, text) if text else ()
    return _html(await ctx.off_loop(ctx.render, "_log_search.html", text=text, found=found))


async def report(request: web.Request) -> web.StreamResponse:
    """The action's report as the task wrote it, to be shown only in a sandboxed frame:
    its own policy makes it an opaque origin even when opened directly."""
    ctx = context(request)
    run, action_id = request.match_info["run"], request.match_info["action"]
    found = await ctx.off_loop(ctx.reader.action_report, run, action_id)
    if found is None:
        raise _missing(f"report of action {action_id}")
    response = web.Response(text=found.html, content_type="text/html")
    response.headers["Content-Security-Policy"] = REPORT_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


# ------------------------------------------------------------------ the charts


async def timeline(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    found = await views.timeline(ctx, request.match_info["run"])
    if found is None:
        raise _missing("such run")
    return web.json_response(found)


async def environments_panel(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    found = ctx.live.environments() if ctx.live is not None else ()
    return _html(await ctx.off_loop(ctx.render, "_environments.html", environments=found))


async def history(request: web.Request) -> web.StreamResponse:
    """Each environment's points of the last hour, and one for now (not kept)."""
    ctx = context(request)
    now = ctx.history.peek(ctx.clock(), ctx.live.counters()) if ctx.live is not None else {}
    found: dict[str, list[list[float]]] = {}
    for name in sorted(set(ctx.history.names()) | set(now)):
        points = list(ctx.history.points(name))
        if name in now:
            points.append(now[name])
        found[name] = [[p.at, p.tasks_per_second, p.backlog, p.replicas] for p in points]
    return web.json_response({"interval": ctx.history.interval, "environments": found})
