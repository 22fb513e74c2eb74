"""Code that travels, as a user meets it: a two-module project whose replicas cannot see
its files (the local backend told to fetch, so replicas run in their code folder with none
of the client's paths), edits that run at once, versions that retire, and bad input."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.helpers import run_python

MYLIB = """
import reuse_runtime as flyte

env = flyte.TaskEnvironment(
    name="team",
    reusable=flyte.ReusePolicy(replicas=(1, 2), scaledown_ttl={scaledown}, idle_ttl=600),
)

@env.task
async def double(x: int) -> int:
    return x * {factor}

def lazily() -> str:
    from helpers import shout  # imported inside a function: bundled all the same
    return shout("ok")
"""

MAIN = """
import json, os, sys
import reuse_runtime as flyte
import mylib

@mylib.env.task
async def main(n: int) -> dict:
    import mylib as lib
    return {
        "values": [await mylib.double(i) for i in range(n)],
        "mylib": lib.__file__,
        "lazy": lib.lazily(),
        "cwd_has_mylib": os.path.exists("mylib.py"),
        "cwd": os.getcwd(),
        "sys_path": sys.path,
    }

if __name__ == "__main__":
    flyte.init()
    print(json.dumps(flyte.run(main, n=3).outputs()[0]))
"""


def _project(tmp_path: Path, factor: int, scaledown: int = 3) -> None:
    (tmp_path / "mylib.py").write_text(
        textwrap.dedent(MYLIB).format(factor=factor, scaledown=scaledown)
    )
    (tmp_path / "helpers.py").write_text("def shout(text):\n    return text.upper()\n")


def test_a_two_module_project_runs_from_its_bundle_and_an_edit_runs_next(
    tmp_path: Path,
) -> None:
    _project(tmp_path, factor=2)
    first = run_python(tmp_path, MAIN, name="main.py", REUSE_RUNTIME_CODE_DELIVERY="fetch")
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout.splitlines()[-1])
    assert out["values"] == [0, 2, 4] and out["lazy"] == "OK"
    # Imported from the replica's own folder for the bundle, not from the project.
    code = tmp_path / "home" / "code"
    assert Path(out["mylib"]).parent.parent == code and not out["cwd_has_mylib"]
    # Forked by the fork server or exec'd, it starts in its code folder with none of the
    # client's paths.
    assert Path(out["cwd"]) == code
    assert not [p for p in out["sys_path"] if p and Path(p).resolve() == tmp_path.resolve()]
    _project(tmp_path, factor=10)  # an edit: no image, no restart
    second = run_python(tmp_path, MAIN, name="main.py", REUSE_RUNTIME_CODE_DELIVERY="fetch")
    assert second.returncode == 0, second.stderr
    out2 = json.loads(second.stdout.splitlines()[-1])
    assert out2["values"] == [0, 10, 20]
    assert Path(out2["mylib"]).parent != Path(out["mylib"]).parent  # a new version
    assert sorted(p.name for p in code.iterdir()) == sorted(
        Path(o["mylib"]).parent.name for o in (out, out2)
    )


VERSIONS = """
import json, time
import reuse_runtime as flyte
from reuse_runtime.cli.status_view import print_status
from reuse_runtime.sdk.runtime import runtime
import mylib

TEMPLATE = open("mylib.py").read()

if __name__ == "__main__":
    flyte.init()
    values, ended = [], []
    for version in range(4):  # the first run, then three edits
        with open("mylib.py", "w") as out:
            out.write(TEMPLATE.replace("x * 2", f"x * {10 + version}"))
        values.append(flyte.run(mylib.double, x=1).outputs()[0])
        ended.append(time.time())
    rt = runtime()
    deadline = time.time() + 30
    while True:
        status = rt.call(rt.client.status())
        team = [e for e in status.environments if e.name == "team"]
        old = [e for e in team if e.superseded]
        if all(not e.replicas for e in old) or time.time() > deadline:
            break
        time.sleep(0.2)
    print_status(status)
    print(json.dumps({
        "values": values,
        "ended": ended,
        "envs": [
            {
                "version": e.version,
                "superseded": e.superseded,
                "replicas": len(e.replicas),
                "stopped": [ev.at for ev in e.events if ev.kind == "stopped"],
            }
            for e in team
        ],
    }))
"""


def test_after_three_edits_one_version_is_current_and_the_old_ones_go_to_zero(
    tmp_path: Path,
) -> None:
    _project(tmp_path, factor=2, scaledown=3)
    done = run_python(tmp_path, VERSIONS, name="main.py", timeout=150)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["values"] == [10, 11, 12, 13]
    envs = out["envs"]
    assert len(envs) == 4
    current = [e for e in envs if not e["superseded"]]
    assert len(current) == 1 and current[0]["replicas"] == 1  # the current one keeps its min
    old = [e for e in envs if e["superseded"]]
    assert [e["replicas"] for e in old] == [0, 0, 0]
    # Each old version went to zero within scaledown_ttl (3 s) of its last task, not at
    # idle_ttl (600 s), and was not held at its minimum of one.
    for run, env in enumerate(old):
        assert env["stopped"], env
        assert env["stopped"][-1] - out["ended"][run] <= 3 + 2.5, (run, env, out["ended"])
    text = done.stdout
    assert f"team: 4 versions, current {current[0]['version']}" in text
    assert "3 older versions, no replicas: " in text


def test_bad_project_settings_are_one_line(tmp_path: Path) -> None:
    _project(tmp_path, factor=2)
    (tmp_path / "weights.bin").write_bytes(b"\1" * 300_000)
    done = run_python(
        tmp_path,
        """
        import reuse_runtime as flyte
        import mylib

        if __name__ == "__main__":
            try:
                flyte.init(root_dir="no-such-folder")
            except Exception as exc:
                print(type(exc).__name__, "|", exc)
            try:
                flyte.with_runcontext(copy_style="all").run(mylib.double, x=1)
            except Exception as exc:
                print(type(exc).__name__, "|", exc)
        """,
        name="main.py",
        REUSE_RUNTIME_MAX_BUNDLE_BYTES="100Ki",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("CodeBundleError | root_dir no-such-folder is not a directory")
    assert lines[1].startswith(f"CodeBundleError | the code bundle of {tmp_path}")
    assert "weights.bin 0.3 MiB" in lines[1] and "REUSE_RUNTIME_MAX_BUNDLE_BYTES" in lines[1]
    assert len(lines) == 2
