"""What ``reuse-runtime status`` shows, once or live (``--watch``), with rich.

:func:`render` turns a :class:`~reuse_runtime.model.ControllerStatus` into tables:
per environment its replicas and their phases, the load against capacity, the
queue, the recent rate, and the last replica lost or recycled, with why. Code
versions of one environment are grouped under its name: the current one first,
then the superseded ones still serving runs (with those runs), and the idle
old ones summed up in one line.
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
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from reuse_runtime.aio import wait_within
from reuse_runtime.model import ControllerStatus, EnvironmentStatus, PoolEvent

#: Seconds of history the "rate" column averages over.
RATE_WINDOW = 5.0
#: Columns of a console that never wraps (stdout is a pipe or a file: one record a line).
UNWRAPPED = 10_000


@dataclass
class RateMeter:
    """Tasks finished per second, per environment, over the last :data:`RATE_WINDOW` s.

    An environment seen once has no rate yet (None): one count is no measurement.
    """

    clock: Callable[[], float] = time.monotonic
    _samples: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)

    def update(self, status: ControllerStatus) -> dict[str, float | None]:
        now = self.clock()
        rates: dict[str, float | None] = {}
        for env in status.environments:
            samples = self._samples.setdefault(env.key, deque())
            samples.append((now, env.completed + env.failed + env.cancelled))
            while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW:
                samples.popleft()
            (first_at, first), (last_at, last) = samples[0], samples[-1]
            rates[env.key] = (last - first) / (last_at - first_at) if last_at > first_at else None
        return rates


def render(
    status: ControllerStatus,
    rates: dict[str, float | None] | None = None,
    *,
    now: float | None = None,
) -> RenderableType:
    """The status as rich renderables: a line for the controller, then each environment.

    Each environment is named by its pool key (name and settings digest), so two
    pools of one environment stay apart; a replica by its id without the
    environment's name, which its heading already gives. With ``rates`` (a
    :class:`RateMeter`'s), each heading has a rate, ``-`` until it is measured.
    Print it at most 80 columns wide (:func:`print_status` does).
    """
    now = time.time() if now is None else now
    parts: list[RenderableType] = [
        Text(f"controller {status.address}  rss {status.rss_bytes / 2**20:.0f} MiB")
    ]
    if not status.environments:
        parts.append(Text("no environments yet"))
    named: dict[str, list[EnvironmentStatus]] = {}
    for env in status.environments:
        named.setdefault(env.name, []).append(env)
    for name, envs in named.items():
        if len(envs) == 1 and not envs[0].superseded:
            rate = None if rates is None else _rate(rates.get(envs[0].key))
            parts.append(_environment(envs[0], rate, now))
            continue
        parts.append(_versions(name, envs, rates, now))
    return Group(*parts)


def _versions(
    name: str, envs: list[EnvironmentStatus], rates: dict[str, float | None] | None, now: float
) -> RenderableType:
    """The pools of one environment's name: its versions, the current one(s) first."""
    current = [e for e in envs if not e.superseded]
    serving = [e for e in envs if e.superseded and (e.replicas or e.backlog or e.runs)]
    idle = [e for e in envs if e.superseded and e not in serving]
    versions = ", ".join(e.version or e.key for e in current) or "none"
    lines: list[RenderableType] = [Text(f"\n{name}: {len(envs)} versions, current {versions}")]
    for env in current + serving:
        rate = None if rates is None else _rate(rates.get(env.key))
        lines.append(Padding(_environment(env, rate, now, versioned=True), (0, 0, 0, 2)))
    if idle:
        lines.append(
            Text(
                f"  {len(idle)} older version{'s' if len(idle) != 1 else ''}, no replicas: "
                + ", ".join(e.version or e.key for e in idle)
            )
        )
    return Group(*lines)


def _rate(per_second: float | None) -> str:
    return "-" if per_second is None else f"{per_second:,.1f}"


def _environment(
    env: EnvironmentStatus, rate: str | None, now: float, *, versioned: bool = False
) -> RenderableType:
    # The controller's own count of tasks on each replica: current, unlike a report.
    tasks = sum(r.assigned for r in env.replicas)
    capacity = sum(r.report.capacity if r.report else env.concurrency for r in env.replicas)
    state = "dormant" if env.dormant and not env.replicas else f"{len(env.replicas)} replicas"
    heading = (
        f"\n{env.key}  {env.min_replicas}..{env.max_replicas} x {env.concurrency}  {state}  "
        f"load {tasks}/{capacity}  queue {env.backlog}"
        + (f"  {rate} tasks/s" if rate is not None else "")
        + f"  done {env.completed}  failed {env.failed}"
        + (f"  cancelled {env.cancelled}" if env.cancelled else "")
        + (f"  cached {env.cache_hits}" if env.cache_hits else "")
        + (f"  late {env.late_results}" if env.late_results else "")
    )
    if versioned:
        heading += f"\n  version {env.version or '-'}" + (
            " superseded" if env.superseded else " current"
        )
        if env.runs:
            heading += f", serving runs {', '.join(env.runs)}"
    lines: list[RenderableType] = [Text(heading)]
    notes = []
    if env.replicas:
        table = Table(box=None, pad_edge=False, padding=(0, 1))
        for column in ("replica", "state", "tasks", "idle s", "done", "MiB", "lag ms", "where"):
            left = column in ("replica", "state", "where")
            table.add_column(column, justify="left" if left else "right", no_wrap=True)
        for r in env.replicas:
            rep = r.report
            short = _short(env, r.replica_id)
            if r.retire_reason:
                notes.append(f"{short}: {r.retire_reason}")
            if rep is not None and rep.loop_blocked_by:
                blocked = "is blocked" if rep.loop_lag >= 0.5 else "was last blocked"
                notes.append(f"{short}: its event loop {blocked} by {rep.loop_blocked_by}")
            table.add_row(
                short,
                r.state + (" external" if r.external else ""),
                f"{r.assigned}/{rep.capacity if rep else env.concurrency}",
                f"{rep.idle_seconds:.1f}" if rep and rep.idle_since is not None else "-",
                str(rep.completed if rep else 0),
                f"{rep.rss_bytes / 2**20:.0f}" if rep else "-",
                f"{rep.loop_lag * 1000:.0f}" if rep else "-",
                r.where,
            )
        lines.append(Padding(table, (0, 0, 0, 2), expand=False))
    lines += [Text(f"  {note}") for note in notes]
    for kind, label in (("lost", "last loss"), ("recycled", "last recycle")):
        event = _last(env.events, kind)
        if event is not None:
            lines.append(Text.from_markup(f"  {label}: {_describe(env, event, now)}"))
    for g in env.groups:
        lines.append(
            Text(f"  group {g.name}: {g.running} running, {g.succeeded} done, {g.failed} failed")
        )
    if env.last_error:
        lines.append(Text.from_markup(f"  [red]last error:[/red] {escape(env.last_error)}"))
    return Group(*lines)


def _short(env: EnvironmentStatus, replica_id: str) -> str:
    return replica_id.removeprefix(f"{env.name}-")


def _last(events: tuple[PoolEvent, ...], kind: str) -> PoolEvent | None:
    return next((e for e in reversed(events) if e.kind == kind), None)


def _describe(env: EnvironmentStatus, event: PoolEvent, now: float) -> str:
    ago = max(0.0, now - event.at)
    when = f"{ago:.0f} s ago" if ago < 120 else f"{ago / 60:.0f} min ago"
    replica = escape(_short(env, event.replica_id))
    detail = f" ({escape(event.detail)})" if event.detail else ""
    return f"{replica} [yellow]{escape(event.reason)}[/yellow], {when}{detail}"


def print_status(status: ControllerStatus, console: Console | None = None) -> None:
    """Print the status once: on a terminal at most 80 columns wide; into a pipe unwrapped."""
    if console is None:
        console = Console(highlight=False)
        console = (
            Console(width=min(console.width, 80), highlight=False)
            if console.is_terminal
            else unwrapped_console()
        )
    console.print(render(status))


def unwrapped_console() -> Console:
    """A console for a pipe or a file: lines as long as they are (grep and awk see records)."""
    return Console(width=UNWRAPPED, highlight=False, soft_wrap=True)


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
    view is printed in turn, under a time stamp. When ``fetch`` fails (the
    controller ended, and ``fetch`` looks for the next one) the view is one line,
    its error's, shown once and kept until something else is to be shown.
    """
    if console is None:
        console = Console()
        console = console if console.is_terminal else unwrapped_console()
    meter = RateMeter()
    problem = ""

    async def view() -> RenderableType | None:
        """The next view; None when it would repeat the line already shown."""
        nonlocal meter, problem
        try:
            status = await fetch()
        except Exception as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            if message == problem:
                return None
            problem, meter = message, RateMeter()  # the next controller counts afresh
            return Text(f"{time.strftime('%H:%M:%S')}  {message}; q or Ctrl-C quits")
        problem = ""
        return Group(
            Text(f"{time.strftime('%H:%M:%S')}  every {interval:g} s; q or Ctrl-C quits"),
            render(status, meter.update(status)),
        )

    if not console.is_terminal:
        while not stop.is_set():
            shown = await view()
            if shown is not None:
                console.print(shown)
                console.print()
            await _wait(stop, interval)
        return
    first = await view()
    assert first is not None  # nothing was shown before it
    with _keys_quit(stop), Live(first, console=console, auto_refresh=False) as live:
        while not stop.is_set():
            await _wait(stop, interval)
            if not stop.is_set() and (shown := await view()) is not None:
                live.update(shown, refresh=True)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await wait_within(stop.wait(), seconds)


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
