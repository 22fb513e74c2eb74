"""Large payloads spliced into and cut out of stream messages (``wire/splice.py``).

What is written must be the protobuf message protobuf itself would write, and what
is read must be what protobuf would read, for every stream that carries payloads;
bytes that are not such a message fail as protobuf's parser fails. Then, against a
real worker and through a real controller: a plain protobuf client's large payloads
arrive whole, and the replies it gets are plain protobuf.
"""

from __future__ import annotations

import asyncio
import pickle
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import DecodeError

from reuse_runtime.client import WorkerClient
from reuse_runtime.wire import splice
from reuse_runtime.wire.v1 import runtime_pb2 as pb
from tests.helpers import run_python, spawn_worker, task
from tests.wire import payload_tasks

BIG = splice.SPLICE_BYTES
SMALL = BIG - 1


def _payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _element(layout: splice.Layout, message: Any, index: int) -> Any:
    """The element ``index`` of ``message``'s repeated field, added if missing."""
    container = message
    for name in layout.outer:
        container = getattr(container, name)
    elements = getattr(container, layout.repeated)
    while len(elements) <= index:
        elements.add()
    return elements[index]


def _set_payload(layout: splice.Layout, element: Any, payload: bytes) -> None:
    for name in layout.inner[:-1]:
        element = getattr(element, name)
    setattr(element, layout.inner[-1], payload)


def _sample(layout: splice.Layout, sizes: list[int]) -> tuple[Any, Any, dict[int, bytes]]:
    """A message of ``len(sizes)`` elements with payloads of those sizes, and other
    fields set around them: (without the large payloads, whole, the large payloads)."""
    bare = layout.message()
    whole = layout.message()
    large: dict[int, bytes] = {}
    for index, size in enumerate(sizes):
        payload = _payload(size, index)
        for message in (bare, whole):
            element = _element(layout, message, index)
            # Fields besides the payload, before and after it in field order.
            if layout.message is pb.SubmitBatch:
                element.env_key = f"env-{index}"
                element.retries = index
                element.task.task_id = f"t{index}"
                element.task.call_key = "k" * index
            elif "args" in layout.inner:
                element.task_id = f"t{index}"
                element.call_key = "k" * index
                element.ref.module = "m"
            else:
                element.task_id = f"t{index}"
                element.replica_id = "r"
                element.duration_seconds = 0.5
        _set_payload(layout, _element(layout, whole, index), payload)
        if size >= BIG:
            large[index] = payload
        else:
            _set_payload(layout, _element(layout, bare, index), payload)
    return bare, whole, large


SHAPES = [[BIG], [SMALL], [10, BIG, 0, BIG + 7, SMALL, 3 * BIG], [0, 0, 0], []]


@pytest.mark.parametrize("layout", list(splice.LAYOUTS.values()), ids=lambda x: x.message.__name__)
@pytest.mark.parametrize("sizes", SHAPES, ids=lambda sizes: "-".join(map(str, sizes)) or "none")
def test_a_spliced_message_is_the_message_protobuf_writes_and_reads(
    layout: splice.Layout, sizes: list[int]
) -> None:
    bare, whole, large = _sample(layout, sizes)
    written = splice.serialize(splice.outgoing(bare, dict(large)))
    # Any protobuf parser reads the spliced bytes as the whole message...
    assert layout.message.FromString(written) == whole
    # ...and we read protobuf's own bytes, and ours, as the message without the large
    # payloads, which come by element index.
    for data in (whole.SerializeToString(), written):
        message, payloads = splice.parse(layout.message, data)
        assert message == bare
        assert {index: bytes(view) for index, view in payloads.items()} == large
        assert all(isinstance(view, memoryview) for view in payloads.values())


def test_a_message_with_no_large_payload_is_protobufs_own() -> None:
    bare, whole, large = _sample(splice.LAYOUTS[pb.SubmitBatch], [SMALL, SMALL, 5])
    assert not large
    assert splice.outgoing(bare, {}) is bare
    message, payloads = splice.parse(pb.SubmitBatch, whole.SerializeToString())
    assert message == whole and payloads is splice.NO_PAYLOADS


def test_fields_beside_the_elements_survive_and_a_container_may_come_twice() -> None:
    # A ControllerMessage whose dispatch arrives in two pieces (protobuf merges them):
    # the elements are numbered across both.
    first = pb.ControllerMessage()
    first.dispatch.tasks.add(task_id="a", args=_payload(BIG, 1))
    first.dispatch.cancel.append("gone")
    second = pb.ControllerMessage()
    second.dispatch.tasks.add(task_id="b", args=b"small")
    second.dispatch.tasks.add(task_id="c", args=_payload(2 * BIG, 2))
    data = first.SerializeToString() + second.SerializeToString()
    message, payloads = splice.parse(pb.ControllerMessage, data)
    assert [t.task_id for t in message.dispatch.tasks] == ["a", "b", "c"]
    assert [t.args for t in message.dispatch.tasks] == [b"", b"small", b""]
    assert list(message.dispatch.cancel) == ["gone"]
    assert sorted(payloads) == [0, 2]
    assert bytes(payloads[2]) == _payload(2 * BIG, 2)


def test_bytes_that_are_not_a_message_fail_as_protobufs_parser_fails() -> None:
    _, whole, _ = _sample(splice.LAYOUTS[pb.WorkerMessage], [BIG, 4, 2 * BIG])
    data = whole.SerializeToString()
    rng = random.Random(7)
    outcomes = {"parsed": 0, "refused": 0}
    cases = [data[:cut] for cut in range(0, len(data), 4099)]
    for _ in range(400):
        corrupt = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            # Mostly the framing at the start of the message and of each element.
            where = rng.randrange(64) if rng.random() < 0.7 else rng.randrange(len(data))
            corrupt[where] = rng.randrange(256)
        cases.append(bytes(corrupt))
    for case in cases:
        try:
            expected = pb.WorkerMessage.FromString(case)
        except DecodeError:
            expected = None
        try:
            message, payloads = splice.parse(pb.WorkerMessage, case)
        except DecodeError:
            outcomes["refused"] += 1
            assert expected is None, "we refused what protobuf reads"
            continue
        outcomes["parsed"] += 1
        # Whatever parses is what protobuf reads, the payloads put back in.
        assert expected is not None, "we read what protobuf refuses"
        assert _put_back(message, payloads) == expected
    assert outcomes["parsed"] and outcomes["refused"], outcomes


def _put_back(message: Any, payloads: splice.Payloads) -> Any:
    layout = splice.LAYOUTS[type(message)]
    for index, view in payloads.items():
        _set_payload(layout, _element(layout, message, index), bytes(view))
    return message


@pytest.mark.parametrize("sizes", [(BIG, 5), (5, BIG), (BIG, 2 * BIG), (BIG, 0)])
def test_a_payload_given_twice_in_one_element_is_its_last_as_protobuf_reads_it(
    sizes: tuple[int, int],
) -> None:
    first, second = sizes
    element = pb.TaskSpec(task_id="t", args=_payload(first, 1)).SerializeToString()
    element += b"\x2a" + splice._varint(second) + _payload(second, 2)  # args (5) again
    data = b"\x0a" + splice._varint(len(element)) + element  # DispatchBatch.tasks
    message, payloads = splice.parse(pb.DispatchBatch, data)
    assert _put_back(message, payloads) == pb.DispatchBatch.FromString(data)
    assert bytes(payloads.get(0, b"")) == (_payload(second, 2) if second >= BIG else b"")


# ------------------------------------------------------------------ real processes


@pytest.fixture
async def worker_client() -> AsyncIterator[tuple[Any, WorkerClient]]:
    async with spawn_worker() as worker:
        client = WorkerClient(worker.address)
        try:
            await client.wait_ready()
            yield worker, client
        finally:
            await client.close()


async def test_a_plain_protobuf_client_gets_large_payloads_through_a_worker(
    worker_client: tuple[Any, WorkerClient],
) -> None:
    worker, client = worker_client
    inputs = [_payload(3 * BIG, 1), b"small", _payload(BIG, 2)]
    specs = [task(payload_tasks.echo, value) for value in inputs]
    batch = pb.DispatchBatch()
    for spec in specs:
        batch.tasks.add(
            task_id=spec.task_id,
            name=spec.name,
            args=spec.args,
            ref=pb.FunctionRef(module=spec.ref.module, qualname=spec.ref.qualname),  # type: ignore[union-attr]
        )

    async def requests() -> AsyncIterator[bytes]:
        yield batch.SerializeToString()  # protobuf's own bytes, the payloads inline

    values: dict[str, object] = {}
    async with grpc.aio.insecure_channel(worker.address) as channel:
        call = channel.stream_stream("/reuse_runtime.v1.Worker/Dispatch")(
            requests(), timeout=30, metadata=worker.metadata
        )
        async for reply in call:
            # The worker's spliced replies, read by protobuf alone.
            for result in pb.ResultBatch.FromString(reply).results:
                assert result.state == pb.TASK_STATE_SUCCEEDED, result.error
                values[result.task_id] = pickle.loads(result.value)
    assert values == {spec.task_id: value for spec, value in zip(specs, inputs, strict=True)}
    # And our own client, which splices both ways, on the same worker.
    ours = await asyncio.wait_for(
        asyncio.gather(*(client.run(task(payload_tasks.echo, value)) for value in inputs)), 30
    )
    assert [result.unwrap() for result in ours] == inputs


async def test_a_large_malformed_batch_is_invalid_argument_and_the_worker_serves_on(
    worker_client: tuple[Any, WorkerClient],
) -> None:
    worker, client = worker_client
    good = task(payload_tasks.echo, _payload(BIG, 3))
    whole = pb.DispatchBatch()
    whole.tasks.add(task_id=good.task_id, name=good.name, args=good.args)
    body = bytearray(whole.SerializeToString())
    body[1:4] = b"\xff\xff\xff"  # the element's length: a varint running past the message

    async def requests() -> AsyncIterator[bytes]:
        yield bytes(body)

    async with grpc.aio.insecure_channel(worker.address) as channel:
        call = channel.stream_stream("/reuse_runtime.v1.Worker/Dispatch")(
            requests(), timeout=10, metadata=worker.metadata
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            async for _ in call:
                pass
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT, raised.value
    assert "malformed reuse_runtime.v1.DispatchBatch message" in (raised.value.details() or "")
    assert worker.process.returncode is None
    result = await asyncio.wait_for(client.run(task(payload_tasks.echo, b"still here")), 10)
    assert result.unwrap() == b"still here"


def test_large_arguments_and_results_cross_a_controller_whole(tmp_path: Path) -> None:
    # Parent and children on two replicas through an embedded controller: each payload
    # is spliced out and in at every hop (parent -> controller -> child and back),
    # mixed in batches with small ones; every byte is checked at both ends.
    completed = run_python(
        tmp_path,
        """
import asyncio, hashlib, random
import reuse_runtime as flyte

env = flyte.TaskEnvironment(
    "splice", reusable=flyte.ReusePolicy(replicas=2, concurrency=8)
)

@env.task
async def child(data: bytes, size: int) -> tuple[str, bytes]:
    return hashlib.sha256(data).hexdigest(), random.Random(size).randbytes(size)

@env.task
async def parent() -> str:
    sizes = [0, 5, 128 * 1024 - 1, 128 * 1024, 3 * 2**20, 200_000] * 4
    inputs = [random.Random(i).randbytes(size) for i, size in enumerate(sizes)]
    got = await asyncio.gather(*(child(data, len(data) // 2) for data in inputs))
    for data, (digest, back) in zip(inputs, got):
        assert digest == hashlib.sha256(data).hexdigest(), "arguments changed on the way"
        assert back == random.Random(len(data) // 2).randbytes(len(data) // 2), "result changed"
    return f"{len(got)} ok"

if __name__ == "__main__":
    flyte.init()
    print(flyte.run(parent).outputs()[0])
""",
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().endswith("24 ok"), completed.stdout
