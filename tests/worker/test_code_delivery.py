"""Code bundles: a script the worker cannot import travels as source, keyed by digest."""

from __future__ import annotations

import uuid

from reuse_runtime import code
from reuse_runtime.client import WorkerClient
from reuse_runtime.model import CodeBundle, ErrorKind, FunctionRef, TaskSpec, dumps_args
from tests.helpers import spawn_worker

SCRIPT_V1 = b"""
hits = 0

async def bump():
    global hits
    hits += 1
    return ("v1", hits)
"""

SCRIPT_V2 = b"""
hits = 100

async def bump():
    global hits
    hits += 1
    return ("v2", hits)

def broken():
    raise RuntimeError("from the script")
"""


def _bundle(source: bytes) -> CodeBundle:
    return code.script_bundle("/home/user/my-script.py", source)


def _call(bundle: CodeBundle, qualname: str, *, ship: bool) -> TaskSpec:
    return TaskSpec(
        task_id=uuid.uuid4().hex,
        name=qualname,
        args=dumps_args((), {}),
        ref=FunctionRef(bundle.module, qualname, bundle.digest),
        bundle=bundle if ship else None,
    )


async def test_bundle_globals_persist_and_versions_never_mix() -> None:
    v1, v2 = _bundle(SCRIPT_V1), _bundle(SCRIPT_V2)
    assert v1.module == "_reuse_main_my_script"
    async with spawn_worker() as worker, WorkerClient(worker.address) as client:
        first = await client.run(_call(v1, "bump", ship=True))
        # Later calls name the same version and need not ship the source again.
        rest = [await client.run(_call(v1, "bump", ship=False)) for _ in range(2)]
        assert [r.unwrap() for r in (first, *rest)] == [("v1", 1), ("v1", 2), ("v1", 3)]

        changed = await client.run(_call(v2, "bump", ship=True))
        assert changed.unwrap() == ("v2", 101)

        failed = await client.run(_call(v2, "broken", ship=False))
        assert failed.error is not None
        assert 'File "/home/user/my-script.py", line 10, in broken' in failed.error.traceback
        assert 'raise RuntimeError("from the script")' in failed.error.traceback


async def test_unknown_bundle_version_asks_for_the_source() -> None:
    bundle = _bundle(b"async def f():\n    return 1\n")
    async with spawn_worker() as worker, WorkerClient(worker.address) as client:
        result = await client.run(_call(bundle, "f", ship=False))
        assert result.error is not None
        assert result.error.kind is ErrorKind.BAD_INPUT
        assert "send its bundle" in result.error.message
        # The replica still serves, and the same task with its bundle succeeds.
        assert (await client.run(_call(bundle, "f", ship=True))).unwrap() == 1


async def test_unknown_module_and_function_get_clear_errors() -> None:
    async with spawn_worker() as worker, WorkerClient(worker.address) as client:
        missing_module = TaskSpec(
            "t1", "x", dumps_args((), {}), ref=FunctionRef("no_such_mod", "f")
        )
        missing_function = TaskSpec(
            "t2", "x", dumps_args((), {}), ref=FunctionRef("tests.worker.tasks", "nope")
        )
        r1, r2 = await client.run(missing_module), await client.run(missing_function)
        assert r1.error is not None and "'no_such_mod' cannot be imported" in r1.error.message
        assert r2.error is not None and "has no attribute 'nope'" in r2.error.message
        assert (await client.status()).failed == 0  # rejected before running


async def test_a_bundle_stays_when_its_task_is_cancelled_before_it_runs() -> None:
    """The controller sends a version's bundle with the first task of it that a replica
    gets, and never again. Cancelled in the same message, that task never imports it:
    the replica's next task of the version, sent without it, must still find it."""
    bundle = _bundle(b"async def f():\n    return 1\n")
    async with spawn_worker() as worker, WorkerClient(worker.address) as client:
        first = _call(bundle, "f", ship=True)
        pending = client.submit(first)
        client.cancel_on_stream(first.task_id)  # queued beside it: one message, as a controller's
        cancelled = await pending
        assert cancelled.error is not None
        assert cancelled.error.kind is ErrorKind.CANCELLED, cancelled.error

        later = await client.run(_call(bundle, "f", ship=False))
        assert later.error is None, later.error.message
        assert later.unwrap() == 1


async def test_an_earlier_version_runs_again_after_a_later_one_without_its_bundle() -> None:
    """A replica that ran v1 then v2 of a script (each sent once, with its first task)
    runs a later v1 task from the bundle it kept, with v1's own fresh globals."""
    v1, v2 = _bundle(SCRIPT_V1), _bundle(SCRIPT_V2)
    async with spawn_worker() as worker, WorkerClient(worker.address) as client:
        assert (await client.run(_call(v1, "bump", ship=True))).unwrap() == ("v1", 1)
        assert (await client.run(_call(v2, "bump", ship=True))).unwrap() == ("v2", 101)
        again = await client.run(_call(v1, "bump", ship=False))
        assert again.error is None, again.error.message
        assert again.unwrap() == ("v1", 1)  # v1 executed afresh: v2's globals are not v1's
