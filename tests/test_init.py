"""`reuse-runtime-init`, PID 1 of replica containers, on real processes (a stand-in cgroup)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import reuse_runtime_init
from reuse_runtime_init import MemoryCgroup, describe_bytes

INIT = [sys.executable, "-m", "reuse_runtime_init"]


def _init(tmp_path: Path, *command: str, cgroup: Path | None = None) -> subprocess.Popen[str]:
    env = dict(os.environ, REUSE_RUNTIME_INIT_DIR=str(tmp_path))
    code = (
        "import sys, reuse_runtime_init as i; from pathlib import Path; "
        f"sys.exit(i.run(sys.argv[1:], Path({str(tmp_path)!r}), "
        f"i.MemoryCgroup(Path({str(cgroup or tmp_path / 'none')!r}))))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _record(tmp_path: Path) -> dict[str, object]:
    return dict(json.loads((tmp_path / "exit.json").read_text()))


def test_exit_code_passes_through_and_stderr_is_kept(tmp_path: Path) -> None:
    init = _init(
        tmp_path, sys.executable, "-c", "import sys; print('oops', file=sys.stderr); sys.exit(3)"
    )
    _, err = init.communicate(timeout=30)
    assert init.returncode == 3
    assert "oops" in err  # the container log
    assert "oops" in (tmp_path / "stderr.log").read_text()  # and the record
    assert _record(tmp_path) == {"code": 3, "signal": None, "oom": False, "memory_limit": None}


def test_sigterm_is_forwarded_and_the_child_drains(tmp_path: Path) -> None:
    child = (
        "import signal, sys, time\n"
        "def drain(*_):\n"
        "    print('draining', file=sys.stderr, flush=True)\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, drain)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    init = _init(tmp_path, sys.executable, "-c", child)
    assert init.stdout is not None
    assert init.stdout.readline().strip() == "ready"
    init.send_signal(signal.SIGTERM)
    _, err = init.communicate(timeout=30)
    assert init.returncode == 0
    assert "draining" in err


def test_a_sigkill_counted_by_the_cgroup_is_reported_as_out_of_memory(tmp_path: Path) -> None:
    cgroup = tmp_path / "cgroup"
    (cgroup / "memory").mkdir(parents=True)
    events = cgroup / "memory" / "memory.oom_control"
    events.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    (cgroup / "memory" / "memory.limit_in_bytes").write_text(str(200 * 2**20))
    # The kernel would count the kill and send SIGKILL; the stand-in child does both.
    child = (
        f"import os, signal; open({str(events)!r}, 'w').write('oom_kill 1\\n'); "
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    init = _init(tmp_path, sys.executable, "-c", child, cgroup=cgroup)
    _, err = init.communicate(timeout=30)
    assert init.returncode == 137
    assert "out of memory" in err and "200 MiB" in err, err
    assert _record(tmp_path) == {
        "code": 137,
        "signal": 9,
        "oom": True,
        "memory_limit": 200 * 2**20,
    }


def test_a_sigkill_without_an_oom_kill_is_just_a_signal(tmp_path: Path) -> None:
    init = _init(tmp_path, sys.executable, "-c", "import os, signal; os.kill(os.getpid(), 9)")
    _, err = init.communicate(timeout=30)
    assert init.returncode == 137
    assert "out of memory" not in err
    assert _record(tmp_path)["oom"] is False


def test_a_missing_command_is_one_clear_line(tmp_path: Path) -> None:
    init = _init(tmp_path, "/no/such/program")
    _, err = init.communicate(timeout=30)
    assert init.returncode == 127
    assert "cannot start '/no/such/program'" in err


def test_usage_and_cgroup_v2_reading(tmp_path: Path) -> None:
    done = subprocess.run(INIT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "reuse-runtime-init" in done.stderr
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n")
    (tmp_path / "memory.max").write_text("max\n")
    v2 = MemoryCgroup(tmp_path)
    assert v2.oom_kills() == 2 and v2.limit() is None
    assert describe_bytes(256 * 2**20) == "256 MiB"
    assert reuse_runtime_init.WORKER_OOM_SCORE_ADJ > 0
