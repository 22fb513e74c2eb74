"""``flyte.ctx().checkpoint``: an attempt's save, loaded by the next attempt of the task."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from reuse_runtime.errors import CheckpointUnavailableError
from reuse_runtime.paths import STORE_ENV, STORE_SHARED_ENV
from reuse_runtime.sdk.checkpoint import PAYLOAD, checkpoint_for
from tests.helpers import run_python


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "store"))
    return tmp_path / "store"


def test_the_first_attempt_has_nothing_to_load_and_a_retry_loads_the_newest_save(
    store: Path, tmp_path: Path
) -> None:
    first = checkpoint_for("r1", "a1", 1)
    assert not first.prev_exists() and first.load_sync() is None
    first.save_sync(b"1")
    second = checkpoint_for("r1", "a1", 2)  # saves nothing
    assert second.prev_exists()
    loaded = second.load_sync()
    assert loaded == second.path / PAYLOAD and loaded.read_bytes() == b"1"
    third = checkpoint_for("r1", "a1", 3)
    assert third.remote_source == str(store / "checkpoints" / "r1" / "a1" / "1")
    (tmp_path / "state.txt").write_text("from a file")
    asyncio.run(third.save(tmp_path / "state.txt"))
    fourth = asyncio.run(checkpoint_for("r1", "a1", 4).load())
    assert fourth is not None and fourth.read_text() == "from a file"
    assert checkpoint_for("r1", "other", 2).load_sync() is None  # actions do not share


def test_a_directory_is_saved_as_a_tree_and_restored_under_path(
    store: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "last.ckpt").write_text("weights")
    (tree / "step").write_text("7")
    checkpoint_for("r1", "a1", 1).save_sync(str(tree))
    retry = checkpoint_for("r1", "a1", 2)
    assert retry.load_sync() == retry.path
    assert (retry.path / "sub" / "last.ckpt").read_text() == "weights"
    assert (retry.path / "step").read_text() == "7"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        retry.save_sync(tmp_path / "missing")


def test_replicas_with_a_store_of_their_own_refuse_in_one_line(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STORE_SHARED_ENV, "0")
    with pytest.raises(CheckpointUnavailableError, match="has a store of its own"):
        checkpoint_for("r1", "a1", 1)


def test_retried_tasks_resume_from_their_checkpoint(tmp_path: Path) -> None:
    """Flyte's examples/checkpoint/generic_data_checkpoint.py, sync and async."""
    done = run_python(
        tmp_path,
        textwrap.dedent(
            """
            import reuse_runtime as flyte

            env = flyte.TaskEnvironment(name="ckpt", reusable=flyte.ReusePolicy(replicas=1))

            @env.task(retries=3)
            def count_sync(n: int) -> list:
                checkpoint = flyte.ctx().checkpoint
                path = checkpoint.load_sync()
                start = int(path.read_bytes()) if path is not None else 0
                for index in range(start, n):
                    if index > start and index % 3 == 0:
                        raise RuntimeError(f"failed at {index}")
                    checkpoint.save_sync(str(index + 1).encode())
                return [flyte.ctx().attempt_number, start]

            @env.task(retries=3)
            async def count_async(n: int) -> list:
                checkpoint = flyte.ctx().checkpoint
                path = await checkpoint.load()
                start = int(path.read_bytes()) if path is not None else 0
                for index in range(start, n):
                    if index > start and index % 3 == 0:
                        raise RuntimeError(f"failed at {index}")
                    await checkpoint.save(str(index + 1).encode())
                return [flyte.ctx().attempt_number, start]

            if __name__ == "__main__":
                print(flyte.run(count_sync, 8).outputs()[0])
                print(flyte.run(count_async, 8).outputs()[0])
            """
        ),
    )
    assert done.returncode == 0, done.stderr
    # Attempts start at 0, 3, 6: the third attempt (number 2) finishes from 6.
    assert done.stdout.splitlines()[-2:] == ["[2, 6]", "[2, 6]"]
