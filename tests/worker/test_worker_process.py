"""Acceptance for the worker runtime: each test runs against a real worker subprocess."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator

import pytest

from reuse_runtime.client import WorkerClient
from reuse_runtime.errors import ConfigError
from reuse_runtime.model import ErrorKind, ReplicaInit, ReplicaReport, ResultsBatch, TaskState
from reuse_runtime.security import Security
from reuse_runtime.wire import services
from reuse_runtime.worker.server import WorkerConfig
from tests.helpers import eventually, spawn_worker, task
from tests.worker import tasks


async def test_limiter_bounds_concurrency_and_batch_takes_three_rounds() -> None:
    async with spawn_worker("--concurrency", "4") as worker, WorkerClient(worker.address) as client:
        seen_active: list[int] = []
        stop = asyncio.Event()

        async def poll() -> None:
            while not stop.is_set():
                seen_active.append((await client.status()).active)
                await asyncio.sleep(0.02)

        poller = asyncio.create_task(poll())
        started = time.perf_counter()
        results = await asyncio.gather(*(client.run(task(tasks.sleepy, 0.3)) for _ in range(12)))
        elapsed = time.perf_counter() - started
        stop.set()
        await poller

    values = [r.unwrap() for r in results]
    assert max(values) == 4, values
    assert max(seen_active) <= 4
    assert 4 in seen_active
    assert 0.85 <= elapsed < 1.5, elapsed


async def test_module_globals_stay_warm() -> None:
    async with (
        spawn_worker("--concurrency", "10") as worker,
        WorkerClient(worker.address) as client,
    ):
        counts = [(await client.run(task(tasks.count))).unwrap() for _ in range(20)]
        assert counts == list(range(1, 21))

        first_calls = await asyncio.gather(*(client.run(task(tasks.predict, i)) for i in range(10)))
        assert [r.unwrap() for r in first_calls] == [(i * 42, 1) for i in range(10)]
        later = (await client.run(task(tasks.predict, 5))).unwrap()
        assert later == (210, 1)

        hits = [(await client.run(task(tasks.cache_info))).unwrap() for _ in range(3)]
        assert hits == [0, 1, 2]


async def test_unary_execute_runs_the_same_code() -> None:
    async with spawn_worker() as worker, WorkerClient(worker.address) as client:
        assert (await client.execute(task(tasks.count))).unwrap() == 1
        assert (await client.run(task(tasks.count))).unwrap() == 2


def fails_here(x: int) -> None:
    raise ValueError(f"bad value {x}")  # the line the traceback must name


async def test_remote_error_carries_type_message_and_traceback() -> None:
    async with spawn_worker() as worker, WorkerClient(worker.address) as client:
        result = await client.run(task(fails_here, 7))
    assert result.state is TaskState.FAILED
    assert result.error is not None
    assert result.error.kind is ErrorKind.USER
    assert result.error.type == "builtins.ValueError"
    assert result.error.message == "bad value 7"
    line = fails_here.__code__.co_firstlineno + 1
    assert f'{__file__}", line {line}, in fails_here' in result.error.traceback
    with pytest.raises(ValueError, match="bad value 7") as raised:
        result.unwrap()
    assert "fails_here" in str(raised.value.__cause__)


async def test_idle_seconds_grow_and_idle_since_marks_the_last_task() -> None:
    async with spawn_worker("--concurrency", "2") as worker, WorkerClient(worker.address) as client:
        pending = client.submit(task(tasks.finish_time, 0.5))
        await asyncio.sleep(0.2)
        busy = await client.status()
        assert busy.active == 1
        assert busy.idle_seconds == 0.0
        assert busy.idle_since is None
        finished_at = (await pending).unwrap()
        first = await client.status()
        await asyncio.sleep(0.3)
        second = await client.status()
    assert first.idle_since is not None
    assert abs(first.idle_since - finished_at) < 0.1
    assert second.idle_seconds >= first.idle_seconds + 0.25
    assert second.idle_since == first.idle_since


class MiniController:
    """A minimal controller: greets replicas and records their reports."""

    def __init__(self, init: ReplicaInit | None = None) -> None:
        self.init = init or ReplicaInit()
        self.reports: list[tuple[float, ReplicaReport]] = []
        self.results: list[ResultsBatch] = []
        self.attached = asyncio.Event()
        self.stream: services.ReplicaStream | None = None

    async def attach(
        self, stream: services.ReplicaStream, events: AsyncIterator[services.ReplicaEvent]
    ) -> None:
        self.stream = stream
        stream.send_init(self.init)
        self.attached.set()
        async for event in events:
            if isinstance(event, ReplicaReport):
                self.reports.append((time.monotonic(), event))
            else:
                self.results.append(event)


async def _start_mini_controller(ops: MiniController):  # type: ignore[no-untyped-def]
    server, _ = services.build_server(
        [services.replica_handler(ops)], [services.CONTROLLER_SERVICE], Security()
    )
    port = services.bind(server, "127.0.0.1", 0, Security())
    await server.start()
    return server, f"127.0.0.1:{port}"


async def test_sync_tasks_never_overlap_and_reports_flow_while_one_blocks() -> None:
    controller = MiniController()
    server, address = await _start_mini_controller(controller)
    try:
        async with (
            spawn_worker(
                "--concurrency",
                "8",
                "--controller",
                address,
                "--heartbeat",
                "0.3",
                "--replica-id",
                "r-sync",
            ) as worker,
            WorkerClient(worker.address) as client,
        ):
            await asyncio.wait_for(controller.attached.wait(), 10)
            overlaps = await asyncio.gather(
                *(client.run(task(tasks.blocking, 0.1)) for _ in range(6))
            )
            assert [r.unwrap() for r in overlaps] == [0] * 6

            pending = client.submit(task(tasks.blocking, 2.0))
            await asyncio.sleep(0.2)
            started = time.monotonic()
            await pending
            during = [r for t, r in controller.reports if started <= t <= started + 1.7]
    finally:
        await server.stop(None)
    assert during, "no report arrived while a sync task blocked for 2 s"
    assert all(r.replica_id == "r-sync" for _, r in controller.reports)
    assert any(r.active == 1 for r in during)
    report = controller.reports[-1][1]
    assert report.capacity == 8 and report.rss_bytes > 10_000_000
    assert report.completed >= 7


async def test_reports_on_every_transition_with_the_documented_fields() -> None:
    controller = MiniController()
    server, address = await _start_mini_controller(controller)
    try:
        async with (
            spawn_worker(
                "--controller",
                address,
                "--heartbeat",
                "5",
                "--replica-id",
                "r-idle",
            ) as worker,
            WorkerClient(worker.address) as client,
        ):
            await asyncio.wait_for(controller.attached.wait(), 10)
            before = len(controller.reports)
            await client.run(task(tasks.finish_time, 0.3))
            await asyncio.sleep(0.2)
            after = [r for _, r in controller.reports[before:]]
    finally:
        await server.stop(None)
    # Busy then idle, without waiting for the 5 s heartbeat.
    assert any(r.active == 1 and r.idle_since is None for r in after), after
    assert after[-1].active == 0 and after[-1].idle_since is not None
    assert after[-1].completed == 1 and after[-1].failed == 0
    assert after[-1].loop_lag >= 0.0


async def test_the_controller_may_be_given_in_flytes_form() -> None:
    controller = MiniController()
    server, address = await _start_mini_controller(controller)
    try:
        async with spawn_worker("--controller", f"dns:///{address}", "--replica-id", "r-dns"):
            await asyncio.wait_for(controller.attached.wait(), 10)
            await eventually(lambda: controller.reports, what="a report")
    finally:
        await server.stop(None)
    assert controller.reports[0][1].replica_id == "r-dns"
    config = WorkerConfig(controller=" dns:///[::1]:50050 ")
    assert config.controller == "[::1]:50050"  # one spelling from here on
    with pytest.raises(ConfigError, match=r"^--controller 'https://ctl:1' is a URL"):
        WorkerConfig(controller="https://ctl:1")


async def test_an_idle_replica_reports_every_idle_heartbeat_its_controller_asks_for() -> None:
    controller = MiniController(ReplicaInit(idle_heartbeat=1.5))
    server, address = await _start_mini_controller(controller)
    try:
        async with (
            spawn_worker(
                "--controller", address, "--heartbeat", "0.2", "--replica-id", "r-quiet"
            ) as worker,
            WorkerClient(worker.address) as client,
        ):
            await asyncio.wait_for(controller.attached.wait(), 10)
            await eventually(lambda: controller.reports, what="its first report, sent at attach")
            quiet_from = time.monotonic()
            await asyncio.sleep(3.0)
            idle = [r for t, r in controller.reports if t >= quiet_from]
            busy_from = time.monotonic()
            await client.run(task(tasks.finish_time, 1.2))
            busy = [r for t, r in controller.reports if t >= busy_from and r.active == 1]
    finally:
        await server.stop(None)
    # Every 1.5 s idle (two in 3 s; three at most), not every 0.2 s (about fifteen).
    assert 1 <= len(idle) <= 3, idle
    assert all(r.active == 0 for r in idle)
    # Busy: at once, then every heartbeat again (about six while the task runs).
    assert len(busy) >= 2, busy


async def test_sigterm_drains_in_flight_tasks_and_exits_zero() -> None:
    async with spawn_worker("--concurrency", "4", "--grace-period", "5") as worker:
        async with WorkerClient(worker.address) as client:
            pending = [client.submit(task(tasks.finish_time, 1.0)) for _ in range(3)]
            for _ in range(200):
                if (await client.status()).active == 3:
                    break
                await asyncio.sleep(0.01)
            sent = time.monotonic()
            worker.signal(signal.SIGTERM)
            results = await asyncio.gather(*pending)
            code = await worker.wait(5)
            took = time.monotonic() - sent
    assert [r.state for r in results] == [TaskState.SUCCEEDED] * 3
    assert code == 0
    assert took < 5


async def test_task_output_comes_back_on_the_stream() -> None:
    lines = []
    async with spawn_worker() as worker:
        async with WorkerClient(worker.address, on_logs=lines.extend) as client:
            assert (await client.run(task(tasks.talk, 3))).unwrap() == "done"
    assert [(x.task_name, x.text) for x in lines] == [("talk", f"line {i}") for i in range(3)]


async def test_log_lines_carry_replica_and_task_ids() -> None:
    import json

    spec = task(tasks.log_inside)
    # JSON lines when asked (a pipe gets readable lines; a file gets JSON unasked).
    async with spawn_worker("--replica-id", "r-logs", REUSE_RUNTIME_LOG_FORMAT="json") as worker:
        async with WorkerClient(worker.address) as client:
            assert (await client.run(spec)).unwrap() == "logged"
        worker.signal(signal.SIGTERM)
        assert await worker.wait(10) == 0
    await asyncio.sleep(0)
    records = [json.loads(line) for line in worker.stderr_lines if line.startswith("{")]
    inside = [r for r in records if r.get("event") == "inside the task"]
    assert inside, worker.stderr_lines
    assert inside[0]["task_id"] == spec.task_id
    assert all(r["replica_id"] == "r-logs" for r in records)


async def test_unary_execute_maps_bad_input_to_invalid_argument() -> None:
    import grpc

    from reuse_runtime.model import TaskSpec

    async with spawn_worker() as worker, WorkerClient(worker.address) as client:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await client.execute(TaskSpec("t", "nothing", b""))
        assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "names no function" in (raised.value.details() or "")
        assert (await client.execute(task(tasks.count))).unwrap() == 1
