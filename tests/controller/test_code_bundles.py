"""Code bundles through a real controller: sent once, fetched by replicas that cannot see
the client's files (the local backend told to fetch: its replicas then run in their code
folder, with none of the client's paths), refused when they do not match, and only over
the authenticated channel."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from reuse_runtime import code
from reuse_runtime.bundles.archive import Member, digest_of, pack
from reuse_runtime.client import ControllerClient
from reuse_runtime.errors import AuthError, CodeBundleError, PolicyError
from reuse_runtime.model import (
    EnvironmentSpec,
    ErrorKind,
    FunctionRef,
    PoolPolicy,
    Submission,
    TaskSpec,
    TaskState,
    dumps_args,
)
from reuse_runtime.security import Security
from reuse_runtime.wire.v1 import runtime_pb2 as pb
from reuse_runtime.wire.v1 import runtime_pb2_grpc as pb_grpc
from tests.helpers import running_controller
from tests.test_metrics import scrape, value

POLICY = PoolPolicy(min_replicas=0, max_replicas=1, concurrency=1, scaledown_ttl=60, idle_ttl=60)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str, bytes]]:
    """(module name, digest, archive) of a project none of this process's paths can import."""
    monkeypatch.setenv("REUSE_RUNTIME_HOME", str(tmp_path / "home"))
    name = f"proj_{uuid.uuid4().hex[:8]}"
    source = tmp_path / "project"
    source.mkdir()
    (source / f"{name}.py").write_text(
        f"import {name}_helper\ndef where(x):\n    return {name}_helper.triple(x), __file__\n"
    )
    (source / f"{name}_helper.py").write_text("def triple(x):\n    return 3 * x\n")
    data = pack(
        [Member(f"{name}.py", source / f"{name}.py"),
         Member(f"{name}_helper.py", source / f"{name}_helper.py")],
        [""],
    )  # fmt: skip
    yield name, digest_of(data), data


async def _run(client: ControllerClient, spec: EnvironmentSpec, module: str) -> object:
    key = await client.register(spec)
    task = TaskSpec(uuid.uuid4().hex, "where", dumps_args((7,), {}), FunctionRef(module, "where"))
    return await client.submit(Submission(key, task))


async def test_a_replica_that_cannot_see_the_files_runs_the_fetched_bundle(
    tmp_path: Path, project: tuple[str, str, bytes]
) -> None:
    name, digest, data = project
    async with running_controller(
        code_delivery="fetch", bundle_dir=tmp_path / "bundles", cache_path=tmp_path / "c.db"
    ) as (_, client):
        client.add_bundle(digest, data)
        spec = EnvironmentSpec(f"e{name[-8:]}", POLICY, code_bundle=digest)
        result = await _run(client, spec, name)
        value, where = result.unwrap("where")  # type: ignore[attr-defined]
        assert value == 21
        assert where == str(tmp_path / "home" / "code" / digest / f"{name}.py")
        assert (tmp_path / "bundles" / f"{digest}.tar.gz").read_bytes() == data
        status = await client.status()
        (env,) = status.environments
        assert env.version == digest[:12] and not env.superseded


async def test_a_tampered_or_missing_bundle_fails_the_start_with_one_line(
    tmp_path: Path, project: tuple[str, str, bytes]
) -> None:
    name, digest, data = project
    stored = tmp_path / "bundles" / f"{digest}.tar.gz"
    async with running_controller(
        code_delivery="fetch", bundle_dir=tmp_path / "bundles", cache_path=tmp_path / "c.db"
    ) as (server, client):
        client.add_bundle(digest, data)
        spec = EnvironmentSpec(f"t{name[-8:]}", POLICY, code_bundle=digest)
        await client.register(spec)
        stored.write_bytes(data[:20] + bytes([data[20] ^ 1]) + data[21:])  # tampered on disk
        result = await _run(client, spec, name)
        assert result.state is TaskState.FAILED  # type: ignore[attr-defined]
        error = result.error  # type: ignore[attr-defined]
        assert error.kind is ErrorKind.UNAVAILABLE
        refusal = f"code bundle {digest[:12]} from the controller at {server.address} refused"
        assert refusal in error.message and "its content has digest" in error.message
        assert [line for line in error.message.splitlines() if refusal in line] != []
        code = tmp_path / "home" / "code"
        assert not code.exists() or [p.name for p in code.iterdir()] == []  # nothing unpacked
    async with running_controller(
        code_delivery="fetch", bundle_dir=tmp_path / "bundles2", cache_path=tmp_path / "c2.db"
    ) as (server, client):
        client.add_bundle(digest, data)
        spec = EnvironmentSpec(f"m{name[-8:]}", POLICY, code_bundle=digest)
        await client.register(spec)
        (tmp_path / "bundles2" / f"{digest}.tar.gz").unlink()  # gone from the controller
        result = await _run(client, spec, name)
        message = result.error.message  # type: ignore[attr-defined]
        assert f"code bundle {digest[:12]} could not be fetched from the controller" in message
        assert "NOT_FOUND" in message and "run again" in message


async def test_registering_without_the_bundle_or_past_the_limit_is_refused(
    tmp_path: Path, project: tuple[str, str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, digest, _ = project
    monkeypatch.setenv("REUSE_RUNTIME_MAX_BUNDLE_BYTES", "4096")
    async with running_controller(
        bundle_dir=tmp_path / "bundles", cache_path=tmp_path / "c.db"
    ) as (_, client):
        spec = EnvironmentSpec(f"n{name[-8:]}", POLICY, code_bundle=digest)
        with pytest.raises(PolicyError, match="does not have: send it first"):
            await client.register(spec)  # never added to the client: not sent
        big = b"x" * 5000
        client.add_bundle(digest_of(big), big)
        with pytest.raises(CodeBundleError) as refused:
            await client.register(EnvironmentSpec("big", POLICY, code_bundle=digest_of(big)))
        assert "this controller takes bundles of 1 to 4096 bytes" in str(refused.value)
        assert "\n" not in str(refused.value)


async def test_bundles_travel_only_with_the_token(
    tmp_path: Path, project: tuple[str, str, bytes]
) -> None:
    name, digest, data = project
    async with running_controller(
        bundle_dir=tmp_path / "bundles", cache_path=tmp_path / "c.db"
    ) as (server, client):
        client.add_bundle(digest, data)
        await client.register(EnvironmentSpec(f"a{name[-8:]}", POLICY, code_bundle=digest))
        async with ControllerClient(server.address, Security(token="wrong")) as intruder:
            intruder.add_bundle(digest_of(b"evil"), b"evil")
            with pytest.raises(AuthError):
                await intruder.register(
                    EnvironmentSpec("evil", POLICY, code_bundle=digest_of(b"evil"))
                )
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.ControllerStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                async for _ in stub.FetchBundle(pb.BundleRequest(digest=digest)):
                    pass
            assert denied.value.code() is grpc.StatusCode.UNAUTHENTICATED

            async def chunks():  # type: ignore[no-untyped-def]
                yield pb.BundleChunk(digest=digest_of(b"evil"), size=4, data=b"evil")

            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await stub.PutBundle(chunks())
            assert denied.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert not (tmp_path / "bundles" / f"{digest_of(b'evil')}.tar.gz").exists()


async def test_an_external_worker_fetches_the_bundle_of_the_environment_it_joins(
    tmp_path: Path, project: tuple[str, str, bytes]
) -> None:
    from tests.helpers import eventually, spawn_worker

    name, digest, data = project
    token = "external-bundle-token"
    async with running_controller(
        security=Security(token=token), bundle_dir=tmp_path / "b", cache_path=tmp_path / "c.db"
    ) as (server, client):
        client.add_bundle(digest, data)
        env_name = f"x{name[-8:]}"
        await client.register(EnvironmentSpec(env_name, POLICY, code_bundle=digest))
        async with spawn_worker(
            "--controller", server.address, "--environment", env_name,
            "--code-dir", str(tmp_path / "external-code"),
            REUSE_RUNTIME_TOKEN=token,
        ):  # fmt: skip

            async def attached() -> bool:
                status = await client.status()
                return any(
                    r.external and r.state == "ready" for r in status.environments[0].replicas
                )

            await eventually(attached, timeout=30, what="the external worker")
            result = await _run(client, EnvironmentSpec(env_name, POLICY, code_bundle=digest), name)
            value, where = result.unwrap("where")  # type: ignore[attr-defined]
        assert value == 21
        assert where == str(tmp_path / "external-code" / digest / f"{name}.py")


async def test_a_bundle_goes_to_the_controller_once_per_digest(
    tmp_path: Path, project: tuple[str, str, bytes]
) -> None:
    """Counted by the controller's own metric of the uploads it took."""
    name, digest, data = project
    async with running_controller(
        bundle_dir=tmp_path / "b", cache_path=tmp_path / "c.db", metrics_port=0
    ) as (server, client):
        received = "reuse_runtime_code_bundles_received_total"
        _, before = await scrape(server.metrics_url)  # type: ignore[attr-defined]
        assert value(before, received) == 0
        client.add_bundle(digest, data)
        for env in ("one", "two", "three"):  # three environments, one version of the code
            await client.register(EnvironmentSpec(f"{env}{name[-6:]}", POLICY, code_bundle=digest))
        _, once = await scrape(server.metrics_url)  # type: ignore[attr-defined]
        assert value(once, received) == 1
        async with ControllerClient(server.address, server.security) as other:  # type: ignore[attr-defined]
            other.add_bundle(digest, data)
            await other.register(EnvironmentSpec(f"four{name[-6:]}", POLICY, code_bundle=digest))
        _, after = await scrape(server.metrics_url)  # type: ignore[attr-defined]
        assert value(after, received) == 1  # the controller had it: asked, not sent


SCRIPT = b"def square(x):\n    return x * x\n\ndef plus_one(x):\n    return x + 1\n"


def _script_call(qualname: str, x: int) -> TaskSpec:
    """A call of a function of a script (a ``__main__`` module), its source beside it."""
    bundle = code.script_bundle("/home/user/cached-script.py", SCRIPT)
    ref = FunctionRef(bundle.module, qualname, bundle.digest)
    return TaskSpec(uuid.uuid4().hex, qualname, dumps_args((x,), {}), ref, bundle=bundle)


async def test_a_scripts_source_is_kept_even_when_its_first_task_is_answered_at_once(
    tmp_path: Path,
) -> None:
    """A client sends a script's source once per stream, with its first task. When the
    controller answers that task itself (a cache hit, an unknown environment), the
    next tasks of the script, sent without it, still reach a fresh replica with it."""
    cache = tmp_path / "cache.db"
    spec = EnvironmentSpec("script-cache", POLICY)
    async with running_controller(cache_path=cache) as (_, client):
        key = await client.register(spec)
        first = await client.submit(Submission(key, _script_call("square", 7), cache_key="k7"))
        assert first.unwrap("square") == 49  # type: ignore[attr-defined]

    async with running_controller(cache_path=cache) as (_, client):  # a new controller
        key = await client.register(spec)
        hit = await client.submit(Submission(key, _script_call("square", 7), cache_key="k7"))
        assert hit.cached and hit.unwrap("square") == 49  # type: ignore[attr-defined]
        later = await client.submit(Submission(key, _script_call("plus_one", 7)))
        assert later.error is None, later.error.message  # type: ignore[attr-defined]
        assert later.unwrap("plus_one") == 8  # type: ignore[attr-defined]

    async with running_controller(cache_path=tmp_path / "other.db") as (_, client):
        refused = await client.submit(Submission("no-such-environment", _script_call("square", 2)))
        assert refused.error is not None and "unknown environment" in refused.error.message  # type: ignore[attr-defined]
        key = await client.register(spec)
        later = await client.submit(Submission(key, _script_call("plus_one", 2)))
        assert later.error is None, later.error.message  # type: ignore[attr-defined]
        assert later.unwrap("plus_one") == 3  # type: ignore[attr-defined]
