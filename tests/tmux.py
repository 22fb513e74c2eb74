"""A real terminal for tests: a tmux server of our own (its own socket), driven by keys."""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from tests.helpers import ROOT, subprocess_env


class Terminal:
    """One tmux session running one command, WIDTHxHEIGHT characters."""

    def __init__(self, socket: str, session: str) -> None:
        self._socket = socket
        self._session = session

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self._socket, *args], capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def screen(self, history: bool = False, escapes: bool = False) -> str:
        """What the terminal shows (with ``history``, everything that scrolled off too;
        with ``escapes``, its colours as escape sequences)."""
        scrollback = ("-S", "-") if history else ()
        colours = ("-e",) if escapes else ()
        return self._tmux("capture-pane", "-p", "-t", self._session, *scrollback, *colours)

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self._session, *keys)

    def wait_for(
        self, check: Callable[[str], bool], timeout: float, what: str, history: bool = False
    ) -> str:
        """Poll the screen until ``check`` holds; returns that screen."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen(history)
            if check(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{screen}")
            time.sleep(0.1)


@contextmanager
def terminal(
    command: list[str], *, cwd: str = str(ROOT), width: int = 160, height: int = 50, **env: str
) -> Iterator[Terminal]:
    """Run ``command`` in a fresh tmux server; then ``EXIT=<code>`` is printed, and it waits."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (Debian package `tmux`); CI installs it")
    socket = f"reuse-test-{os.getpid()}-{secrets.token_hex(4)}"
    line = f"{shlex.join(command)}; echo EXIT=$?; sleep 600"
    environ = subprocess_env(**env)
    environ.pop("TMUX", None)
    subprocess.run(
        ["tmux", "-L", socket, "new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height),
         "-c", cwd, line],
        env=environ, check=True, timeout=30,
    )  # fmt: skip
    try:
        yield Terminal(socket, "t")
    finally:
        # Our own server, on our own socket: nobody else's terminal.
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=30)
