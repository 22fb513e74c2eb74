"""The progress bar of Run.wait(): in a real terminal (tmux), and absent when piped."""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reuse_runtime.model import RunProgress
from reuse_runtime.sdk.progress import RunProgressDisplay, progress_wanted
from tests.helpers import running_controller, submit, subprocess_env
from tests.sdk import progress_script
from tests.tmux import terminal

SCRIPT = str(Path(__file__).with_name("progress_script.py"))
N = 20_000
HELLOS = [f"[leaf] leaf {i} says hello, and this line stays whole" for i in range(0, N, 2000)]
EXPECTED = sum(i for i in range(N) if i % 5000 != 1)


def test_a_big_fan_out_shows_a_progress_bar_in_a_terminal(tmp_path: Path) -> None:
    """Acceptance 4: 20,000 children under tmux: the bar, and the output lines intact."""
    command = [sys.executable, SCRIPT, str(N)]
    with terminal(command, REUSE_RUNTIME_HOME=str(tmp_path / "home")) as term:
        # While it runs, the bar counts the children against the full total.
        live = term.wait_for(
            lambda s: "EXIT=" in s or re.search(rf"children .* \d+/{N}\b", s) is not None,
            120,
            "the progress bar",
        )
        screen = term.wait_for(lambda s: "EXIT=" in s, 120, "the run's end", history=True)
    assert "EXIT=0" in screen, screen
    assert re.search(rf"children .* \d+/{N}\b", live), live
    final = [line for line in screen.splitlines() if "main: children" in line]
    assert final and f"{N}/{N}" in final[-1] and "4 failed" in final[-1], screen
    lines = screen.splitlines()
    for hello in HELLOS:
        assert lines.count(hello) == 1, (hello, screen)
    assert f"result {EXPECTED}" in lines


def test_no_bar_when_output_is_piped(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, SCRIPT, "3000"],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(REUSE_RUNTIME_HOME=str(tmp_path / "home")),
    )
    assert done.returncode == 0, done.stderr
    assert "children" not in done.stderr and "\x1b[" not in done.stderr + done.stdout
    assert done.stdout.splitlines()[:2] == HELLOS[:2]


async def test_the_total_counts_children_held_back_by_flow_control(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With at most 300 children at the controller, the total is still all 2,000."""
    monkeypatch.setenv("REUSE_RUNTIME_MAX_OUTSTANDING", "300")  # the replicas inherit it
    async with running_controller() as (_, client):
        done = await submit(client, progress_script.slow_fan, 2000)
        seen = []
        while not done.done():  # type: ignore[attr-defined]
            seen.append(await client.run_progress("test-run"))  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)
        assert (await done).unwrap() == sum(range(2000))  # type: ignore[attr-defined]
        final = await client.run_progress("test-run")  # type: ignore[attr-defined]
    during = [p for p in seen if p.found and 0 < p.finished < 2000]
    assert during, seen
    assert all(p.total == 2000 for p in during if p.children >= 300), during
    assert any(p.held > 0 for p in during)
    assert all(p.children - p.finished <= 300 for p in during)
    assert final.ended and final.succeeded == 2000 and final.running == 0


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_wanted_only_on_a_terminal_and_when_not_turned_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REUSE_RUNTIME_PROGRESS", raising=False)
    assert progress_wanted(None, _Tty())
    assert not progress_wanted(None, io.StringIO())
    assert not progress_wanted(False, _Tty())
    monkeypatch.setenv("REUSE_RUNTIME_PROGRESS", "0")
    assert not progress_wanted(None, _Tty())
    assert not progress_wanted(True, _Tty())


def test_the_display_waits_for_children_and_survives_a_silent_controller() -> None:
    answers: list[RunProgress | None] = [RunProgress(found=True), None]
    display = RunProgressDisplay("main", lambda: answers.pop(0), stream=_Tty())
    display.poll(force=True)
    assert not display.shown  # no children yet: no bar
    display.poll(force=True)  # the controller cannot say: stop asking
    display.poll(force=True)
    assert not display.shown and not answers
    out = io.StringIO()
    display.line("[t] plain", out)
    assert out.getvalue() == "[t] plain\n"
    display.close()
