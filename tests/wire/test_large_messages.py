"""Large payloads: batches are cut to fit a gRPC message, and what cannot fit is refused.

gRPC refuses to send a message over its limit, and that breaks the whole stream
it was on: every task on it, and a replica's link to its controller. So batches
of large tasks or results are cut into several messages, a task too large for
any message fails alone with a clear error, and a controller that fails the
submit stream again and again gets a clear error instead of an endless resend.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from reuse_runtime.client import FAILED_STREAMS, ControllerClient
from reuse_runtime.errors import ControllerUnavailableError
from reuse_runtime.model import Submission
from reuse_runtime.wire.batching import BATCH_BYTES, MAX_PAYLOAD_BYTES, in_batches
from reuse_runtime.wire.v1 import runtime_pb2 as pb
from reuse_runtime.wire.v1 import runtime_pb2_grpc as pb_grpc
from tests.controller import tasks
from tests.helpers import run_cli, run_python

LARGE = """
    import asyncio
    import reuse_runtime as flyte
    from reuse_runtime.errors import BadInputError

    env = flyte.TaskEnvironment(
        name="large", reusable=flyte.ReusePolicy(replicas=1, concurrency=8)
    )
    MiB = 1024 * 1024
    arrived = []

    @env.task(max_inline_io_bytes=1024 * MiB)
    async def echo(data: bytes) -> bytes:
        # The six finish together, once all of them are on the replica: their results
        # leave in one batch (a lone 300 MiB call is refused before it gets here).
        arrived.append(len(data))
        async with asyncio.timeout(60):
            while len(arrived) < 6:
                await asyncio.sleep(0.01)
        return data[::-1]

    @env.task
    async def main() -> str:
        inputs = [bytes([i]) * (60 * MiB) for i in range(6)]
        out = await asyncio.gather(*(echo(data) for data in inputs))
        assert out == inputs, "wrong results"
        try:
            await echo(b"x" * (300 * MiB))
        except BadInputError as exc:
            return f"6 ok; refused: {exc}"
        return "6 ok; 300 MiB went through"

    if __name__ == "__main__":
        print(flyte.run(main).outputs()[0])
"""


def test_six_60_mib_tasks_at_once_run_and_a_300_mib_one_is_refused(tmp_path: Path) -> None:
    # Six 60 MiB tasks go to one replica, and come back from it, at the same time: one
    # batch of them would be 360 MiB, over gRPC's 256 MiB limit. The byte window is
    # opened so that the client sends all six at once.
    done = run_python(tmp_path, LARGE, timeout=180, REUSE_RUNTIME_MAX_OUTSTANDING_BYTES="1Gi")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "replica lost" not in done.stderr
    assert "6 ok; refused: " in done.stdout
    assert f"one task can carry at most {MAX_PAYLOAD_BYTES}" in done.stdout
    assert "pass large data as a file" in done.stdout


def test_a_replica_refuses_a_max_payload_no_message_can_carry(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "worker", "--max-payload", "1Gi", "--controller", "127.0.0.1:9")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "reuse-runtime worker: error: --max-payload can be at most 255Mi (one task or result "
        "travels in one gRPC message), got 1Gi"
    ]


def test_batches_are_cut_by_payload_bytes() -> None:
    sizes = [1, BATCH_BYTES, 5, 6, BATCH_BYTES * 3, 7]
    cut = list(in_batches(sizes, lambda size: size))
    assert cut == [([1, BATCH_BYTES], False), ([5, 6, BATCH_BYTES * 3], False), ([7], True)]
    assert list(in_batches([], lambda size: size)) == [([], True)]
    assert list(in_batches([BATCH_BYTES * 9], lambda size: size)) == [([BATCH_BYTES * 9], True)]
    # A cut that ends the list is its last run: no empty message follows.
    assert list(in_batches([5, BATCH_BYTES], lambda size: size)) == [([5, BATCH_BYTES], True)]


class _FailingController(pb_grpc.ControllerServicer):
    """A stand-in for a controller with a bug in its Submit handler: a real gRPC server
    that registers environments and fails every Submit stream with INTERNAL."""

    def __init__(self) -> None:
        self.streams = 0

    async def RegisterEnvironment(self, request: Any, context: Any) -> pb.EnvironmentRef:
        return pb.EnvironmentRef(key="env-1")

    async def Submit(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        self.streams += 1
        async for _ in request_iterator:
            await context.abort(grpc.StatusCode.INTERNAL, "a bug in the Submit handler")
        yield pb.SubmitEvents()  # never reached


async def test_a_controller_failing_every_submit_stream_fails_the_tasks_instead_of_looping() -> (
    None
):
    servicer = _FailingController()
    server = grpc.aio.server()
    pb_grpc.add_ControllerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    events: list[str] = []
    try:
        async with ControllerClient(f"127.0.0.1:{port}", on_event=events.append) as client:
            key = await client.register(tasks.child.environment_spec())
            future = client.submit(Submission(key, tasks.child.task_spec((1,), {}, run_id="r")))
            with pytest.raises(ControllerUnavailableError) as raised:
                await asyncio.wait_for(future, 30)
    finally:
        await server.stop(None)
    message = str(raised.value)
    assert f"failed the submit stream {FAILED_STREAMS} times in a row" in message
    assert "INTERNAL: a bug in the Submit handler" in message
    assert "1 unfinished task failed here instead of being sent again" in message
    assert servicer.streams == FAILED_STREAMS
    assert sum("is back" in event for event in events) == FAILED_STREAMS - 1
