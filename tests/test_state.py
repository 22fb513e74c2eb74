"""A server started without credentials makes a token; only its own user's clients find it."""

from __future__ import annotations

import asyncio
import signal
import stat
from pathlib import Path

import pytest

from reuse_runtime.client import WorkerClient
from reuse_runtime.errors import AuthError
from tests.helpers import spawn_worker, task
from tests.worker import tasks


async def test_a_worker_without_a_token_makes_one_for_its_user_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    async with spawn_worker(REUSE_RUNTIME_HOME=str(home)) as worker:
        port = worker.address.rsplit(":", 1)[1]
        record = home / "servers" / f"{port}.json"
        assert stat.S_IMODE(record.stat().st_mode) == 0o600
        assert stat.S_IMODE(record.parent.stat().st_mode) == 0o700
        assert any("made one" in line and str(record) in line for line in worker.stderr_lines)
        # A client without the record (another user, another home) is refused.
        monkeypatch.setenv("REUSE_RUNTIME_HOME", str(tmp_path / "elsewhere"))
        async with WorkerClient(worker.address) as stranger:
            with pytest.raises(AuthError, match="none was sent"):
                await stranger.run(task(tasks.count))
        # The same user finds the token and runs.
        monkeypatch.setenv("REUSE_RUNTIME_HOME", str(home))
        async with WorkerClient(worker.address) as owner:
            assert (await owner.run(task(tasks.count))).unwrap() == 1
        worker.signal(signal.SIGTERM)
        assert await worker.wait(30) == 0
        for _ in range(50):
            if not record.exists():
                break
            await asyncio.sleep(0.1)
        assert not record.exists()  # removed at exit
