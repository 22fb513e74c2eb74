"""``flyte.Cache``: task results kept in the controller's SQLite, keyed by task,
cache version and inputs."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

import reuse_runtime as flyte
from reuse_runtime.controller.cache import ResultCache
from reuse_runtime.sdk.cache import (
    FunctionBodyPolicy,
    VersionParameters,
    cache_from_request,
    cache_key,
    inputs_digest,
)
from tests.helpers import run_python


def test_cache_behaviours_and_aliases_as_flyte_has_them() -> None:
    assert flyte.Cache("auto").is_enabled()
    assert flyte.Cache("enabled").behavior == "auto"
    assert flyte.Cache("off").behavior == "disable"
    assert not cache_from_request("disable").is_enabled()
    assert flyte.Cache("override", version_override="v7").get_version() == "v7"
    with pytest.raises(ValueError, match="Invalid cache behavior"):
        flyte.Cache("sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Invalid cache behavior: 3"):
        cache_from_request(3)  # type: ignore[arg-type]


def test_cache_takes_every_argument_flyte_cache_takes() -> None:
    cache = flyte.Cache(
        "auto",
        version_override=None,
        serialize=False,
        ignored_inputs="seed",
        salt="v2",
        policies=[FunctionBodyPolicy()],
        max_age=60,
    )
    assert cache.max_age == timedelta(seconds=60) and cache.max_age_seconds() == 60
    assert cache.ignored_inputs == "seed" and cache.get_ignored_inputs() == ("seed",)
    assert flyte.Cache("auto", max_age=timedelta(hours=1)).max_age_seconds() == 3600
    assert flyte.Cache("auto").max_age is None and flyte.Cache("auto").max_age_seconds() == 0
    with pytest.raises(TypeError) as raised:
        flyte.Cache("auto", max_age=True)
    assert str(raised.value) == "max_age must be an int (seconds), timedelta, or None"
    with pytest.raises(TypeError):
        flyte.Cache("auto", max_age="1h")  # type: ignore[arg-type]
    with pytest.raises(ValueError) as refused:
        flyte.Cache("auto", max_age=-1)
    assert str(refused.value) == "max_age must be nonnegative"
    # Flyte's VersionParameters is generic; annotations that subscript it import.
    assert VersionParameters[..., int](None).func is None


def test_a_result_older_than_max_age_is_not_reused(tmp_path: Path) -> None:
    now = [1000.0]
    store = ResultCache(tmp_path / "cache.sqlite", clock=lambda: now[0])
    store.put("k", "task", b"value")
    now[0] += 30
    assert store.get("k") == b"value" and store.get("k", max_age=30) == b"value"
    assert store.get("k", max_age=29.5) is None


def test_the_key_follows_the_code_and_the_inputs_not_their_spelling() -> None:
    def f(a: int, b: dict[str, int], c: set[str], d: int = 1) -> None: ...

    same = inputs_digest(f, (1, {"x": 1, "y": 2}, {"p", "q"}), {}, ())
    assert same == inputs_digest(f, (), {"b": {"y": 2, "x": 1}, "a": 1, "c": {"q", "p"}}, ())
    assert same == inputs_digest(f, (1, {"x": 1, "y": 2}, {"p", "q"}, 1), {}, ())
    assert same != inputs_digest(f, (2, {"x": 1, "y": 2}, {"p", "q"}), {}, ())
    ignored = inputs_digest(f, (1, {}, set()), {}, ("b", "c"))
    assert ignored == inputs_digest(f, (1, {"z": 3}, {"r"}), {}, ("b", "c"))

    def g(x: int) -> int:
        return x

    def h(x: int) -> int:
        return x + 1

    versions = {
        flyte.Cache("auto").get_version(flyte.sdk.cache.VersionParameters(fn)) for fn in (g, h)
    }
    assert len(versions) == 2
    assert cache_key("t", "v", same) != cache_key("t2", "v", same)


def test_the_store_keeps_results_across_opens(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    store = ResultCache(path)
    assert not path.exists()  # opened on first use only
    assert store.get("k") is None
    store.put("k", "task", b"value")
    store.close()
    assert ResultCache(path).get("k") == b"value"
    assert path.stat().st_mode & 0o077 == 0


def test_cached_tasks_run_once_and_hits_show_in_the_log_and_status(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        textwrap.dedent(
            """
            import asyncio, os, json, subprocess, sys
            from pathlib import Path
            import reuse_runtime as flyte
            from reuse_runtime import paths, runlog

            env = flyte.TaskEnvironment(name="cached", cache="auto",
                                        reusable=flyte.ReusePolicy(replicas=1, concurrency=8))

            @env.task
            async def square(x: int) -> int:
                Path(f"ran-{x}").open("a").write("x")
                return x * x

            @env.task(cache="disable")
            async def fresh(x: int) -> int:
                Path(f"fresh-{x}").open("a").write("x")
                return x

            @env.task(cache=flyte.Cache("override", version_override="v1"))
            async def pinned(x: int) -> int:
                Path(f"pinned-{x}").open("a").write("x")
                return -x

            @env.task
            async def main(n: int) -> list[int]:
                first = await asyncio.gather(*(square(i) for i in range(n)))
                again = await asyncio.gather(*(square(i) for i in range(n)))
                await fresh(1); await fresh(1)
                await pinned(2); await pinned(2)
                assert first == again
                return again

            if __name__ == "__main__":
                r = flyte.run(main, 4)
                print(r.outputs()[0])
                log = runlog.find_run_log(paths.state_dir() / "runs", r.name)
                print(open(log).read().count("cache hit"))
                flyte.with_runcontext(overwrite_cache=True).run(main, 4).wait()
                flyte.with_runcontext(disable_run_cache=True).run(square, 1).wait()
                print(sorted((p.name, len(p.read_text())) for p in Path(".").glob("*-*")))
                status = subprocess.run(
                    [sys.executable, "-m", "reuse_runtime", "status", "--json"],
                    capture_output=True, text=True, check=True,
                )
                env_status = json.loads(status.stdout)["environments"]
                print(sum(e["cache_hits"] for e in env_status if e["name"] == "cached"))
            """
        ),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "[0, 1, 4, 9]"
    assert lines[1] == "5"  # four squares and one pinned, from the cache
    ran = dict(eval(lines[2]))
    # Once each; twice more under overwrite_cache (it never reads the cache); x=1 once
    # more with the run cache off. Uncached tasks run every time.
    assert ran == {
        "ran-0": 3, "ran-1": 4, "ran-2": 3, "ran-3": 3,
        "fresh-1": 4, "pinned-2": 3,
    }  # fmt: skip
    assert int(lines[3]) >= 5  # status counts the hits (and more from later runs)


def test_max_age_runs_a_task_again_when_its_stored_result_is_too_old(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        textwrap.dedent(
            """
            from datetime import timedelta
            from pathlib import Path
            import reuse_runtime as flyte

            env = flyte.TaskEnvironment(name="aged", cache="auto",
                                        reusable=flyte.ReusePolicy(replicas=1))

            @env.task
            async def stamp(x: int) -> int:
                Path("ran").open("a").write("x")
                return x

            @env.task
            async def main() -> None:
                await stamp(1)  # runs; stored
                await stamp(1)  # from the cache
                # Stored more than a microsecond ago: too old, so it runs (and is stored anew).
                young = flyte.Cache("auto", max_age=timedelta(microseconds=1))
                await stamp.override(cache=young)(1)
                await stamp.override(cache=flyte.Cache("auto", max_age=3600))(1)  # cached

            if __name__ == "__main__":
                flyte.run(main).wait()
                print(len(Path("ran").read_text()))
            """
        ),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "2"


def test_file_and_dir_inputs_are_keyed_by_their_hash(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        """
        import uuid
        from pathlib import Path
        import reuse_runtime as flyte
        from reuse_runtime.io import Dir, File

        env = flyte.TaskEnvironment(name="content-cache")
        cache = flyte.Cache(behavior="override", version_override="v4")

        @env.task(cache=cache)
        async def stamp_file(f: File) -> str:
            return uuid.uuid4().hex

        @env.task(cache=cache)
        async def stamp_dir(d: Dir) -> str:
            return uuid.uuid4().hex

        def local_file(text: str) -> Path:
            path = Path(uuid.uuid4().hex + ".txt")
            path.write_text(text)
            return path

        def local_dir(text: str) -> Path:
            path = Path(uuid.uuid4().hex)
            path.mkdir()
            (path / "f.txt").write_text(text)
            return path

        @env.task
        async def main() -> list:
            same = [await stamp_file(await File.from_local(local_file(t), hash_method="h1"))
                    for t in ("one", "two")]
            by_content = [await stamp_file(await File.from_local(local_file(t)))
                          for t in ("three", "four", "four")]
            dirs = [await stamp_dir(await Dir.from_local(local_dir(t), dir_cache_key="k1"))
                    for t in ("one", "two")]
            existing = [await stamp_file(File.from_existing_remote(str(local_file("x")), key))
                        for key in ("e1", "e1", "e2")]
            return [same[0] == same[1], by_content[0] != by_content[1],
                    by_content[1] == by_content[2], dirs[0] == dirs[1],
                    existing[0] == existing[1] != existing[2]]

        if __name__ == "__main__":
            print(flyte.run(main).outputs()[0])
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[True, True, True, True, True]"]
