import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

# Tests and demos run TTLs in seconds.
os.environ.setdefault("REUSE_RUNTIME_MIN_TTL_SECONDS", "0")

# A state dir of this test run's own: a controller a test starts with the defaults (its
# runs store, its controller.json) never meets the user's, nor another run's, on this
# machine. Tests that need their own set REUSE_RUNTIME_HOME themselves.
_HOME = tempfile.mkdtemp(prefix="reuse-runtime-tests-")
os.environ["REUSE_RUNTIME_HOME"] = _HOME
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)

# A shell that starts the tests in the background without job control (`cmd &` in a
# script, nohup) leaves SIGINT ignored, and every child inherits that: the tests that
# press Ctrl-C on a script would wait for ever. With a handler here instead, children
# start with Ctrl-C's default, as from a terminal (exec resets handled signals).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Every process this test run starts (controllers, drivers, replicas, what they start)
# inherits this mark, so the run can find what it left behind, and only that: other
# runs on the machine carry another mark or none.
SESSION_MARK = "REUSE_RUNTIME_TEST_SESSION"
os.environ[SESSION_MARK] = uuid.uuid4().hex


def our_processes() -> list[psutil.Process]:
    """Python processes of this test run other than pytest itself (by their mark)."""
    mark, me = os.environ[SESSION_MARK], os.getpid()
    found = []
    for process in psutil.process_iter(["name"]):
        try:
            if process.pid == me or not (process.info["name"] or "").startswith("python"):
                continue
            if process.environ().get(SESSION_MARK) == mark:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _kill(processes: list[psutil.Process]) -> list[str]:
    """SIGKILL these processes (by pid); how each looked, for the report."""
    described = []
    for process in processes:
        try:
            described.append(f"{process.pid} {process.status()} {' '.join(process.cmdline())}")
            process.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(processes, timeout=10)
    return described


@pytest.fixture(autouse=True)
def _no_frozen_process_left_behind() -> Iterator[None]:
    """A stopped process can never exit by itself, so a test that leaves one (a replica it
    SIGSTOPped, or one that stopped itself) behind leaks it for good: kill it, and say so."""
    yield
    stopped = []
    for process in our_processes():
        try:
            if process.status() == psutil.STATUS_STOPPED:
                stopped.append(process)
        except psutil.NoSuchProcess:
            continue
    if stopped:
        left = _kill(stopped)
        pytest.fail("the test left stopped processes behind (killed now):\n" + "\n".join(left))


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of our own, for a full disk (fill it with tests.helpers.fill_filesystem);
    unmounted afterwards."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"a small tmpfs cannot be mounted here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


_leaks: list[str] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    """No process of this run outlives it. Orphans exit within their grace once their
    controller is gone (a driver killed with kill -9, say); whatever is still here after
    that is a leak: killed by pid, reported, and the run fails."""
    left = our_processes()
    _, alive = psutil.wait_procs(left, timeout=30)
    if alive:
        _leaks.extend(_kill(alive))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _leaks:
        terminalreporter.section("processes left behind (killed)", red=True)
        for line in _leaks:
            terminalreporter.write_line(line)
