"""``flyte.report``: HTML a task writes while it runs, shown as a tab of its action's page.

A task declared with ``@env.task(report=True)`` gets a fresh :class:`Report` for
each call. It writes HTML into it (:func:`log` appends to the main tab,
:func:`replace` replaces it, :func:`get_tab` opens others) and :func:`flush`
sends the whole report to the controller, which records it as the action's
report; the web UI shows the last one flushed, in a sandboxed frame. The report
is flushed once more when the task ends, however it ends::

    import reuse_runtime as flyte
    import reuse_runtime.report

    env = flyte.TaskEnvironment("reports")

    @env.task(report=True)
    async def train(epochs: int) -> float:
        for epoch in range(epochs):
            loss = 1 / (epoch + 1)
            await flyte.report.log.aio(f"<p>epoch {epoch}: loss {loss:.3f}</p>", do_flush=True)
        return loss

Outside a task, or in one without ``report=True``, the calls do nothing (Flyte's
``current_report()`` is then a report nobody sees). The HTML is the task's own,
scripts included: the UI shows it in an opaque origin, where it can reach
neither the UI nor its session.
"""

from __future__ import annotations

import functools
import html
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reuse_runtime.context import TaskContext, current_task
from reuse_runtime.model import REPORT_STREAM, LogLine
from reuse_runtime.sdk.aio import blocking

F = TypeVar("F", bound=Callable[..., Any])

MAIN_TAB = "main"
#: The largest report flushed, in characters of HTML.
MAX_CHARS = 32 * 1024 * 1024

_current: ContextVar[Report | None] = ContextVar("reuse_runtime_report", default=None)


@dataclass
class Tab:
    """One tab of a report: HTML fragments, shown one after the other."""

    name: str
    content: list[str] = field(default_factory=list, init=False)

    def log(self, content: str) -> None:
        """Append ``content`` (HTML, not a whole document) to the tab."""
        self.content.append(content)

    def replace(self, content: str) -> None:
        """Make ``content`` the tab's only HTML."""
        self.content = [content]

    def get_html(self) -> str:
        return "\n".join(self.content)


@dataclass
class Report:
    """A task's report: named tabs of HTML; ``main`` always exists."""

    name: str
    tabs: dict[str, Tab] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tabs.setdefault(MAIN_TAB, Tab(MAIN_TAB))

    def has_content(self) -> bool:
        return any(tab.content for tab in self.tabs.values())

    def get_tab(self, name: str, create_if_missing: bool = True) -> Tab:
        """The tab ``name``, made if missing (else ``ValueError``)."""
        if name not in self.tabs:
            if not create_if_missing:
                raise ValueError(f"Tab {name} does not exist.")
            self.tabs[name] = Tab(name)
        return self.tabs[name]

    def get_final_report(self) -> str:
        """The report as one HTML document: its tabs (an empty main tab left out)."""
        tabs = [t for n, t in self.tabs.items() if t.content or n != MAIN_TAB]
        if len(tabs) <= 1:
            body = tabs[0].get_html() if tabs else ""
            return _DOCUMENT.format(title=html.escape(self.name), nav="", body=body)
        nav = "".join(
            f'<button type="button" data-tab="{i}"{" class=on" if i == 0 else ""}>'
            f"{html.escape(tab.name)}</button>"
            for i, tab in enumerate(tabs)
        )
        body = "".join(
            f'<section data-tab="{i}"{"" if i == 0 else " hidden"}>{tab.get_html()}</section>'
            for i, tab in enumerate(tabs)
        )
        return _DOCUMENT.format(
            title=html.escape(self.name), nav=f"<nav>{nav}</nav>{_TAB_SCRIPT}", body=body
        )


def current_report() -> Report:
    """The running task's report; outside a reporting task, one nobody sees."""
    return _current.get() or Report("dummy")


def get_tab(name: str, /, create_if_missing: bool = True) -> Tab:
    """The tab ``name`` of the running task's report."""
    return current_report().get_tab(name, create_if_missing=create_if_missing)


@blocking
def log(content: str, do_flush: bool = False) -> None:
    """Append ``content`` (HTML) to the report's main tab; ``do_flush`` sends it now."""
    get_tab(MAIN_TAB).log(content)
    if do_flush:
        flush()


@blocking
def replace(content: str, do_flush: bool = False) -> None:
    """Make ``content`` (HTML) the report's main tab; ``do_flush`` sends it now."""
    current_report().get_tab(MAIN_TAB).replace(content)
    if do_flush:
        flush()


@blocking
def flush() -> None:
    """Send the report as it is now: the action's page shows it from then on.

    Raises ``ValueError`` for a report over :data:`MAX_CHARS` (nothing is sent).
    """
    report = _current.get()
    ctx = current_task.get()
    if report is None or ctx is None:
        return
    document = report.get_final_report()
    if len(document) > MAX_CHARS:
        raise ValueError(_too_large(ctx.name, len(document)))
    _send(ctx, document)


def _too_large(task: str, size: int) -> str:
    return (
        f"the report of task {task} is {size} characters, over the {MAX_CHARS} a report "
        f"may have; link large content from it instead"
    )


def _send(ctx: TaskContext, document: str) -> None:
    ctx.emit(
        LogLine(
            ctx.task_id,
            ctx.label,
            ctx.run_id,
            REPORT_STREAM,
            document,
            ctx.parent_task_id,
            ctx.replica_id,
        )
    )


def reporting(fn: F, name: str) -> F:
    """``fn`` with a fresh report for each call, flushed when the call ends."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_reporting(*args: Any, **kwargs: Any) -> Any:
            token = _current.set(Report(name))
            try:
                return await fn(*args, **kwargs)
            finally:
                _final_flush()
                _current.reset(token)

        return async_reporting  # type: ignore[return-value]

    @functools.wraps(fn)
    def sync_reporting(*args: Any, **kwargs: Any) -> Any:
        token = _current.set(Report(name))
        try:
            return fn(*args, **kwargs)
        finally:
            _final_flush()
            _current.reset(token)

    return sync_reporting  # type: ignore[return-value]


def _final_flush() -> None:
    """The report as the task left it (a report too large says so instead)."""
    report = _current.get()
    ctx = current_task.get()
    if report is None or ctx is None or not report.has_content():
        return
    document = report.get_final_report()
    if len(document) > MAX_CHARS:
        document = f"<p>{html.escape(_too_large(ctx.name, len(document)))}</p>"
    _send(ctx, document)


_DOCUMENT = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 16px; }}
nav button {{ border: none; background: none; padding: 6px 12px; cursor: pointer; }}
nav button.on {{ border-bottom: 3px solid #2f80ed; font-weight: 600; }}
</style></head>
<body>{nav}{body}</body></html>
"""

_TAB_SCRIPT = """<script>
document.addEventListener("click", function (e) {
  var b = e.target.closest("nav button"); if (!b) return;
  document.querySelectorAll("nav button").forEach(function (x) {
    x.classList.toggle("on", x === b); });
  document.querySelectorAll("section[data-tab]").forEach(function (s) {
    s.hidden = s.dataset.tab !== b.dataset.tab; });
});
</script>"""
