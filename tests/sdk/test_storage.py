"""``flyte.storage``: local paths and ``file://`` URIs, the store, and remote schemes via fsspec."""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import reuse_runtime as flyte
import reuse_runtime.storage as storage
from tests.helpers import run_python

FLYTE_NAMES = {
    "ABFS",
    "GCS",
    "S3",
    "Storage",
    "exists",
    "exists_sync",
    "get",
    "get_configured_fsspec_kwargs",
    "get_random_local_directory",
    "get_random_local_path",
    "get_stream",
    "get_underlying_filesystem",
    "is_remote",
    "join",
    "open",
    "put",
    "put_stream",
}


@pytest.fixture(autouse=True)
def _store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    store = tmp_path / "store"
    monkeypatch.setenv("REUSE_RUNTIME_STORE", str(store))
    return store


def test_the_names_and_signatures_are_flytes() -> None:
    assert set(storage.__all__) == FLYTE_NAMES and flyte.storage is storage
    params = {
        name: list(inspect.signature(getattr(storage, name)).parameters) for name in FLYTE_NAMES
    }
    assert params["get"] == ["from_path", "to_path", "recursive", "kwargs"]
    assert params["put"] == ["from_path", "to_path", "recursive", "batch_size", "kwargs"]
    assert params["put_stream"] == ["data_iterable", "name", "to_path", "kwargs"]
    assert params["get_stream"] == ["path", "chunk_size", "kwargs"]
    assert params["get_underlying_filesystem"] == ["protocol", "anonymous", "path", "kwargs"]
    assert params["get_random_local_path"] == ["file_path_or_file_name"]


def test_put_get_and_streams_on_local_paths_and_file_uris(tmp_path: Path, _store: Path) -> None:
    src = tmp_path / "src.txt"
    src.write_text("hello")

    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"ab", b"cd"):
            yield part

    async def scenario() -> list[object]:
        stored = await storage.put(str(src))
        fetched = await storage.get(f"file://{stored}", str(tmp_path / "out") + "/")
        streamed = await storage.put_stream(chunks(), name="s.bin")
        whole = b"".join([c async for c in storage.get_stream(streamed, chunk_size=1)])
        handle = await storage.open(streamed, "rb")
        first = await handle.read(2)
        await handle.close()
        return [stored, fetched, whole, first, await storage.exists(streamed)]

    stored, fetched, whole, first, found = asyncio.run(scenario())
    assert str(stored).startswith(str(_store)) and Path(str(stored)).read_text() == "hello"
    assert fetched == str(tmp_path / "out" / "src.txt") and Path(fetched).read_text() == "hello"
    assert whole == b"abcd" and first == b"ab" and found
    assert storage.exists_sync(str(src)) and not storage.exists_sync(str(tmp_path / "nope"))
    assert not storage.is_remote(f"file://{src}") and storage.is_remote("s3://b/k")
    assert storage.join("a", "b") == "a/b"
    assert storage.get_random_local_path("x/name.txt").name == "name.txt"
    assert storage.get_random_local_directory().is_dir()


def test_a_tree_copies_with_recursive_and_only_with_it(tmp_path: Path) -> None:
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "f").write_text("f")
    target = asyncio.run(
        storage.put(str(tmp_path / "tree"), str(tmp_path / "copy"), recursive=True)
    )
    assert (Path(target) / "sub" / "f").read_text() == "f"
    with pytest.raises(IsADirectoryError, match="recursive=True"):
        asyncio.run(storage.get(str(tmp_path / "tree"), str(tmp_path / "again")))


def test_arguments_for_fsspec_on_a_local_path_fail_instead_of_vanishing(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="anon only apply to remote"):
        storage.exists_sync(str(tmp_path), anon=True)


def test_remote_paths_without_fsspec_fail_with_one_line_naming_the_packages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)  # makes `import fsspec` fail
    with pytest.raises(ImportError, match=r"pip install fsspec s3fs\)$") as s3:
        storage.exists_sync("s3://bucket/key")
    assert "\n" not in str(s3.value)
    with pytest.raises(ImportError, match=r"pip install fsspec gcsfs"):
        flyte.io.File.from_existing_remote("gs://bucket/key").download_sync()
    with pytest.raises(ImportError, match=r"pip install fsspec adlfs"):
        asyncio.run(storage.get("abfs://c/k"))


def test_a_task_streams_through_the_store(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        """
        import reuse_runtime as flyte
        import reuse_runtime.storage as storage

        env = flyte.TaskEnvironment(name="streams", reusable=flyte.ReusePolicy(replicas=2))

        @env.task
        async def write() -> str:
            return await storage.put_stream(b"offloaded", name="blob.bin")

        @env.task
        async def read(path: str) -> str:
            return b"".join([c async for c in storage.get_stream(path)]).decode()

        @env.task
        async def main() -> str:
            return await read(await write())

        if __name__ == "__main__":
            print(flyte.run(main).outputs()[0])
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["offloaded"]


def test_remote_paths_go_through_fsspec(tmp_path: Path) -> None:
    bucket = f"memory://{tmp_path.name}"
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "t" / "s").mkdir(parents=True)
    (tmp_path / "t" / "x.txt").write_text("x")
    (tmp_path / "t" / "s" / "y.csv").write_text("y")
    File, Dir = flyte.io.File, flyte.io.Dir

    async def scenario() -> list[object]:
        f = await File.from_local(tmp_path / "a.txt", remote_destination=f"{bucket}/a.txt")
        async with f.open("rb") as fh:
            content = await fh.read()
        copy = Path(await f.download(f"{tmp_path}/down/"))
        d = await Dir.from_local(tmp_path / "t", remote_destination=f"{bucket}/t")
        csv = [g.name for g in d.walk_sync(file_pattern="*.csv")]
        top = [g.name for g in await d.list_files()]
        got = await d.get_file("x.txt")
        tree = Path(await d.download(tmp_path / "tree"))
        streamed = await storage.put_stream(b"streamed", to_path=f"{bucket}/s.bin")
        back = b"".join([c async for c in storage.get_stream(streamed)])
        return [
            f.path,
            content,
            copy,
            csv,
            top,
            got is not None and await got.exists(),
            await d.get_file("nope"),
            tree / "s" / "y.csv",
            back,
            storage.exists_sync(f"{bucket}/missing"),
        ]

    result = asyncio.run(scenario())
    result[2] = Path(str(result[2])).read_text()
    result[7] = Path(str(result[7])).read_text()
    assert result == [
        f"{bucket}/a.txt",
        b"alpha",
        "alpha",
        ["y.csv"],
        ["x.txt"],
        True,
        None,
        "y",
        b"streamed",
        False,
    ]
