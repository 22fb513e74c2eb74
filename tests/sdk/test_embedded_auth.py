"""The embedded controller is never open: a random token, and state files only its user reads."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.sdk.test_run import run_script


def test_embedded_controller_requires_its_own_token(tmp_path: Path) -> None:
    done = run_script(
        tmp_path,
        """
        import grpc, json, pathlib
        from reuse_runtime.sdk.runtime import state_dir

        @env.task
        async def one() -> int:
            return 1

        if __name__ == "__main__":
            r = flyte.run(one)
            print("result", r.outputs()[0])
            info = json.loads((state_dir() / "controller.json").read_text())
            # A caller without the token is refused before anything runs.
            channel = grpc.insecure_channel(info["address"])
            status = channel.unary_unary(
                "/reuse_runtime.v1.Controller/GetStatus",
                request_serializer=lambda b: b, response_deserializer=lambda b: b,
            )
            try:
                status(b"", timeout=10)
                print("open")
            except grpc.RpcError as e:
                print("refused", e.code().name)
            for path in sorted(state_dir().rglob("*")):
                print("mode", path.relative_to(state_dir()), oct(path.stat().st_mode & 0o777))
        """,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "result 1" in lines
    assert "refused UNAUTHENTICATED" in lines
    home = tmp_path / "home"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    modes = dict(line.split()[1:] for line in lines if line.startswith("mode "))
    assert modes["controller.json"] == "0o600"
    assert modes["runs"] == "0o700" and modes["replicas"] == "0o700"


def test_status_finds_the_embedded_token(tmp_path: Path) -> None:
    done = run_script(
        tmp_path,
        """
        import subprocess, sys

        @env.task
        async def one() -> int:
            return 1

        if __name__ == "__main__":
            print("result", flyte.run(one).outputs()[0])
            out = subprocess.run(
                [sys.executable, "-m", "reuse_runtime", "status", "--json"],
                capture_output=True, text=True, timeout=30,
            )
            print("status-rc", out.returncode)
            print(out.stdout)
            print(out.stderr)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "status-rc 0" in done.stdout, done.stdout
    body = done.stdout.split("status-rc 0", 1)[1]
    start = body.index("{")
    status, _ = json.JSONDecoder().raw_decode(body[start:])
    assert [e["name"] for e in status["environments"]] == ["t"]
    assert "token" not in json.dumps(status).lower()
