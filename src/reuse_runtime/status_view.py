"""What ``reuse-runtime status`` shows, once or live (``--watch``), with rich.

:func:`render` turns a :class:`~reuse_runtime.model.ControllerStatus` into tables:
per environment its replicas and their phases, the load against capacity, the
queue, the recent rate, and the last replica lost or recycled, with why.
:func:`watch` redraws it in place every interval, until ``q`` or Ctrl-C; when
stdout is not a terminal it prints the tables again every interval instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from reuse_runtime.model import ControllerStatus, EnvironmentStatus, PoolEvent

#: Seconds of history the "rate" column averages over.
RATE_WINDOW = 5.0


@dataclass
class RateMeter:
    """Tasks finished per second, per environment, over the last :data:`RATE_WINDOW` s."""

    clock: Callable[[], float] = time.monotonic
    _samples: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)

    def update(self, status: ControllerStatus) -> dict[str, float]:
        now = self.clock()
        rates = {}
        for env in status.environments:
            samples = self._samples.setdefault(env.key, deque())
            samples.append((now, env.completed + env.failed))
            while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW:
                samples.popleft()
            (first_at, first), (last_at, last) = samples[0], samples[-1]
            rates[env.key] = (last - first) / (last_at - first_at) if last_at > first_at else 0.0
        return rates


def render(
    status: ControllerStatus, rates: dict[str, float] | None = None, *, now: float | None = None
) -> RenderableType:
    """The status as rich renderables: a line for the controller, a table per environment."""
    now = time.time() if now is None else now
    parts: list[RenderableType] = [
        Text(f"controller {status.address}  rss {status.rss_bytes / 2**20:.0f} MiB")
    ]
    if not status.environments:
        parts.append(Text("no environments yet"))
    for env in status.environments:
        parts.append(_environment(env, (rates or {}).get(env.key), now))
    return Group(*parts)


def _environment(env: EnvironmentStatus, rate: float | None, now: float) -> RenderableType:
    # The controller's own count of tasks on each replica: current, unlike a report.
    active = sum(r.assigned for r in env.replicas)
    capacity = sum(r.report.capacity if r.report else env.concurrency for r in env.replicas)
    state = "dormant" if env.dormant and not env.replicas else f"{len(env.replicas)} replicas"
    title = (
        f"[bold]{env.name}[/bold]  [{env.min_replicas}..{env.max_replicas}] x {env.concurrency}  "
        f"{state}  load {active}/{capacity}  queue {env.backlog}"
        + (f"  {rate:,.1f} tasks/s" if rate is not None else "")
        + f"  done {env.completed}  failed {env.failed}"
    )
    table = Table(title=title, title_justify="left")
    for column in (
        "replica", "phase", "tasks", "capacity", "idle s", "completed", "RSS MiB", "lag ms",
        "where",
    ):  # fmt: skip
        left = column in ("replica", "phase", "where")
        table.add_column(column, justify="left" if left else "right")
    for r in env.replicas:
        rep = r.report
        table.add_row(
            r.replica_id,
            r.state + (f" ({r.retire_reason})" if r.retire_reason else ""),
            str(r.assigned),
            str(rep.capacity if rep else env.concurrency),
            f"{rep.idle_seconds:.1f}" if rep and rep.idle_since is not None else "-",
            str(rep.completed if rep else 0),
            f"{rep.rss_bytes / 2**20:.0f}" if rep else "-",
            f"{rep.loop_lag * 1000:.0f}" if rep else "-",
            r.where,
        )
    lines: list[RenderableType] = [table]
    for kind, label in (("lost", "last loss"), ("recycled", "last recycle")):
        event = _last(env.events, kind)
        if event is not None:
            lines.append(Text.from_markup(f"  {label}: {_describe(event, now)}"))
    if env.last_error:
        lines.append(Text.from_markup(f"  [red]last error:[/red] {escape(env.last_error)}"))
    return Group(*lines)


def _last(events: tuple[PoolEvent, ...], kind: str) -> PoolEvent | None:
    return next((e for e in reversed(events) if e.kind == kind), None)


def _describe(event: PoolEvent, now: float) -> str:
    ago = max(0.0, now - event.at)
    when = f"{ago:.0f} s ago" if ago < 120 else f"{ago / 60:.0f} min ago"
    return f"{escape(event.replica_id)} [yellow]{escape(event.reason)}[/yellow], {when}" + (
        f" ({escape(event.detail)})" if event.detail else ""
    )


def print_status(status: ControllerStatus, console: Console | None = None) -> None:
    (console or Console()).print(render(status))


# ---------------------------------------------------------------- watching


async def watch(
    fetch: Callable[[], Awaitable[ControllerStatus]],
    *,
    interval: float,
    stop: asyncio.Event,
    console: Console | None = None,
) -> None:
    """Show the status every ``interval`` seconds until ``stop`` is set (or ``q`` is typed).

    On a terminal the view refreshes in place and ``q`` quits; otherwise each
    view is printed in turn, under a time stamp. A controller that does not
    answer is reported in the view, and asked again next time.
    """
    console = console or Console()
    meter = RateMeter()

    async def view() -> RenderableType:
        try:
            status = await fetch()
        except Exception as exc:
            return Text(f"{time.strftime('%H:%M:%S')}  the controller did not answer: {exc}")
        return Group(
            Text(f"{time.strftime('%H:%M:%S')}  every {interval:g} s; q or Ctrl-C quits"),
            render(status, meter.update(status)),
        )

    if not console.is_terminal:
        while not stop.is_set():
            console.print(await view())
            console.print()
            await _wait(stop, interval)
        return
    with _keys_quit(stop), Live(await view(), console=console, auto_refresh=False) as live:
        while not stop.is_set():
            await _wait(stop, interval)
            if not stop.is_set():
                live.update(await view(), refresh=True)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


@contextlib.contextmanager
def _keys_quit(stop: asyncio.Event) -> Iterator[None]:
    """While inside, a ``q`` typed on the terminal sets ``stop`` (keys are read unbuffered)."""
    fd = sys.stdin.fileno() if sys.stdin is not None and sys.stdin.isatty() else -1
    if fd < 0:
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    loop = asyncio.get_running_loop()

    def typed() -> None:
        try:
            keys = os.read(fd, 64)
        except OSError:
            keys = b""
        if not keys or b"q" in keys.lower():
            stop.set()

    tty.setcbreak(fd)  # keys arrive one by one, unechoed; Ctrl-C still signals
    loop.add_reader(fd, typed)
    try:
        yield
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
