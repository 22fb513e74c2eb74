"""Nobody else gets in: another local user can read no state file and run no code.

A real embedded pool runs as this user (root here); a probe runs as ``nobody``
(via setpriv) and tries every state file and every RPC of the controller and of
each replica, with no token and with a wrong one, each time trying to run code
that writes a canary file.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers import ROOT, stop_process, subprocess_env

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

DRIVER = """
import asyncio, pathlib, sys
import reuse_runtime as flyte

env = flyte.TaskEnvironment(name="victim", reusable=flyte.ReusePolicy(replicas=2, concurrency=1))

@env.task
async def hold(release: str) -> int:
    print("holding", flush=True)
    while not pathlib.Path(release).exists():
        await asyncio.sleep(0.05)
    return 1

@env.task
async def main(release: str) -> int:
    return sum(await asyncio.gather(hold(release), hold(release)))

if __name__ == "__main__":
    r = flyte.run(main, sys.argv[1])
    r.wait()
    print("result", r.outputs()[0], flush=True)
"""


def _python_for_nobody(where: Path) -> list[str] | None:
    """An interpreter (and path) that `nobody` can run with grpc and our generated code."""
    paths = [*site.getsitepackages(), str(ROOT / "src"), str(ROOT)]
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for python in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if not python:
            continue
        command = [
            *NOBODY,
            "env",
            "-i",
            f"PYTHONPATH={os.pathsep.join(paths)}",
            python,
            "-c",
            "import sys, grpc, cloudpickle, reuse_runtime.wire.v1.runtime_pb2;"
            "print('%d.%d' % sys.version_info[:2])",
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=where)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip() == version:
            return command[:-2]
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a probe as another user")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
@pytest.mark.timeout(420)
def test_another_local_user_reads_nothing_and_runs_nothing() -> None:
    # A world-traversable parent: only the state directory's own modes protect it.
    parent = Path(tempfile.mkdtemp(prefix="reuse-attacker-", dir="/tmp"))
    parent.chmod(0o755)
    home, canary, release = parent / "home", parent / "canary", parent / "release"
    probe_python = _python_for_nobody(parent)
    if probe_python is None:
        shutil.rmtree(parent)
        pytest.skip("no Python that the user nobody can run with this venv's grpcio")
    (parent / "driver.py").write_text(DRIVER)
    driver = subprocess.Popen(
        [sys.executable, str(parent / "driver.py"), str(release)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=parent,
        env=subprocess_env(REUSE_RUNTIME_HOME=str(home)),
    )
    try:
        assert driver.stdout is not None
        held = [driver.stdout.readline() for _ in range(2)]
        assert held == ["[hold] holding\n"] * 2, held
        info = json.loads((home / "controller.json").read_text())
        # Replicas forked by the fork server are its children: the driver's grandchildren.
        replicas = psutil.Process(driver.pid).children(recursive=True)
        ports = {int(info["address"].rsplit(":", 1)[1])}
        for replica in replicas:
            ports |= {c.laddr.port for c in replica.net_connections("tcp") if c.status == "LISTEN"}
        assert len(ports) == 3, ports  # the controller and two replicas
        # Anyone may read a command line (ps): the token is never on one.
        token = info["token"]
        assert token
        assert not [p for p in (psutil.Process(driver.pid), *replicas) if token in str(p.cmdline())]
        files = sorted(str(p) for p in home.rglob("*") if p.is_file())
        dirs = sorted({str(home), *(str(p) for p in home.rglob("*") if p.is_dir())})
        assert any(f.endswith("controller.json") for f in files)
        plan = parent / "plan.json"
        plan.write_text(
            json.dumps(
                {
                    "files": files,
                    "dirs": dirs,
                    "ports": sorted(ports),
                    "pids": [driver.pid, *(r.pid for r in replicas)],
                    "canary": str(canary),
                }
            )
        )
        probe = subprocess.run(
            [*probe_python, str(ROOT / "tests" / "attacker_probe.py"), str(plan)],
            capture_output=True,
            text=True,
            timeout=300,  # 66 calls and 3 health checks; seconds alone, minutes under load
            cwd=parent,
        )
        assert probe.returncode == 0, probe.stderr
        report = json.loads(probe.stdout)
        time.sleep(0.5)  # a task that got through would have written the canary by now
        assert not canary.exists(), "the attacker ran code in a replica"
        # Every token holder still works: release the run.
        release.touch()
        out, err = driver.communicate(timeout=60)
        assert driver.returncode == 0, err
        assert "result 2" in out
    finally:
        stop_process(driver)
        shutil.rmtree(parent, ignore_errors=True)

    assert report["files"], report
    readable = {path: what for path, what in report["files"].items() if what != "denied"}
    assert not readable, readable
    rpcs = report["rpcs"]
    assert len(rpcs) == 3 * 11 * 2
    let_in = {call: code for call, code in rpcs.items() if code != "UNAUTHENTICATED"}
    assert not let_in, let_in
    # Health checks stay open (docs/security.md says so); they reveal only "serving".
    assert set(report["health"].values()) == {"OK"}
    assert token not in json.dumps(report)
