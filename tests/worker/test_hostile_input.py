"""Hostile input against a real worker subprocess.

Every case asserts two things: the caller gets an error a person can act on (a
gRPC status, or a failed ``TaskResult`` whose kind and message say what went
wrong), and the worker keeps serving afterwards: it has not exited, and a
normal task still succeeds on it.
"""

from __future__ import annotations

import asyncio
import math
import pickle
import threading
import uuid
from collections.abc import AsyncIterator, Callable

import cloudpickle
import grpc
import pytest

from reuse_runtime.client import WorkerClient
from reuse_runtime.errors import BadInputError, RemoteTraceback, TaskFailedError
from reuse_runtime.model import (
    CodeBundle,
    ErrorKind,
    FunctionRef,
    TaskResult,
    TaskSpec,
    TaskState,
    dumps_args,
)
from reuse_runtime.wire.v1 import runtime_pb2 as pb
from tests.helpers import WorkerProcess, spawn_worker, task
from tests.worker import hostile_tasks

MAX_PAYLOAD = 1024 * 1024  # the workers below run with --max-payload 1Mi
WORKER_METHOD = "/reuse_runtime.v1.Worker/"
HOSTILE = hostile_tasks.__name__


@pytest.fixture
async def worker() -> AsyncIterator[WorkerProcess]:
    async with spawn_worker("--max-payload", "1Mi") as process:
        yield process


@pytest.fixture
async def client(worker: WorkerProcess) -> AsyncIterator[WorkerClient]:
    connected = WorkerClient(worker.address)
    try:
        await connected.wait_ready()
        yield connected
    finally:
        closing = asyncio.ensure_future(connected.close())
        done, _ = await asyncio.wait({closing}, timeout=10)
        if not done:
            # A wedged worker still owes results: ending it fails them, so close() returns.
            worker.process.kill()
        await closing


async def assert_still_serving(worker: WorkerProcess, client: WorkerClient) -> None:
    """The worker process is alive, and a normal task runs on it, on both RPC shapes."""
    assert worker.process.returncode is None, "".join(worker.stderr_lines)
    on_stream = await asyncio.wait_for(client.run(task(hostile_tasks.double, 21)), 10)
    assert on_stream.unwrap() == 42
    unary = await asyncio.wait_for(client.execute(task(hostile_tasks.double, 4)), 10)
    assert unary.unwrap() == 8
    status = await asyncio.wait_for(client.status(), 10)
    assert status.active == 0
    assert worker.process.returncode is None, "".join(worker.stderr_lines)


def spec_by_ref(module: str, qualname: str, args: bytes | None = None) -> TaskSpec:
    return TaskSpec(
        task_id=uuid.uuid4().hex,
        name=qualname,
        args=dumps_args((), {}) if args is None else args,
        ref=FunctionRef(module, qualname),
    )


def spec_by_value(pickled: bytes) -> TaskSpec:
    return TaskSpec(
        task_id=uuid.uuid4().hex, name="by-value", args=dumps_args((), {}), pickled=pickled
    )


def failed(result: TaskResult, kind: ErrorKind) -> str:
    """Assert ``result`` failed with ``kind``; return its error message."""
    assert result.state is TaskState.FAILED, result
    assert result.error is not None, result
    assert result.error.kind is kind, result.error
    return result.error.message


async def run_both_ways(
    client: WorkerClient, make: Callable[[], TaskSpec]
) -> tuple[TaskResult, grpc.aio.AioRpcError]:
    """Send a task that cannot start on the stream and as a unary call.

    On the stream it gets a BAD_INPUT result; the unary call fails with INVALID_ARGUMENT.
    """
    on_stream = await asyncio.wait_for(client.run(make()), 10)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await asyncio.wait_for(client.execute(make()), 10)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT, raised.value
    return on_stream, raised.value


# ---------------------------------------------------------------- malformed protobuf

# Bytes that no protobuf parser accepts: a bad wire type, and a length past the end.
CORRUPT_WIRE = b"\xff\xff\xff"
TRUNCATED = b"\x0a\x05ab"
# Field 1 (a string) holding invalid UTF-8; proto3 strings must be valid UTF-8.
BAD_UTF8_FIELD_1 = b"\x0a\x02\xff\xfe"
# DispatchBatch.cancel (field 2, repeated string) holding invalid UTF-8.
BAD_UTF8_CANCEL = b"\x12\x02\xff\xfe"

MALFORMED_UNARY = [
    ("Execute", "TaskSpec", CORRUPT_WIRE),
    ("Execute", "TaskSpec", TRUNCATED),
    ("Execute", "TaskSpec", BAD_UTF8_FIELD_1),
    ("Cancel", "CancelRequest", CORRUPT_WIRE),
    ("Cancel", "CancelRequest", TRUNCATED),
    ("Cancel", "CancelRequest", BAD_UTF8_FIELD_1),
    ("GetStatus", "StatusRequest", CORRUPT_WIRE),
    ("GetStatus", "StatusRequest", TRUNCATED),
]


@pytest.mark.parametrize(("method", "message", "body"), MALFORMED_UNARY)
async def test_malformed_unary_request_is_invalid_argument(
    worker: WorkerProcess, client: WorkerClient, method: str, message: str, body: bytes
) -> None:
    async with grpc.aio.insecure_channel(worker.address) as channel:
        call = channel.unary_unary(WORKER_METHOD + method)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call(body, timeout=10, metadata=worker.metadata)
    error = raised.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error
    assert f"malformed reuse_runtime.v1.{message} message ({len(body)} bytes)" in (
        error.details() or ""
    )
    await assert_still_serving(worker, client)


@pytest.mark.parametrize("body", [CORRUPT_WIRE, TRUNCATED, BAD_UTF8_CANCEL])
async def test_malformed_dispatch_batch_is_invalid_argument(
    worker: WorkerProcess, client: WorkerClient, body: bytes
) -> None:
    async def requests() -> AsyncIterator[bytes]:
        yield body

    async with grpc.aio.insecure_channel(worker.address) as channel:
        call = channel.stream_stream(WORKER_METHOD + "Dispatch")(
            requests(), timeout=10, metadata=worker.metadata
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            async for _ in call:
                pass
    error = raised.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error
    assert f"malformed reuse_runtime.v1.DispatchBatch message ({len(body)} bytes)" in (
        error.details() or ""
    )
    await assert_still_serving(worker, client)


async def test_tasks_before_a_malformed_batch_still_report(
    worker: WorkerProcess, client: WorkerClient
) -> None:
    good = task(hostile_tasks.double, 5)
    batch = pb.DispatchBatch(
        tasks=[
            pb.TaskSpec(
                task_id=good.task_id,
                name=good.name,
                args=good.args,
                ref=pb.FunctionRef(module=HOSTILE, qualname="double"),
            )
        ]
    )

    async def requests() -> AsyncIterator[bytes]:
        yield batch.SerializeToString()
        yield CORRUPT_WIRE

    results: list[pb.TaskResult] = []
    async with grpc.aio.insecure_channel(worker.address) as channel:
        call = channel.stream_stream(WORKER_METHOD + "Dispatch")(
            requests(), timeout=10, metadata=worker.metadata
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            async for reply in call:
                results.extend(pb.ResultBatch.FromString(reply).results)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed reuse_runtime.v1.DispatchBatch" in (raised.value.details() or "")
    assert [(r.task_id, r.state) for r in results] == [(good.task_id, pb.TASK_STATE_SUCCEEDED)]
    assert pickle.loads(results[0].value) == 10
    await assert_still_serving(worker, client)


# ---------------------------------------------------------------- bad pickles


async def test_garbage_pickle_as_arguments(worker: WorkerProcess, client: WorkerClient) -> None:
    result, status = await run_both_ways(
        client, lambda: spec_by_ref(HOSTILE, "double", args=b"garbage, not a pickle")
    )
    message = failed(result, ErrorKind.BAD_INPUT)
    assert "could not unpickle the task's arguments" in message
    assert "cloudpickle.dumps((args_tuple, kwargs_dict))" in message
    assert "could not unpickle the task's arguments" in (status.details() or "")
    await assert_still_serving(worker, client)


async def test_garbage_pickle_as_function(worker: WorkerProcess, client: WorkerClient) -> None:
    result, status = await run_both_ways(
        client, lambda: spec_by_value(b"\xffgarbage, not a pickle")
    )
    message = failed(result, ErrorKind.BAD_INPUT)
    assert "could not unpickle the task's function" in message
    assert "UnpicklingError" in message
    assert "could not unpickle the task's function" in (status.details() or "")
    await assert_still_serving(worker, client)


async def test_pickled_function_that_is_not_callable(
    worker: WorkerProcess, client: WorkerClient
) -> None:
    result, status = await run_both_ways(client, lambda: spec_by_value(pickle.dumps(5)))
    assert "the pickled function is a int, not a callable" in failed(result, ErrorKind.BAD_INPUT)
    assert "not a callable" in (status.details() or "")
    await assert_still_serving(worker, client)


@pytest.mark.parametrize(
    ("payload", "shape"),
    [(5, "int"), ((1, 2), "tuple"), (([1], [2]), "tuple"), ("text", "str")],
)
async def test_arguments_of_the_wrong_shape(
    worker: WorkerProcess, client: WorkerClient, payload: object, shape: str
) -> None:
    result, status = await run_both_ways(
        client, lambda: spec_by_ref(HOSTILE, "double", args=pickle.dumps(payload))
    )
    message = failed(result, ErrorKind.BAD_INPUT)
    assert f"the task's arguments decode to a {shape}" in message
    assert "expected a pair (args_tuple, kwargs_dict)" in message
    assert "expected a pair" in (status.details() or "")
    await assert_still_serving(worker, client)


# ---------------------------------------------------------------- sizes


async def test_arguments_over_the_payload_limit(
    worker: WorkerProcess, client: WorkerClient
) -> None:
    args = dumps_args((b"x" * (2 * MAX_PAYLOAD),), {})
    result, status = await run_both_ways(client, lambda: spec_by_ref(HOSTILE, "double", args=args))
    message = failed(result, ErrorKind.BAD_INPUT)
    assert f"the task's arguments are {len(args)} bytes" in message
    assert f"over this replica's limit of {MAX_PAYLOAD} bytes (--max-payload)" in message
    assert "--max-payload" in (status.details() or "")
    await assert_still_serving(worker, client)


async def test_pickled_function_over_the_payload_limit(
    worker: WorkerProcess, client: WorkerClient
) -> None:
    pickled = b"\xff" * (MAX_PAYLOAD + 1)
    result = await asyncio.wait_for(client.run(spec_by_value(pickled)), 10)
    message = failed(result, ErrorKind.BAD_INPUT)
    assert f"the task's function are {len(pickled)} bytes" in message
    assert f"limit of {MAX_PAYLOAD} bytes (--max-payload)" in message
    await assert_still_serving(worker, client)


async def test_result_over_the_payload_limit(worker: WorkerProcess, client: WorkerClient) -> None:
    size = 2 * MAX_PAYLOAD
    result = await asyncio.wait_for(client.run(task(hostile_tasks.returns_bytes, size)), 10)
    message = failed(result, ErrorKind.BAD_OUTPUT)
    pickled_size = len(cloudpickle.dumps(b"x" * size))
    assert f"the result of task returns_bytes is {pickled_size} bytes" in message
    assert f"over the limit of {MAX_PAYLOAD} bytes (--max-payload)" in message
    await assert_still_serving(worker, client)


# ---------------------------------------------------------------- functions that do not resolve


async def test_unknown_module(worker: WorkerProcess, client: WorkerClient) -> None:
    result, status = await run_both_ways(client, lambda: spec_by_ref("hostile_no_such_module", "f"))
    message = failed(result, ErrorKind.BAD_INPUT)
    assert "module 'hostile_no_such_module' cannot be imported on this replica" in message
    assert "PYTHONPATH" in message
    assert "hostile_no_such_module" in (status.details() or "")
    await assert_still_serving(worker, client)


async def test_unknown_function(worker: WorkerProcess, client: WorkerClient) -> None:
    result, status = await run_both_ways(client, lambda: spec_by_ref(HOSTILE, "no_such_function"))
    message = failed(result, ErrorKind.BAD_INPUT)
    assert f"module {HOSTILE!r} has no attribute 'no_such_function'" in message
    assert "no_such_function" in (status.details() or "")
    await assert_still_serving(worker, client)


async def test_qualname_inside_a_function(worker: WorkerProcess, client: WorkerClient) -> None:
    result, status = await run_both_ways(
        client, lambda: spec_by_ref(HOSTILE, "outer.<locals>.inner")
    )
    message = failed(result, ErrorKind.BAD_INPUT)
    assert "is defined inside a function and cannot be named by reference" in message
    assert "send it by value" in message
    assert "<locals>" in (status.details() or "")
    await assert_still_serving(worker, client)


def spec_with_bundle(source: bytes, filename: str = "hostile_script.py") -> TaskSpec:
    """A task whose module travels as source (a code bundle), under a fresh name."""
    module = f"hostile_bundle_{uuid.uuid4().hex[:8]}"
    return TaskSpec(
        task_id=uuid.uuid4().hex,
        name="main",
        args=dumps_args((), {}),
        ref=FunctionRef(module, "main"),
        bundle=CodeBundle(module, digest="", filename=filename, source=source),
    )


@pytest.mark.parametrize(
    ("source", "filename", "expected"),
    [
        (b"def main(:\n", "hostile_script.py", "code bundle hostile_script.py does not compile"),
        (b"x = 1\x00\nasync def main():\n    return 1\n", "hostile_script.py", "does not compile"),
        (
            b"raise SystemExit(4)\n",
            "hostile_script.py",
            "importing hostile_script.py failed: SystemExit: 4",
        ),
        (b"async def main():\n    return 1\n", "hostile\x00script.py", "hostile"),
    ],
    ids=["syntax-error", "nul-in-source", "exits-on-import", "nul-in-filename"],
)
async def test_code_bundle_that_cannot_load(
    worker: WorkerProcess, client: WorkerClient, source: bytes, filename: str, expected: str
) -> None:
    result, status = await run_both_ways(client, lambda: spec_with_bundle(source, filename))
    assert expected in failed(result, ErrorKind.BAD_INPUT)
    assert expected in (status.details() or "")
    await assert_still_serving(worker, client)


# ---------------------------------------------------------------- results and exceptions


async def test_result_that_cannot_be_pickled(worker: WorkerProcess, client: WorkerClient) -> None:
    result = await asyncio.wait_for(client.run(task(hostile_tasks.returns_lock)), 10)
    message = failed(result, ErrorKind.BAD_OUTPUT)
    assert message == (
        "the result of task returns_lock is a lock, which cannot travel back to the caller; "
        "it only works within one process; create it where it is used"
    )
    with pytest.raises(TaskFailedError, match="cannot travel back"):
        result.unwrap()
    await assert_still_serving(worker, client)


async def test_exception_with_an_unpicklable_attribute_arrives_without_it(
    worker: WorkerProcess, client: WorkerClient
) -> None:
    result = await asyncio.wait_for(
        client.run(task(hostile_tasks.raises_unpicklable, "boom at step 3")), 10
    )
    failed(result, ErrorKind.USER)
    with pytest.raises(hostile_tasks.LockedError) as raised:
        result.unwrap("raises_unpicklable")
    assert str(raised.value) == "boom at step 3" and not hasattr(raised.value, "lock")
    assert raised.value.__notes__ == [
        "attribute 'lock' (a lock) was left out: it cannot be pickled"
    ]
    assert isinstance(raised.value.__cause__, RemoteTraceback)
    await assert_still_serving(worker, client)


async def test_exception_that_cannot_be_pickled_still_reaches_the_caller(
    worker: WorkerProcess, client: WorkerClient
) -> None:
    result = await asyncio.wait_for(
        client.run(task(hostile_tasks.raises_with_a_lock_in_its_args, "boom at step 3")), 10
    )
    message = failed(result, ErrorKind.USER)
    assert result.error is not None
    assert result.error.type == "builtins.ValueError"
    assert message.startswith("('boom at step 3', <unlocked _thread.lock object")
    assert "could not be pickled" in message
    assert result.error.pickled == b""
    assert "in raises_with_a_lock_in_its_args" in result.error.traceback
    assert "ValueError: ('boom at step 3'" in result.error.traceback
    with pytest.raises(TaskFailedError) as raised:
        result.unwrap("raises_with_a_lock_in_its_args")
    assert raised.value.type_name == "builtins.ValueError"
    assert "boom at step 3" in str(raised.value)
    assert isinstance(raised.value.__cause__, RemoteTraceback)
    assert "in raises_with_a_lock_in_its_args" in str(raised.value.__cause__)
    await assert_still_serving(worker, client)


@pytest.mark.parametrize(
    "fn", [hostile_tasks.recurses_forever, hostile_tasks.recurses_forever_sync]
)
async def test_deep_recursion_is_a_user_error_with_a_short_traceback(
    worker: WorkerProcess, client: WorkerClient, fn: object
) -> None:
    result = await asyncio.wait_for(client.run(task(fn)), 10)
    failed(result, ErrorKind.USER)
    assert result.error is not None
    assert result.error.type == "builtins.RecursionError"
    assert "maximum recursion depth exceeded" in result.error.message
    tb = result.error.traceback
    assert f"in {fn.__name__}" in tb  # type: ignore[attr-defined]
    assert "in _recurse" in tb
    assert "more times]" in tb  # the repeated frames are collapsed
    assert len(tb) < 5_000, len(tb)
    with pytest.raises(RecursionError):
        result.unwrap()
    await assert_still_serving(worker, client)


async def test_deeply_nested_result_is_bad_output(
    worker: WorkerProcess, client: WorkerClient
) -> None:
    result = await asyncio.wait_for(
        client.run(task(hostile_tasks.returns_nested_list, 100_000)), 20
    )
    message = failed(result, ErrorKind.BAD_OUTPUT)
    assert "the result of task returns_nested_list (a builtins.list) cannot be pickled" in message
    assert "recursion" in message
    await assert_still_serving(worker, client)


EXIT = "; a task cannot exit its caller"
INTERRUPT = "the task raised KeyboardInterrupt"


@pytest.mark.parametrize(
    ("fn", "args", "type_name", "text"),
    [
        (hostile_tasks.calls_sys_exit, (3,), "builtins.SystemExit", f"sys.exit(3){EXIT}"),
        (hostile_tasks.calls_sys_exit_sync, (3,), "builtins.SystemExit", f"sys.exit(3){EXIT}"),
        (
            hostile_tasks.raises_system_exit,
            (),
            "builtins.SystemExit",
            f"sys.exit('leaving'){EXIT}",
        ),
        (hostile_tasks.raises_keyboard_interrupt, (), "builtins.KeyboardInterrupt", INTERRUPT),
        (hostile_tasks.raises_keyboard_interrupt_sync, (), "builtins.KeyboardInterrupt", INTERRUPT),
    ],
)
async def test_task_that_exits_is_a_failed_task_and_the_worker_survives(
    worker: WorkerProcess,
    client: WorkerClient,
    fn: object,
    args: tuple[object, ...],
    type_name: str,
    text: str,
) -> None:
    result = await asyncio.wait_for(client.run(task(fn, *args)), 10)
    message = failed(result, ErrorKind.USER)
    assert result.error is not None
    assert result.error.type == type_name
    assert message.endswith(text) and message.startswith("the task ")
    assert not result.error.pickled  # never raised as itself in the caller
    assert f"in {fn.__name__}" in result.error.traceback  # type: ignore[attr-defined]
    unary = await asyncio.wait_for(client.execute(task(fn, *args)), 10)
    assert failed(unary, ErrorKind.USER) == message
    await assert_still_serving(worker, client)


# ---------------------------------------------------------------- task ids and timeouts


async def test_duplicate_task_id_on_one_stream(worker: WorkerProcess, client: WorkerClient) -> None:
    """The duplicate is refused at once; the first task still runs and reports, even though
    the caller half-closes the stream right after sending both."""
    task_id = uuid.uuid4().hex
    first = pb.TaskSpec(
        task_id=task_id,
        name="first",
        args=dumps_args((0.5, "first"), {}),
        ref=pb.FunctionRef(module=HOSTILE, qualname="sleep_then_return"),
    )
    duplicate = pb.TaskSpec(
        task_id=task_id,
        name="duplicate",
        args=dumps_args((1,), {}),
        ref=pb.FunctionRef(module=HOSTILE, qualname="double"),
    )

    async def requests() -> AsyncIterator[pb.DispatchBatch]:
        yield pb.DispatchBatch(tasks=[first, duplicate])

    results: list[pb.TaskResult] = []
    async with grpc.aio.insecure_channel(worker.address) as channel:
        dispatch = channel.stream_stream(
            WORKER_METHOD + "Dispatch",
            request_serializer=pb.DispatchBatch.SerializeToString,
            response_deserializer=pb.ResultBatch.FromString,
        )
        async for reply in dispatch(requests(), timeout=10, metadata=worker.metadata):
            results.extend(reply.results)

    assert [r.task_id for r in results] == [task_id, task_id], results
    refused, completed = results
    assert refused.state == pb.TASK_STATE_FAILED
    assert refused.error.kind == pb.ERROR_KIND_BAD_INPUT
    assert f"task id {task_id!r} is already running on this replica" in refused.error.message
    assert completed.state == pb.TASK_STATE_SUCCEEDED, completed
    assert pickle.loads(completed.value) == "first"
    await assert_still_serving(worker, client)


async def test_duplicate_of_a_running_task_on_unary_execute(
    worker: WorkerProcess, client: WorkerClient
) -> None:
    started = asyncio.Event()
    async with WorkerClient(worker.address, on_logs=lambda lines: started.set()) as streaming:
        running = task(hostile_tasks.announce_then_sleep, 0.5, "first")
        pending = streaming.submit(running)
        await asyncio.wait_for(started.wait(), 10)
        duplicate = TaskSpec(
            task_id=running.task_id,
            name="duplicate",
            args=dumps_args((1,), {}),
            ref=FunctionRef(HOSTILE, "double"),
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await client.execute(duplicate, timeout=10)
        assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "is already running on this replica" in (raised.value.details() or "")
        assert (await asyncio.wait_for(pending, 10)).unwrap() == "first"
    await assert_still_serving(worker, client)


async def test_nan_timeout_is_bad_input(worker: WorkerProcess, client: WorkerClient) -> None:
    result = await asyncio.wait_for(client.run(task(hostile_tasks.double, 1, timeout=math.nan)), 10)
    assert "timeout" in failed(result, ErrorKind.BAD_INPUT)
    await assert_still_serving(worker, client)


async def test_nan_timeout_does_not_wedge_the_worker(
    worker: WorkerProcess, client: WorkerClient
) -> None:
    """However the NaN is reported, it must not keep the replica's only slot."""
    result = await asyncio.wait_for(client.run(task(hostile_tasks.double, 1, timeout=math.nan)), 10)
    assert result.state is not TaskState.SUCCEEDED or result.unwrap() == 2
    await assert_still_serving(worker, client)


# ---------------------------------------------------------------- the client side


def test_unpicklable_argument_is_refused_before_sending() -> None:
    with pytest.raises(BadInputError) as raised:
        dumps_args((threading.Lock(),), {})
    assert str(raised.value) == (
        "argument 0 is a lock, which cannot travel to a replica; "
        "it only works within one process; create it where it is used"
    )


def test_unpicklable_keyword_argument_is_named() -> None:
    with pytest.raises(BadInputError) as raised:
        dumps_args((1, "ok"), {"guard": threading.Lock()})
    assert str(raised.value).startswith("argument 'guard' is a lock, which cannot travel")
