"""`reuse-runtime status --watch`: a live view in a real terminal (tmux), and when piped."""

from __future__ import annotations

import asyncio
import io
import re
import secrets
import signal
import sys
import time

from rich.console import Console

from reuse_runtime.cli.status_view import RateMeter, render, watch
from reuse_runtime.client import ControllerClient
from reuse_runtime.model import ControllerStatus, EnvironmentStatus, PoolEvent
from reuse_runtime.security import Security
from tests.controller import tasks
from tests.helpers import spawn_controller, submit, subprocess_env
from tests.tmux import terminal

REPLICA = re.compile(r"^  \d+-[0-9a-f]{4}\s+(\w+)", re.M)  # a replica's row: short id, state


async def test_watch_shows_replicas_appear_and_go_and_q_quits() -> None:
    """Acceptance 3: under tmux, a run scales the pool up and down; `q` exits 0."""
    token = secrets.token_urlsafe(16)
    async with spawn_controller(REUSE_RUNTIME_TOKEN=token) as controller:
        command = [
            sys.executable, "-m", "reuse_runtime", "status", "--watch",
            "--endpoint", controller.address, "--interval", "0.2",
        ]  # fmt: skip
        with terminal(command, REUSE_RUNTIME_TOKEN=token, height=60) as term:
            await asyncio.to_thread(
                term.wait_for, lambda s: "no environments yet" in s, 60, "the first view"
            )
            async with ControllerClient(controller.address, Security(token=token)) as client:
                runs = [await submit(client, tasks.interval, 1.0) for _ in range(6)]
                busy = await asyncio.to_thread(
                    term.wait_for,
                    lambda s: REPLICA.findall(s).count("ready") == 3,
                    60,
                    "three ready replicas",
                )
                await asyncio.gather(*runs)
            # scaledown_ttl=2 takes it to one replica, idle_ttl=5 to none.
            gone = await asyncio.to_thread(
                term.wait_for,
                lambda s: "dormant" in s and not REPLICA.findall(s),
                60,
                "the replicas to go",
            )
            term.keys("q")
            end = await asyncio.to_thread(term.wait_for, lambda s: "EXIT=" in s, 30, "the exit")
    assert "load " in busy and "queue " in busy and "tasks/s" in busy
    assert "elastic" in gone and "done 6" in gone
    assert "EXIT=0" in end, end


async def test_watch_prints_views_in_turn_when_piped_and_ctrl_c_quits() -> None:
    token = secrets.token_urlsafe(16)
    async with spawn_controller(REUSE_RUNTIME_TOKEN=token) as controller:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reuse_runtime", "status", "--watch",
            "--endpoint", controller.address, "--interval", "0.1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=subprocess_env(REUSE_RUNTIME_TOKEN=token),
        )  # fmt: skip
        assert process.stdout is not None
        seen = 0
        deadline = time.monotonic() + 60
        while seen < 3 and time.monotonic() < deadline:
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            seen += b"q or Ctrl-C quits" in line
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert seen == 3
    assert process.returncode == 0, err
    assert b"\x1b[" not in out


def test_render_names_the_last_loss_and_recycle_with_why() -> None:
    env = EnvironmentStatus(
        key="e-1", name="e", min_replicas=0, max_replicas=2, concurrency=4, backlog=3,
        replicas=(), completed=10, failed=1, dormant=True,
        events=(
            PoolEvent(100.0, "recycled", "e-1-aaaa", "max_tasks", "ran max_tasks=3 tasks"),
            PoolEvent(150.0, "lost", "e-2-bbbb", "oom", "killed by the OOM killer"),
            PoolEvent(160.0, "stopped", "e-3-cccc", "scaled_down", "idle for 30 s"),
        ),
    )  # fmt: skip
    status = ControllerStatus(environments=(env,), address="127.0.0.1:1")
    console = Console(width=200, record=True)
    console.print(render(status, {"e-1": 12.5}, now=170.0))
    text = console.export_text()
    assert "queue 3" in text and "12.5 tasks/s" in text and "dormant" in text
    assert "last loss: 2-bbbb oom, 20 s ago (killed by the OOM killer)" in text
    assert "last recycle: 1-aaaa max_tasks, 70 s ago (ran max_tasks=3 tasks)" in text


def test_rate_meter_averages_over_its_window() -> None:
    now = [0.0]
    meter = RateMeter(clock=lambda: now[0])

    def status(done: int) -> ControllerStatus:
        env = EnvironmentStatus("k", "e", 0, 1, 1, 0, (), done, 0, False)
        return ControllerStatus(environments=(env,))

    assert meter.update(status(0)) == {"k": None}
    now[0] = 1.0
    assert meter.update(status(100)) == {"k": 100.0}
    now[0] = 2.0
    assert meter.update(status(300)) == {"k": 150.0}


async def test_the_first_view_shows_no_rate_until_there_is_one() -> None:
    """One count is no measurement: the first view says "-", not "0.0 tasks/s"."""
    stop = asyncio.Event()
    done = [0]

    async def fetch() -> ControllerStatus:
        done[0] += 50
        if done[0] == 100:
            stop.set()  # the second view is the last
        env = EnvironmentStatus("k", "e", 0, 1, 1, 0, (), done[0], 0, False)
        return ControllerStatus(environments=(env,))

    out = io.StringIO()  # not a terminal: the views are printed one after the other
    await watch(fetch, interval=0.01, stop=stop, console=Console(file=out, width=200))
    first, second = out.getvalue().split("q or Ctrl-C quits")[1:]
    assert "  - tasks/s  done 50" in first
    assert re.search(r"  [\d,]+\.\d tasks/s  done 100", second), second
