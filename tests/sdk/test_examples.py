"""The example programs in Flyte's style, run as a user runs them: ``python FILE``.

Like Flyte's own examples they end right after ``flyte.run(...)``, printing the
run's name and URL; the run still finishes (and shows its output) before exit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from reuse_runtime import runlog
from tests.helpers import ROOT, subprocess_env

EXAMPLES = ROOT / "examples"


def _run(example: str, tmp_path: Path) -> tuple[str, list[str], str]:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / example)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=subprocess_env(REUSE_RUNTIME_HOME=str(tmp_path / "home")),
    )
    assert done.returncode == 0, done.stderr
    name, url, *output = done.stdout.splitlines()
    assert runlog.run_name_of(url) == name  # the run's page, while the script ran
    log = runlog.find_run_log(tmp_path / "home" / "runs", name).read_text()
    assert f"run {name} succeeded" in log
    assert done.stderr.splitlines() == [
        f"reuse-runtime: finishing 1 run still in progress before exit ({name}); Ctrl-C cancels"
    ]
    return name, output, log


def test_map_group_trace(tmp_path: Path) -> None:
    _, output, log = _run("map_group_trace.py", tmp_path)
    assert output == ["[main] scored 3 words: {'Flyte ': 85, 'reuse': 83, 'Containers': 143}"]
    assert log.count("trace normalize:") == 3


def test_cache_and_errors_answers_from_the_cache_the_second_time(tmp_path: Path) -> None:
    _, first, _ = _run("cache_and_errors.py", tmp_path)
    assert first == [
        "[expensive] computing expensive(1000)",
        "[main] expensive: 332833500",
        "[main] succeeded on attempt 2",
        "[main] caught ValueError: -1 is negative",
        "[main] gave up at once: bad configuration: no retry helps",
    ]
    _, second, log = _run("cache_and_errors.py", tmp_path)
    assert second == first[1:]  # expensive() did not run again
    lines = [line for line in map(runlog.parse_line, log.splitlines()) if line is not None]
    assert any(
        (line.task, line.stream, line.text) == ("expensive", "cache", "cache hit") for line in lines
    )


def test_clone_and_runcontext(tmp_path: Path) -> None:
    name, output, _ = _run("clone_and_runcontext.py", tmp_path)
    assert name.startswith("clone-demo-")
    assert output == [f"[main] run {name}: crunch(1000) = 499500 (stage demo, owner data-team)"]


def test_files(tmp_path: Path) -> None:
    _, output, _ = _run("files.py", tmp_path)
    assert output == ["[main] squares.csv: the squares of 0..9 add up to 285"]
