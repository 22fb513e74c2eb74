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
    assert d.get_file_sync("a.txt") is not None and d.get_file_sync("zzz") is None


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


def test_the_async_handle_reads_and_writes_as_flytes_does_in_a_task(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        """
        import reuse_runtime as flyte
        from reuse_runtime.io import File

        env = flyte.TaskEnvironment(name="handles")

        @env.task
        async def write() -> File:
            f = File.new_remote("lines.txt")
            async with f.open("w") as fh:
                await fh.writelines(["a\\n", "b\\n"])
                await fh.write("c\\n")
                assert await fh.tell() == 6
            return f

        @env.task
        async def read(f: File) -> list:
            async with f.open("r") as fh:
                every = await fh.readlines()
                await fh.seek(0)
                first = await fh.readline()
                rest = [line async for line in fh]
            async with f.open("rb") as fh:
                head = await fh.read(1)
            return [every, first, rest, head]

        @env.task
        async def main() -> list:
            return await read(await write())

        if __name__ == "__main__":
            print(flyte.run(main).outputs()[0])
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "[['a\\n', 'b\\n', 'c\\n'], 'a\\n', ['b\\n', 'c\\n'], b'a']"
    ]


def test_dir_get_file_is_async_with_a_sync_twin(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        """
        from pathlib import Path
        import reuse_runtime as flyte
        from reuse_runtime.io import Dir

        env = flyte.TaskEnvironment(name="getfile")

        @env.task
        async def make() -> Dir:
            root = Path("tree")
            root.mkdir()
            (root / "data.csv").write_text("x,y")
            return await Dir.from_local(root)

        @env.task
        async def read_async(d: Dir) -> str:
            f = await d.get_file("data.csv")
            assert await d.get_file("missing.csv") is None
            async with f.open("rb") as fh:
                return (await fh.read()).decode()

        @env.task
        def read_sync(d: Dir) -> str:
            assert d.get_file_sync("missing.csv") is None
            with d.get_file_sync("data.csv").open_sync("r") as fh:
                return fh.read()

        @env.task
        async def main() -> str:
            d = await make()
            return await read_async(d) + "|" + await read_sync.aio(d)

        if __name__ == "__main__":
            print(flyte.run(main).outputs()[0])
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["x,y|x,y"]


def test_a_preset_hash_names_the_data_it_does_not_replace_it(tmp_path: Path) -> None:
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    one.write_text("first")
    two.write_text("second")
    a = File.from_local_sync(one, hash_method="preset")
    b = File.from_local_sync(two, hash_method="preset")
    assert a.hash == b.hash == "preset"
    assert Path(a.path).read_text() == "first" and Path(b.path).read_text() == "second"
    (tmp_path / "d1").mkdir()
    (tmp_path / "d1" / "x").write_text("1")
    (tmp_path / "d2").mkdir()
    (tmp_path / "d2" / "y").write_text("2")
    d1 = Dir.from_local_sync(tmp_path / "d1", dir_cache_key="k")
    d2 = Dir.from_local_sync(tmp_path / "d2", dir_cache_key="k")
    assert d1.hash == d2.hash == "k"
    assert [f.name for f in d1.walk_sync()] == ["x"] and [f.name for f in d2.walk_sync()] == ["y"]


def test_hash_methods_compute_the_hash_from_the_bytes(tmp_path: Path) -> None:
    src = tmp_path / "data.bin"
    src.write_bytes(b"payload")
    upper = flyte.io.HashFunction.from_fn(lambda data: bytes(data).upper().decode())
    assert File.from_local_sync(src, hash_method=upper).hash == "PAYLOAD"
    out = File.new_remote("out.bin", hash_method=flyte.io.HashFunction(lambda d: f"n={len(d)}"))
    assert out.hash is None
    with out.open_sync("wb") as fh:
        fh.write(b"12345")
    assert out.hash == "n=5"
    assert File.new_remote(hash_method="fixed").hash == "fixed"
    # The hash method stays behind when the File travels; the hash goes with it.
    assert pickle.loads(pickle.dumps(out)).hash == "n=5"


def test_empty_dir_walk_patterns_compression_and_schema(tmp_path: Path) -> None:
    empty = Dir.empty()
    assert empty.is_empty and isinstance(empty, flyte.io.EmptyDir)
    back = pickle.loads(pickle.dumps(empty))
    assert type(back) is Dir and back.is_empty
    assert not Dir.new_remote().is_empty

    (tmp_path / "t" / "s").mkdir(parents=True)
    for name in ("a.txt", "b.csv", "s/c.txt"):
        (tmp_path / "t" / name).write_text(name)
    d = Dir.from_local_sync(tmp_path / "t")
    assert [f.name for f in d.walk_sync(file_pattern="*.txt")] == ["a.txt", "c.txt"]
    assert [f.name for f in d.walk_sync(recursive=False, file_pattern="*.txt")] == ["a.txt"]

    packed = File.new_remote("data.gz")
    with packed.open_sync("wt", compression="gzip") as fh:
        fh.write("squeezed")
    assert Path(packed.path).read_bytes()[:2] == b"\x1f\x8b"
    with packed.open_sync("rt", compression="infer") as fh:
        assert fh.read() == "squeezed"
    with pytest.raises(ValueError, match="compression='zip'"):
        packed.open_sync("rb", compression="zip").__enter__()

    schema = {"type": "object", "title": "File", "required": ["path"]}
    assert File.schema_match(schema) and not Dir.schema_match(schema)
    assert not File.schema_match("File")
    with pytest.raises(AttributeError, match="lazy_uploader"):
        packed.lazy_uploader = None  # type: ignore[misc]


def test_download_follows_flytes_target_rules(tmp_path: Path) -> None:
    src = tmp_path / "data.txt"
    src.write_text("d")
    f = File.from_local_sync(src)
    assert Path(f.download_sync()).name == "data.txt"
    (tmp_path / "existing").mkdir()
    assert f.download_sync(tmp_path / "existing") == str(tmp_path / "existing" / "data.txt")
    slash = f"{tmp_path}/new/"
    assert f.download_sync(slash) == str(tmp_path / "new" / "data.txt")
    assert f.download_sync(tmp_path / "renamed.txt") == str(tmp_path / "renamed.txt")


def test_named_remote_in_a_task_belongs_to_that_call(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        """
        import reuse_runtime as flyte
        from reuse_runtime.io import File

        env = flyte.TaskEnvironment(name="named")

        @env.task
        async def name_it() -> str:
            assert File.named_remote("n.txt").path == File.named_remote("n.txt").path
            return File.named_remote("n.txt").path

        @env.task
        async def main() -> list:
            return [await name_it(), await name_it()]

        if __name__ == "__main__":
            first, second = flyte.run(main).outputs()[0]
            print(first != second, File.named_remote("n.txt").path not in (first, second))
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["True True"]
