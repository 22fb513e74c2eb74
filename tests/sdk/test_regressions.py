"""The bugs of issue 11 that lost work or misled, each as a user meets it.

(Bug 4, misspelled options, is in test_environment.py and test_config.py; bug 7,
task identity, in test_environment.py.)
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import reuse_runtime as flyte
from tests.helpers import run_python, stop_process, subprocess_env

HEADER = """
import asyncio, os, sys, time
from dataclasses import dataclass
import reuse_runtime as flyte

env = flyte.TaskEnvironment(name="bugs", reusable=flyte.ReusePolicy(replicas=1, concurrency=4))
"""


def _script(body: str) -> str:
    return HEADER + textwrap.dedent(body)


def test_bug1_a_script_that_ends_without_wait_still_finishes_its_run(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        _script(
            """
        @env.task
        async def slow(path: str) -> str:
            await asyncio.sleep(1.0)
            print("working")
            with open(path, "w") as f:
                f.write("done")
            return "ok"

        if __name__ == "__main__":
            flyte.init_from_config()
            r = flyte.run(slow, os.path.abspath("marker"))
            print(r.name)
        """
        ),
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "marker").read_text() == "done"
    name = done.stdout.splitlines()[0]
    assert done.stdout.splitlines()[1:] == ["[slow] working"]
    assert done.stderr.splitlines() == [
        f"reuse-runtime: finishing 1 run still in progress before exit ({name}); Ctrl-C cancels"
    ]
    log = (tmp_path / "home" / "runs" / f"{name}.log").read_text()
    assert f"run {name} succeeded" in log


def test_bug1_ctrl_c_handed_to_another_thread_still_cancels_at_exit(tmp_path: Path) -> None:
    """The kernel may deliver a Ctrl-C to any thread that does not block it; Python runs
    its handler in the main thread only when that thread wakes. A run waited for at
    exit must still be cancelled, not wait deaf for ever."""
    done = run_python(
        tmp_path,
        _script(
            """
import signal, sys, threading, time

@env.task
async def forever() -> None:
    await asyncio.sleep(3600)

def ctrl_c_to_this_thread() -> None:
    while "finishing" not in getattr(sys.stderr, "seen", ""):
        time.sleep(0.05)
    signal.pthread_kill(threading.get_ident(), signal.SIGINT)

class Seen:
    def __init__(self, stream):
        self.stream, self.seen = stream, ""
    def write(self, text):
        self.seen += text
        return self.stream.write(text)
    def flush(self):
        self.stream.flush()

if __name__ == "__main__":
    sys.stderr = Seen(sys.stderr)
    r = flyte.run(forever)
    print(r.name, flush=True)
    threading.Thread(target=ctrl_c_to_this_thread, daemon=True).start()
"""
        ),
        timeout=60,
    )
    name = done.stdout.strip()
    assert f"reuse-runtime: cancelled {name}" in done.stderr, done.stderr


def test_bug1_ctrl_c_at_exit_cancels_the_unfinished_run(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        _script(
            """
@env.task
async def forever() -> None:
    await asyncio.sleep(3600)

if __name__ == "__main__":
    r = flyte.run(forever)
    print(r.name, flush=True)
"""
        )
    )
    process = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(REUSE_RUNTIME_HOME=str(tmp_path / "home")),
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        name = process.stdout.readline().strip()
        assert "finishing 1 run" in process.stderr.readline()  # it waits, and says so
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        stop_process(process)
    assert f"reuse-runtime: cancelled {name}" in err
    assert "Traceback" not in err
    log = (tmp_path / "home" / "runs" / f"{name}.log").read_text()
    assert f"run {name} cancelled" in log


def test_bug2_the_script_is_captured_when_run_is_called(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        _script(
            """
        @env.task
        async def sq(x: int) -> int:
            return x * x

        if __name__ == "__main__":
            from reuse_runtime.sdk.runtime import runtime

            # Keep the runtime's thread busy for a moment, as a loaded machine may:
            # whatever run() leaves to that thread happens after the script ended.
            runtime()._loop.call_soon_threadsafe(time.sleep, 1.0)
            r = flyte.run(sq, 7)
            # What the interpreter does to __main__ when a script ends:
            del sys.modules["__main__"].__file__
            print(r.outputs()[0])
        """
        ),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["49"]


def test_bug3_classes_of_the_script_travel_as_themselves_both_ways(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        _script(
            """
        @dataclass
        class Point:
            x: int
            y: int

        class MyError(Exception):
            pass

        @env.task
        async def move(p: Point) -> Point:
            assert isinstance(p, Point), type(p)
            return Point(p.x + 1, p.y + 1)

        @env.task
        async def boom() -> None:
            raise MyError("boom")

        @env.task
        async def parent() -> str:
            try:
                await boom()
            except MyError as e:
                return f"parent caught {type(e).__name__}: {e}"
            return "not caught"

        if __name__ == "__main__":
            out = flyte.run(move, Point(1, 2)).outputs()[0]
            print(type(out).__module__, isinstance(out, Point), out == Point(2, 3))
            try:
                flyte.run(boom).outputs()[0]
            except MyError as e:
                print("caught", type(e).__name__, e)
            print(flyte.run(parent).outputs()[0])
        """
        ),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "__main__ True True",
        "caught MyError boom",
        "parent caught MyError: boom",
    ]


def test_bug5_a_script_without_the_main_guard_is_told_what_to_do(tmp_path: Path) -> None:
    started = time.monotonic()
    done = run_python(
        tmp_path,
        _script(
            """
        @env.task
        async def main() -> int:
            return 1

        flyte.init_from_config()
        r = flyte.run(main)
        r.wait()
        """
        ),
    )
    took = time.monotonic() - started
    assert done.returncode == 0  # it ran; the run failed, and said why
    assert 'put the code that starts runs under `if __name__ == "__main__":`' in done.stderr
    assert "script.py started a run while a replica was importing it" in done.stderr
    assert "Traceback" not in done.stderr
    assert took < 60


def test_bug5_reading_sys_argv_at_import_gets_a_hint(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        _script(
            """
        N = int(sys.argv[1])

        @env.task
        async def main() -> int:
            return N

        if __name__ == "__main__":
            flyte.run(main).wait()
        """
        ),
        "5",
    )
    assert "IndexError" in done.stderr
    assert "reads sys.argv when it is imported" in done.stderr


def test_bug6_replicas_is_a_pair_and_scope_is_checked() -> None:
    assert flyte.ReusePolicy(replicas=2).replicas == (2, 2)
    assert flyte.ReusePolicy(replicas=(1, 3)).replicas == (1, 3)
    assert flyte.ReusePolicy().scope == "global"
    assert flyte.ReusePolicy(scope="run").scope == "run"
    try:
        flyte.ReusePolicy(scope="forever")  # type: ignore[arg-type]
    except ValueError as exc:
        assert "scope" in str(exc)
    else:
        raise AssertionError("scope='forever' was accepted")


def test_bug6_scope_run_gives_each_run_its_own_pool(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        """
        import os
        import reuse_runtime as flyte

        shared = flyte.TaskEnvironment(name="shared", reusable=flyte.ReusePolicy(replicas=1))
        own = flyte.TaskEnvironment(
            name="own", reusable=flyte.ReusePolicy(replicas=1, scope="run")
        )

        @shared.task
        async def shared_pid() -> int:
            return os.getpid()

        @own.task
        async def own_pid() -> int:
            return os.getpid()

        @own.task
        async def nested() -> tuple[int, int]:
            return os.getpid(), await own_pid()

        if __name__ == "__main__":
            print(len({flyte.run(shared_pid).outputs()[0] for _ in range(2)}))
            print(len({flyte.run(own_pid).outputs()[0] for _ in range(2)}))
            parent, child = flyte.run(nested).outputs()
            print(parent == child)  # the run's children share the run's pool
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["1", "2", "True"]
