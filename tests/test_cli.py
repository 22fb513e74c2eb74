"""The ``reuse-runtime`` command, as a new user meets it: one clear line per mistake."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reuse_runtime.cli import build_parser
from tests.helpers import run_cli, subprocess_env

SCRIPT = """
import reuse_runtime as flyte

env = flyte.TaskEnvironment(name="cli", reusable=flyte.ReusePolicy(replicas=1))

@env.task
async def main(n: int, who: str = "world") -> str:
    return f"{n} {who}"

@env.task
async def broken(key: str) -> int:
    return {}[key]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reuse_runtime", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.startswith("reuse-runtime ")


def test_run_converts_arguments_and_names_a_bad_one(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(SCRIPT)
    done = run_cli(tmp_path, "run", "app.py", "main", "n=3", "--who", "007")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "'3 007'"
    done = run_cli(tmp_path, "run", "app.py", "main", "n=three")
    assert done.returncode == 2
    assert done.stderr == (
        "reuse-runtime run: error: parameter n of task main takes int; 'three' is not an int\n"
    )


JSON_SCRIPT = """
from dataclasses import dataclass

import reuse_runtime as flyte

env = flyte.TaskEnvironment(name="cli-json", reusable=flyte.ReusePolicy(replicas=1))

@dataclass
class Point:
    x: int
    y: int = 0

@env.task
async def total(p: Point, more: list[Point], data: flyte.io.File) -> str:
    async with data.open("rb") as f:
        text = (await f.read()).decode()
    return f"{p.x + p.y + sum(q.x for q in more)} {text}"
"""


def test_run_builds_dataclasses_lists_and_files_as_flyte_run_does(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(JSON_SCRIPT)
    (tmp_path / "in.txt").write_text("read")
    done = run_cli(
        tmp_path, "run", "app.py", "total", 'p={"x": 1, "y": 2}',
        "--more", '[{"x": 3}, {"x": 4}]', "--data", "in.txt",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "'10 read'"
    done = run_cli(tmp_path, "run", "app.py", "total", "p=1", "more=[]", "data=in.txt")
    assert (done.returncode, done.stderr) == (
        2,
        "reuse-runtime run: error: parameter p of task total takes Point; "
        "1 is not a JSON object for Point\n",
    )


def test_a_failing_task_shows_type_message_and_remote_traceback(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(SCRIPT)
    done = run_cli(tmp_path, "run", "app.py", "broken", "key=missing-key")
    assert done.returncode == 1
    name = done.stdout.splitlines()[0]
    for where in (done.stderr, (tmp_path / "home" / "runs" / f"{name}.log").read_text()):
        assert f"run {name} failed: KeyError: 'missing-key'" in where
        assert 'app.py", line 12, in broken' in where and "return {}[key]" in where
    assert "reuse_runtime/" not in done.stderr  # no frames of ours


def test_a_script_that_fails_to_import_gets_one_line(tmp_path: Path) -> None:
    (tmp_path / "typo.py").write_text(
        "import reuse_runtime as flyte\n\n"
        "env = flyte.TaskEnvironment(name='t', reuseable=flyte.ReusePolicy(replicas=1))\n"
    )
    done = run_cli(tmp_path, "run", "typo.py", "main")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "reuse-runtime run: error: typo.py failed when imported: typo.py, line 3: TypeError: "
        "TaskEnvironment.__init__() got an unexpected keyword argument 'reuseable' "
        "(did you mean 'reusable'?)"
    ]
    done = run_cli(tmp_path, "run", "nope.py", "main")
    assert done.stderr == "reuse-runtime run: error: no such file: nope.py\n"


def test_controller_on_a_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(tmp_path, "controller", "--port", str(port), timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"reuse-runtime controller: error: cannot listen on 127.0.0.1:{port}: the port is in "
        f"use (another controller or worker?); stop it, or pick another port with --port"
    )
    assert "Traceback" not in done.stderr and "add_port.cc" not in done.stderr


def test_status_finds_a_controller_on_the_default_port_and_does_not_wrap_when_piped(
    tmp_path: Path,
) -> None:
    port = str(_free_port())
    env = subprocess_env(
        REUSE_RUNTIME_HOME=str(tmp_path / "home"), REUSE_RUNTIME_CONTROLLER_PORT=port
    )
    controller = subprocess.Popen(
        [sys.executable, "-m", "reuse_runtime", "controller"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert controller.stdout is not None
        assert controller.stdout.readline().strip() == f"listening on 127.0.0.1:{port}"
        script = tmp_path / "use.py"
        script.write_text(
            textwrap.dedent(
                f"""
                import reuse_runtime as flyte
                env = flyte.TaskEnvironment(
                    name="an-environment-with-a-rather-long-name-for-the-status-table",
                    reusable=flyte.ReusePolicy(replicas=2, concurrency=8),
                )
                @env.task
                async def ping() -> str:
                    return "pong"
                if __name__ == "__main__":
                    flyte.init(endpoint="127.0.0.1:{port}")
                    print(flyte.run(ping).outputs()[0])
                """
            )
        )
        ran = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
        )
        assert ran.stdout.strip() == "pong", ran.stderr
        # The run needs one replica; the second of replicas=2 may still be starting.
        deadline = time.monotonic() + 60
        while True:
            status = subprocess.run(
                [sys.executable, "-m", "reuse_runtime", "status"],
                capture_output=True,
                text=True,
                env={**env, "COLUMNS": "200"},
                cwd=tmp_path,
                timeout=60,
            )
            lines = status.stdout.splitlines()
            ready = [line for line in lines if line.startswith("  ") and "ready" in line]
            if status.returncode != 0 or len(ready) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        controller.terminate()
        controller.communicate(timeout=30)
    assert status.returncode == 0, status.stderr
    assert lines[0].startswith(f"controller 127.0.0.1:{port}")
    # Piped: each environment and each replica is one line, whatever its length.
    (heading,) = [line for line in lines if line.startswith("an-environment-with")]
    assert "  2..2 x 8  " in heading and heading.endswith("done 1  failed 0"), heading
    assert len(heading) > 80
    replicas = [line.split()[0] for line in lines if line.startswith("  ") and "ready" in line]
    assert len(replicas) == 2 and len(set(replicas)) == 2  # ids stay apart


def test_status_after_a_run_says_which_run_its_controller_ended_with_and_its_record(
    tmp_path: Path,
) -> None:
    (tmp_path / "app.py").write_text(SCRIPT)
    port = str(_free_port())
    ran = run_cli(tmp_path, "run", "app.py", "main", "n=1", REUSE_RUNTIME_CONTROLLER_PORT=port)
    assert ran.returncode == 0, ran.stderr
    name = ran.stdout.splitlines()[0]
    done = run_cli(tmp_path, "status", REUSE_RUNTIME_CONTROLLER_PORT=port)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        f"reuse-runtime status: error: no controller to ask: the embedded controller of run "
        f"{name} ended with its process (pid "
    ), line
    assert f"; the run's record is {tmp_path / 'home' / 'runs' / name}.log;" in line
    assert f"none listens on 127.0.0.1:{port} either" in line


def test_status_without_any_controller_says_what_to_do(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "status", REUSE_RUNTIME_CONTROLLER_PORT=str(_free_port()))
    assert done.returncode == 2
    assert done.stderr.startswith("reuse-runtime status: error: no controller to ask")
    done = run_cli(tmp_path, "status", "--endpoint", "nonsense:x")
    assert done.returncode == 2
    assert done.stderr == (
        "reuse-runtime status: error: --endpoint 'nonsense:x' is not HOST:PORT or "
        "dns:///HOST:PORT: its port 'x' is not a number in 1-65535\n"
    )


def test_an_address_is_read_the_same_by_every_command(tmp_path: Path) -> None:
    """Flyte's dns:///HOST:PORT is an address; a URL fails at once, naming the forms."""
    done = run_cli(tmp_path, "status", "--endpoint", "https://ctl.example.com")
    assert done.returncode == 2
    assert done.stderr == (
        "reuse-runtime status: error: --endpoint 'https://ctl.example.com' is a URL, and a "
        "controller speaks gRPC, not HTTP: give HOST:PORT or dns:///HOST:PORT, for example "
        "ctl.example.com:50050\n"
    )
    done = run_cli(tmp_path, "status", REUSE_RUNTIME_ENDPOINT="http://127.0.0.1:50050")
    assert done.returncode == 2
    assert done.stderr.startswith(
        "reuse-runtime status: error: $REUSE_RUNTIME_ENDPOINT 'http://127.0.0.1:50050' is a URL"
    )
    done = run_cli(tmp_path, "worker", "--controller", "http://127.0.0.1:50050")
    assert done.returncode == 2
    assert done.stderr.startswith(
        "reuse-runtime worker: error: --controller 'http://127.0.0.1:50050' is a URL"
    )
    with socket.socket() as held:  # bound, not listening: connections are refused
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        started = time.monotonic()
        done = run_cli(tmp_path, "status", "--endpoint", f"dns:///127.0.0.1:{port}")
        took = time.monotonic() - started
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"reuse-runtime status: error: nothing listens on 127.0.0.1:{port} (connection "
        f"refused): is the controller running?"
    )
    # Starting the command costs what it costs on this machine's day: measured alike, the
    # refusal adds about a second to it (and the imports --help skips), not a 5 s wait.
    started = time.monotonic()
    run_cli(tmp_path, "status", "--help")
    startup = time.monotonic() - started
    assert took < 2 * startup + 2, (took, startup)  # a timeout would be 5 s more


def test_a_worker_started_with_sigterm_blocked_still_drains_on_sigterm(tmp_path: Path) -> None:
    """The SDK's runtime thread blocks SIGTERM, and its replicas inherit that mask: the
    worker unblocks it, so a stopped replica drains at once (exit 0), not after a SIGKILL."""
    import signal
    import threading

    started: list[subprocess.Popen[str]] = []

    def spawn() -> None:  # from a thread that blocks SIGTERM and SIGINT, like the runtime's
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", "reuse_runtime", "worker", "--port", "0"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=subprocess_env(REUSE_RUNTIME_HOME=str(tmp_path)),
            )
        )

    thread = threading.Thread(target=spawn)
    thread.start()
    thread.join()
    worker = started[0]
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().startswith("listening on ")
        # The mask is read more than once: a thread that creates a thread (glibc's
        # pthread_create) blocks every signal for that moment, and /proc shows it.
        deadline = time.monotonic() + 10
        while True:
            blocked = next(
                line
                for line in Path(f"/proc/{worker.pid}/status").read_text().splitlines()
                if line.startswith("SigBlk:")
            )
            if not int(blocked.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
                break
            assert time.monotonic() < deadline, f"SIGTERM stays blocked: {blocked}"
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        assert worker.stdout is not None
        worker.stdout.close()


def _parsers(
    parser: argparse.ArgumentParser, name: str = "reuse-runtime"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {command}")


def test_every_command_and_option_says_what_it_does_and_its_default() -> None:
    """The CLI reference is made from build_parser(): nothing in it may go unexplained."""
    undescribed, unexplained, no_default = [], [], []
    for name, parser in _parsers(build_parser()):
        if name != "reuse-runtime" and not parser.description:
            undescribed.append(name)
        for action in parser._actions:
            what = f"{name} {'/'.join(action.option_strings) or action.dest}"
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not action.help:
                unexplained.append(what)
            # An option that takes a value and may be left out says what it is then.
            takes_value = action.option_strings and action.nargs != 0 and not action.required
            if takes_value and "default" not in str(action.help):
                no_default.append(what)
    assert (undescribed, unexplained, no_default) == ([], [], [])


@pytest.mark.parametrize("command", [("logs",), ("k8s", "manifests")])
def test_a_reader_that_goes_away_ends_the_command_quietly(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """`reuse-runtime logs | head`: when head has gone, stop as Unix tools do: no error
    line, the status of a process that SIGPIPE ended."""
    runs = tmp_path / "home" / "runs"
    runs.mkdir(parents=True)
    (runs / "r1.log").write_text("".join(f"line {n}\n" for n in range(1000)))
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command writes a byte
    try:
        done = subprocess.run(
            [sys.executable, "-m", "reuse_runtime", *command],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env=subprocess_env(REUSE_RUNTIME_HOME=str(tmp_path / "home")),
        )
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (128 + signal.SIGPIPE, "")


def _complete(tmp_path: Path, line: str) -> list[str]:
    """What `reuse-runtime` offers for ``line`` when the shell asks (argcomplete's protocol:
    the line and the cursor in the environment, the answer in a file, one per line)."""
    answer = tmp_path / "completions"
    done = subprocess.run(
        [sys.executable, "-m", "reuse_runtime"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=subprocess_env(
            REUSE_RUNTIME_HOME=str(tmp_path / "home"),
            _ARGCOMPLETE="1",
            _ARGCOMPLETE_SHELL="bash",
            _ARGCOMPLETE_IFS="\n",
            _ARGCOMPLETE_STDOUT_FILENAME=str(answer),
            COMP_LINE=line,
            COMP_POINT=str(len(line)),
        ),
    )
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    return answer.read_text().split()


def test_the_shell_completes_commands_options_and_their_values(tmp_path: Path) -> None:
    assert _complete(tmp_path, "reuse-runtime sta") == ["status"]
    assert _complete(tmp_path, "reuse-runtime k8s ") == ["-h", "--help", "manifests", "workers"]
    assert _complete(tmp_path, "reuse-runtime status --int") == ["--interval"]
    assert _complete(tmp_path, "reuse-runtime worker --tls-ce") == ["--tls-cert"]
    assert _complete(tmp_path, "reuse-runtime controller --backend k") == ["kubernetes"]
    runs = tmp_path / "home" / "runs"
    runs.mkdir(parents=True)
    for name in ("r20250101-000000-aaaaaa", "r20250102-000000-bbbbbb", "other"):
        (runs / f"{name}.log").write_text("")
    assert _complete(tmp_path, "reuse-runtime logs r2025") == [
        "r20250101-000000-aaaaaa",
        "r20250102-000000-bbbbbb",
    ]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_once_the_user_registers_the_command(tmp_path: Path) -> None:
    """What a user does: eval "$(register-python-argcomplete reuse-runtime)", then TAB."""
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "reuse-runtime").exists(), "the console script is installed beside python"
    assert (bin_dir / "register-python-argcomplete").exists()
    script = """
        eval "$(register-python-argcomplete reuse-runtime)"
        COMP_LINE="reuse-runtime status --wa"; COMP_POINT=${#COMP_LINE}
        COMP_WORDS=(reuse-runtime status --wa); COMP_CWORD=2
        _python_argcomplete reuse-runtime --wa status
        printf '%s\n' "${COMPREPLY[@]}"
    """
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=subprocess_env(
            PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            REUSE_RUNTIME_HOME=str(tmp_path / "home"),
        ),
    )
    assert done.stdout.split() == ["--watch"], done.stderr
