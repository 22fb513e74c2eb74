"""`reuse-runtime status --watch`: a live view in a real terminal (tmux), and when piped."""

from __future__ import annotations

import asyncio
import io
import re
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from reuse_runtime.cli.status_view import RateMeter, print_status, render, watch
from reuse_runtime.client import ControllerClient
from reuse_runtime.errors import ControllerUnavailableError
from reuse_runtime.model import (
    ControllerStatus,
    EnvironmentStatus,
    PoolEvent,
    ReplicaStatus,
    TaskState,
)
from reuse_runtime.security import Security
from tests.controller import tasks
from tests.helpers import spawn_controller, submit, subprocess_env
from tests.tmux import terminal


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


async def test_cancelled_tasks_are_counted_apart_from_failed_ones() -> None:
    token = secrets.token_urlsafe(16)
    async with spawn_controller(REUSE_RUNTIME_TOKEN=token) as controller:
        async with ControllerClient(controller.address, Security(token=token)) as client:
            waiting = await submit(client, tasks.slow, 30.0)
            deadline = time.monotonic() + 30
            while not await client.cancel(task_id=waiting.task_id):  # until it has arrived
                assert time.monotonic() < deadline, "the task never reached the controller"
                await asyncio.sleep(0.05)
            assert (await waiting).state is TaskState.CANCELLED
            assert (await (await submit(client, tasks.child, "x"))).state is TaskState.FAILED
            status = await client.status()
    (env,) = [e for e in status.environments if e.name == "single"]
    assert (env.completed, env.failed, env.cancelled) == (0, 1, 1)
    console = Console(width=200, record=True)
    console.print(render(status))
    assert "done 0  failed 1  cancelled 1" in console.export_text()


async def test_watch_says_once_that_the_controller_is_gone_and_shows_the_next() -> None:
    """A controller gone is one line, printed once, not the same error every interval."""
    stop = asyncio.Event()
    answers: list[ControllerStatus | Exception] = [
        ControllerStatus(environments=(), address="127.0.0.1:1"),
        *[ControllerUnavailableError("run r1's controller ended; waiting for the next")] * 4,
        ControllerStatus(environments=(), address="127.0.0.1:2"),
    ]

    async def fetch() -> ControllerStatus:
        answer = answers.pop(0)
        if not answers:
            stop.set()
        if isinstance(answer, Exception):
            raise answer
        return answer

    out = io.StringIO()
    await watch(fetch, interval=0.01, stop=stop, console=Console(file=out, width=200))
    text = out.getvalue()
    assert text.count("run r1's controller ended; waiting for the next; q or Ctrl-C quits") == 1
    assert "controller 127.0.0.1:1" in text and "controller 127.0.0.1:2" in text
    assert text.index("127.0.0.1:1") < text.index("r1's") < text.index("127.0.0.1:2")


def test_a_piped_status_does_not_wrap(capsys: pytest.CaptureFixture[str]) -> None:
    name = "an-environment-with-a-rather-long-name-for-the-status-table"
    replica = ReplicaStatus(f"{name}-1-abcd", "ready", 0, where="pid 12345 on a-long-host-name")
    env = EnvironmentStatus(
        f"{name}-0123abcd", name, 0, 2, 8, 0, (replica,), 10, 1, False, cancelled=2
    )
    print_status(ControllerStatus(environments=(env,), address="127.0.0.1:1"))
    lines = capsys.readouterr().out.splitlines()
    assert f"{name}-0123abcd  0..2 x 8  1 replicas  load 0/8  queue 0  done 10  failed 1  " \
        "cancelled 2" in lines  # fmt: skip
    assert any(
        line.startswith("  1-abcd ") and line.endswith("pid 12345 on a-long-host-name")
        for line in lines
    ), lines


async def test_watch_names_the_run_whose_controller_ended_and_waits_for_the_next(
    tmp_path: Path,
) -> None:
    (tmp_path / "app.py").write_text(
        "import reuse_runtime as flyte\n"
        "env = flyte.TaskEnvironment(name='ends', reusable=flyte.ReusePolicy(replicas=1))\n"
        "@env.task\n"
        "async def main() -> int:\n"
        "    import os, time\n"
        "    deadline = time.monotonic() + 60\n"
        "    while not os.path.exists('go') and time.monotonic() < deadline:\n"
        "        time.sleep(0.02)\n"
        "    os.remove('go')\n"
        "    return 1\n"
    )
    # Each run holds its controller up until the test has seen the watch name it, so a fast
    # run cannot start and end between two of the watch's looks.
    go = tmp_path / "go"
    env = subprocess_env(
        REUSE_RUNTIME_HOME=str(tmp_path / "home"), REUSE_RUNTIME_CONTROLLER_PORT=str(_free_port())
    )
    watching = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reuse_runtime", "status", "--watch", "--interval", "0.1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert watching.stdout is not None
    lines: list[str] = []

    async def read_until(seen: Callable[[str], bool]) -> str:
        while True:
            line = (await asyncio.wait_for(watching.stdout.readline(), 60)).decode()  # type: ignore[union-attr]
            assert line, "status --watch ended"
            lines.append(line)
            if seen(line):
                return line

    async def run_app() -> str:
        ran = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reuse_runtime", "run", "app.py", "main",
            stdout=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(ran.communicate(), 120)
        assert ran.returncode == 0
        return out.decode().splitlines()[0]

    async def run_app_seen() -> str:
        running = asyncio.ensure_future(run_app())
        try:
            await read_until(lambda line: line.startswith("controller 127.0.0.1:"))
        finally:
            go.touch()
        return await running

    try:
        await read_until(lambda line: "waiting for one" in line)  # none yet
        first = await run_app_seen()
        ended = await read_until(lambda line: "waiting for the next controller" in line)
        # Several intervals later, nothing more has been said: one line, not one per interval.
        await asyncio.sleep(1.0)
        second = await run_app_seen()
    finally:
        watching.send_signal(signal.SIGINT)
        await asyncio.wait_for(watching.communicate(), 30)
    assert f"the embedded controller of run {first} ended with its process" in ended
    assert f"the run's record is {tmp_path / 'home' / 'runs' / first}.log" in ended
    assert sum("waiting for the next controller" in line for line in lines) == 1, lines
    assert not any("UNAVAILABLE" in line for line in lines), lines
    assert first != second
