"""``flyte.io.File`` and ``Dir``: local paths, backed by the file store."""

from __future__ import annotations

import asyncio
import pickle
import textwrap
from pathlib import Path

import pytest

import reuse_runtime as flyte
from tests.helpers import run_python

File, Dir = flyte.io.File, flyte.io.Dir


@pytest.fixture(autouse=True)
def _store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    store = tmp_path / "store"
    monkeypatch.setenv("REUSE_RUNTIME_STORE", str(store))
    return store


def test_from_local_copies_into_the_store_once_per_content(tmp_path: Path, _store: Path) -> None:
    src = tmp_path / "data.csv"
    src.write_text("a,b\n1,2\n")
    f = File.from_local_sync(src)
    assert f.name == "data.csv" and f.path.startswith(str(_store)) and f.hash
    assert Path(f.path).read_text() == "a,b\n1,2\n"
    assert File.from_local_sync(src) == f  # same content, same place
    src.write_text("changed")
    assert File.from_local_sync(src).path != f.path
    assert pickle.loads(pickle.dumps(f)) == f
    assert f.exists_sync() and not File(path=str(tmp_path / "nope")).exists_sync()
    with pytest.raises(FileNotFoundError):
        File.from_local_sync(tmp_path / "missing")


def test_open_download_and_new_remote(tmp_path: Path) -> None:
    async def scenario() -> tuple[bytes, str, list[str]]:
        out = File.new_remote("out.txt")
        async with out.open("wb") as fh:
            await fh.write(b"hello\nworld\n")
        async with out.open("rb") as fh:
            content = await fh.read()
        copy = await out.download()
        lines = []
        async with out.open("r") as fh:
            async for line in fh:
                lines.append(line.strip())
        return content, copy, lines

    content, copy, lines = asyncio.run(scenario())
    assert content == b"hello\nworld\n" and Path(copy).read_text() == "hello\nworld\n"
    assert lines == ["hello", "world"]
    named = File.named_remote("shared.txt")
    with named.open_sync("w") as fh:
        fh.write("x")
    assert File.named_remote("shared.txt").path == named.path
    target = tmp_path / "down" / "here.txt"
    assert named.download_sync(target) == str(target) and target.read_text() == "x"
    with pytest.raises(ValueError, match="s3://"):
        File.from_existing_remote("s3://bucket/key").exists_sync()


def test_dir_from_local_walk_and_download(tmp_path: Path) -> None:
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    d = Dir.from_local_sync(src)
    assert d.name == "tree" and d.exists_sync()
    assert [f.name for f in d.walk_sync()] == ["a.txt", "b.txt"]
    assert [f.name for f in d.walk_sync(recursive=False)] == ["a.txt"]
    assert [f.name for f in d.list_files_sync()] == ["a.txt"]

    async def walked() -> list[str]:
        return [f.name async for f in d.walk()]

    assert asyncio.run(walked()) == ["a.txt", "b.txt"]
    copy = Path(d.download_sync(tmp_path / "copy"))
    assert (copy / "sub" / "b.txt").read_text() == "b"
    assert d.get_file("a.txt") is not None and d.get_file("zzz") is None


def test_files_travel_between_tasks_on_replicas(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        textwrap.dedent(
            """
            from pathlib import Path
            import reuse_runtime as flyte
            from reuse_runtime.io import Dir, File

            env = flyte.TaskEnvironment(name="files", reusable=flyte.ReusePolicy(replicas=2))

            @env.task
            async def write(n: int) -> File:
                local = Path(f"/tmp/reuse-runtime-test-{n}.txt")
                local.write_text("\\n".join(str(i) for i in range(n)))
                f = await File.from_local(local)
                local.unlink()
                return f

            @env.task
            def total(f: File) -> int:
                with f.open_sync("r") as fh:
                    return sum(int(line) for line in fh)

            @env.task
            async def main(n: int) -> int:
                return await total.aio(await write(n))

            if __name__ == "__main__":
                print(flyte.run(main, 5).outputs()[0])
            """
        ),
        REUSE_RUNTIME_STORE=str(tmp_path / "shared-store"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["10"]
    assert list((tmp_path / "shared-store").rglob("*.txt"))
