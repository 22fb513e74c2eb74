"""The SDK as a user drives it: a script run as __main__, in a fresh process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers import run_python, subprocess_env

HEADER = """
import asyncio, os, time
import reuse_runtime as flyte

env = flyte.TaskEnvironment(name="t", reusable=flyte.ReusePolicy(replicas=1, concurrency=4))
"""


def run_script(
    tmp_path: Path, body: str, name: str = "script.py"
) -> subprocess.CompletedProcess[str]:
    return run_python(tmp_path, HEADER + textwrap.dedent(body), name=name, timeout=90)


def test_output_reaches_wait_prefixed_with_the_task_name(tmp_path: Path) -> None:
    done = run_script(
        tmp_path,
        """
        import logging, sys
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

        @env.task
        async def shout(i: int) -> int:
            print(f"hello {i}")
            logging.getLogger("user").info("logged %d", i)
            return i

        @env.task
        async def main() -> int:
            print("main starts")
            return sum(await asyncio.gather(*(shout(i) for i in range(3))))

        if __name__ == "__main__":
            r = flyte.run(main)
            r.wait()
            print("result", r.outputs()[0])
        """,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == "[main] main starts"
    assert sorted(out[1:4]) == [f"[shout] hello {i}" for i in range(3)]
    assert out[-1] == "result 3"
    assert sorted(x for x in done.stderr.splitlines() if "logged" in x) == [
        f"[shout] INFO logged {i}" for i in range(3)
    ]


def test_remote_errors_keep_type_message_and_traceback(tmp_path: Path) -> None:
    done = run_script(
        tmp_path,
        """
        @env.task
        async def broken(x: int) -> int:
            raise KeyError(f"missing {x}")

        @env.task
        async def main() -> int:
            return await broken(3)

        if __name__ == "__main__":
            r = flyte.run(main)
            r.wait()
            try:
                r.outputs()[0]
            except KeyError as e:
                import traceback
                print("caught", type(e).__name__, e)
                print("".join(traceback.format_exception(e)))
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "caught KeyError 'missing 3'" in done.stdout
    assert 'script.py", line 9, in broken' in done.stdout
    assert 'raise KeyError(f"missing {x}")' in done.stdout
    assert "in main" in done.stdout
    assert "failed" in done.stderr  # wait() reports the failure


def test_sync_tasks_and_nested_sync_calls(tmp_path: Path) -> None:
    done = run_script(
        tmp_path,
        """
        @env.task
        def double(x: int) -> int:
            time.sleep(0.05)
            return 2 * x

        @env.task
        def total(n: int) -> int:
            return sum(double(i) for i in range(n))

        @env.task
        async def main(n: int) -> int:
            return await total.aio(n)

        if __name__ == "__main__":
            print(flyte.run(main, 4).outputs()[0])
            print(double(21))  # outside a run: a plain local call
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["12", "42"]


def test_override_reusable_off_runs_each_call_in_a_fresh_process(tmp_path: Path) -> None:
    done = run_script(
        tmp_path,
        """
        @env.task
        async def pid() -> int:
            return os.getpid()

        cold = pid.override(reusable="off")

        @env.task
        async def main() -> tuple[list[int], list[int]]:
            warm = [await pid() for _ in range(3)]
            fresh = [await cold() for _ in range(3)]
            return warm, fresh

        if __name__ == "__main__":
            warm, fresh = flyte.run(main).outputs()
            print(len(set(warm)), len(set(fresh)))
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "3"]


def test_run_rejects_a_plain_function_with_a_clear_error(tmp_path: Path) -> None:
    done = run_script(
        tmp_path,
        """
        async def plain() -> int:
            return 1

        if __name__ == "__main__":
            try:
                flyte.run(plain)
            except TypeError as e:
                print(e)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "decorate the function with @env.task" in done.stdout


def test_run_cancel_and_task_timeout_through_the_sdk(tmp_path: Path) -> None:
    done = run_script(
        tmp_path,
        """
        @env.task
        async def forever() -> None:
            await asyncio.sleep(60)

        @env.task
        async def main() -> None:
            await asyncio.gather(*(forever() for _ in range(3)))

        @env.task(timeout=0.5)
        async def bounded() -> None:
            await asyncio.sleep(60)

        if __name__ == "__main__":
            r = flyte.run(main)
            time.sleep(1.0)
            print("cancelled", r.cancel() >= 1)
            r.wait(timeout=20)
            print("status", r.status)
            try:
                r.outputs()[0]
            except flyte.TaskCancelledError as e:
                print("raised", type(e).__name__)
            t = flyte.run(bounded)
            t.wait(timeout=20)
            print("status", t.status)
            try:
                t.outputs()[0]
            except flyte.TaskTimedOutError as e:
                print("raised", type(e).__name__, "timed out" in str(e))
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:6] == [
        "cancelled True",
        "status cancelled",
        "raised TaskCancelledError",
        "status timed out",
        "raised TaskTimedOutError True",
        "",
    ]


def test_standalone_controller_through_a_config_file(tmp_path: Path) -> None:
    import re
    import signal

    controller = subprocess.Popen(
        [sys.executable, "-m", "reuse_runtime", "controller", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # No token: it makes one, and the driver (same user, same home) finds it.
        env=subprocess_env(REUSE_RUNTIME_HOME=str(tmp_path / "home")),
    )
    try:
        assert controller.stdout is not None
        ready = re.search(r"listening on (\S+)", controller.stdout.readline())
        assert ready, "the controller did not start"
        (tmp_path / ".reuse-runtime.toml").write_text(
            f'[controller]\nendpoint = "{ready.group(1)}"\n'
        )
        done = run_script(
            tmp_path,
            """
            @env.task
            async def pid() -> int:
                return os.getpid()

            if __name__ == "__main__":
                flyte.init_from_config()
                from reuse_runtime.sdk.runtime import runtime
                print(runtime().embedded, runtime().endpoint)
                print(flyte.run(pid).outputs()[0] != os.getpid())
            """,
        )
    finally:
        controller.send_signal(signal.SIGTERM)
        _, errors = controller.communicate(timeout=30)
        code = controller.returncode
    assert done.returncode == 0, done.stderr + errors
    assert done.stdout.split() == ["False", ready.group(1), "True"]
    assert code == 0


def test_init_from_config_names_unknown_settings(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('[controller]\nendpont = "x:1"\n')
    done = run_script(
        tmp_path,
        """
        if __name__ == "__main__":
            try:
                flyte.init_from_config("bad.toml")
            except ValueError as e:
                print(e)
        """,
    )
    assert "bad.toml:2: unknown setting 'endpont' in [controller]" in done.stdout
    assert "did you mean 'endpoint'?" in done.stdout


def test_lifecycle_hooks_run_once_per_replica(tmp_path: Path) -> None:
    done = run_script(
        tmp_path,
        """
        import pathlib
        state = {}

        def warm_up():
            state["model"] = "loaded"
            state["at"] = time.time()
            with open(f"started-{os.getpid()}", "w"):
                pass

        def tear_down():
            pathlib.Path(f"stopped-{os.getpid()}").write_text("bye")

        hooked = flyte.TaskEnvironment(
            name="hooked", reusable=flyte.ReusePolicy(replicas=2, concurrency=2),
            on_start=warm_up, on_stop=tear_down,
        )

        @hooked.task
        async def look() -> tuple[str, int]:
            await asyncio.sleep(0.05)
            return state.get("model", "missing"), os.getpid()

        @hooked.task
        async def main() -> list[tuple[str, int]]:
            # Both replicas warm up before the run ends (and the driver drains them).
            for _ in range(600):
                if len(list(pathlib.Path().glob("started-*"))) == 2:
                    break
                await asyncio.sleep(0.05)
            return list(await asyncio.gather(*(look() for _ in range(8))))

        if __name__ == "__main__":
            seen = flyte.run(main).outputs()[0]
            print(sorted({model for model, _ in seen}))
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "['loaded']"
    started = sorted(p.name.split("-")[1] for p in tmp_path.glob("started-*"))
    stopped = sorted(p.name.split("-")[1] for p in tmp_path.glob("stopped-*"))
    assert len(started) == 2
    assert stopped == started


def test_a_drain_during_on_start_runs_on_stop_after_it(tmp_path: Path) -> None:
    """The driver ends while the second replica is still in its on-start hook: that
    replica's on_stop still runs, after its on_start ends, never before or instead."""
    done = run_script(
        tmp_path,
        """
        import pathlib

        def warm_up():
            pathlib.Path(f"starting-{os.getpid()}").touch()
            try:
                fd = os.open("first", os.O_CREAT | os.O_EXCL)
                os.close(fd)
            except FileExistsError:
                time.sleep(3)  # the second replica is slow to warm up
            pathlib.Path(f"started-{os.getpid()}").write_text(repr(time.time()))

        def tear_down():
            pathlib.Path(f"stopped-{os.getpid()}").write_text(repr(time.time()))

        hooked = flyte.TaskEnvironment(
            name="slowstart", reusable=flyte.ReusePolicy(replicas=2, concurrency=1),
            on_start=warm_up, on_stop=tear_down,
        )

        @hooked.task
        async def pid() -> int:
            return os.getpid()

        if __name__ == "__main__":
            print(flyte.run(pid).outputs()[0] > 0)
            for _ in range(600):  # exit while the slow replica is inside its on_start
                if len(list(pathlib.Path().glob("starting-*"))) == 2:
                    break
                time.sleep(0.05)
        """,
    )
    assert done.returncode == 0, done.stderr
    starting = {p.name.split("-")[1] for p in tmp_path.glob("starting-*")}
    started = {p.name.split("-")[1]: float(p.read_text()) for p in tmp_path.glob("started-*")}
    stopped = {p.name.split("-")[1]: float(p.read_text()) for p in tmp_path.glob("stopped-*")}
    assert len(starting) == 2
    assert set(started) == set(stopped) == starting
    assert all(stopped[pid] >= started[pid] for pid in started)


def test_a_replica_of_an_embedded_pool_hears_sigterm(tmp_path: Path) -> None:
    """The SDK's runtime thread blocks SIGINT and SIGTERM (they are the caller's), and a
    replica it starts inherits that mask: the replica unblocks them, or no drain reaches
    it (on_stop never ran; each replica was killed after its grace)."""
    done = run_script(
        tmp_path,
        """
        import signal

        @env.task
        async def blocked() -> list[str]:
            status = open("/proc/self/status").read()
            mask = int(status.split("SigBlk:")[1].split()[0], 16)
            return [s.name for s in (signal.SIGINT, signal.SIGTERM) if mask >> (s - 1) & 1]

        if __name__ == "__main__":
            print(flyte.run(blocked).outputs()[0])
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "[]"


def test_outputs_are_flytes_action_outputs(tmp_path: Path) -> None:
    """outputs() is a tuple as in Flyte: one value, a tuple's items, a NamedTuple's fields, none."""
    done = run_script(
        tmp_path,
        """
        from typing import NamedTuple

        class Stats(NamedTuple):
            total: int
            label: str

        @env.task
        async def one(x: int) -> int:
            return x * 2

        @env.task
        async def pair(x: int) -> tuple[int, str]:
            return x, str(x)

        @env.task
        async def stats(x: int) -> Stats:
            return Stats(x, "n")

        @env.task
        async def nothing() -> None:
            return None

        if __name__ == "__main__":
            out = flyte.run(one, 4).outputs()
            print(out[0], len(out), out.o0, out.named_outputs, repr(out))
            n, s = flyte.run(pair, 3).outputs()
            print(n, s)
            st = flyte.run(stats, 5).outputs()
            print(st.total, st.label, st.named_outputs)
            print(tuple(flyte.run(nothing).outputs()))
            print(isinstance(out, tuple), type(out) is flyte.remote.ActionOutputs)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-5:] == [
        "8 1 8 {'o0': 8} ActionOutputs(o0=8)",
        "3 3",
        "5 n {'total': 5, 'label': 'n'}",
        "()",
        "True True",
    ]


def test_a_burst_of_lines_is_shown_whole_or_says_what_it_skipped(tmp_path: Path) -> None:
    """A task printing 30,000 lines at once, faster than a watch reads them: every line
    reaches wait(), or a line says how many were skipped; none goes missing silently."""
    done = run_script(
        tmp_path,
        """
        import sys

        @env.task
        async def main() -> int:
            sys.stdout.write("".join(f"line {i}\\n" for i in range(30_000)))
            return 1

        if __name__ == "__main__":
            r = flyte.run(main)
            r.wait()
            print("result", r.outputs()[0])
        """,
    )
    assert done.returncode == 0, done.stderr
    shown = [x for x in done.stdout.splitlines() if x.startswith("[main] line ")]
    numbers = [int(x.rsplit(" ", 1)[1]) for x in shown]
    assert numbers == sorted(numbers) and numbers[-1] == 29_999
    skipped = [x for x in done.stderr.splitlines() if "lines not shown" in x]
    if len(numbers) < 30_000:
        assert len(skipped) >= 1, done.stderr[-2000:]
        missed = sum(int(x.split("] ", 1)[1].split(" ", 1)[0].replace(",", "")) for x in skipped)
        assert len(numbers) + missed == 30_000, (len(numbers), skipped)
        assert "reuse-runtime logs r" in skipped[0]
    assert done.stdout.splitlines()[-1] == "result 1"


def test_get_debug_url_is_none_as_in_flyte_without_a_debugger(tmp_path: Path) -> None:
    done = run_script(
        tmp_path,
        """
        @env.task
        def hello(name: str) -> str:
            return f"Hello, {name}!"

        if __name__ == "__main__":
            run = flyte.with_runcontext(debug=True).run(hello, name="World")
            print(run.outputs()[0], run.get_debug_url(), asyncio.run(run.get_debug_url.aio()))
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "Hello, World! None None"
    assert "debug=" in done.stderr  # the warning that debug=True starts no debugger
