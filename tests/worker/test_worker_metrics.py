"""A worker's own /metrics (--metrics-port): its tasks, limiter, module loads, memory, lag."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator

import pytest

from reuse_runtime.client import WorkerClient
from reuse_runtime.model import ReplicaInit, ReplicaReport
from reuse_runtime.security import Security
from reuse_runtime.wire import services
from tests.helpers import spawn_worker, task
from tests.test_metrics import scrape, value
from tests.worker import tasks


async def _metrics_url(worker: object) -> str:
    stdout = worker.process.stdout  # type: ignore[attr-defined]
    line = (await asyncio.wait_for(stdout.readline(), 10)).decode()
    assert line.startswith("metrics on "), line
    return line.split("metrics on ", 1)[1].strip()


async def test_a_standalone_worker_counts_its_tasks_and_passes_promtool() -> None:
    async with (
        spawn_worker("--concurrency", "4", "--metrics-port", "0") as worker,
        WorkerClient(worker.address) as client,
    ):
        url = await _metrics_url(worker)
        ok = await asyncio.gather(*(client.run(task(tasks.count)) for _ in range(7)))
        failed = await asyncio.gather(*(client.run(task(tasks.fails, i)) for i in range(3)))
        text, samples = await scrape(url)
    assert all(r.ok for r in ok) and not any(r.ok for r in failed)
    env = "standalone"
    assert value(samples, "reuse_runtime_tasks_total", environment=env, state="succeeded") == 7
    assert value(samples, "reuse_runtime_tasks_total", environment=env, state="failed") == 3
    assert value(samples, "reuse_runtime_task_duration_seconds_count", environment=env) == 10
    assert value(samples, "reuse_runtime_module_load_seconds_count", environment=env) == 1
    assert value(samples, "reuse_runtime_limiter_capacity", environment=env) == 4
    assert value(samples, "reuse_runtime_limiter_tasks", environment=env, state="active") == 0
    rss = [v for (name, _), v in samples.items() if name == "reuse_runtime_replica_rss_bytes"]
    assert len(rss) == 1 and rss[0] > 10e6
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`); CI installs it")
    check = await asyncio.to_thread(
        subprocess.run, [promtool, "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr


class _Controller:
    """Just enough controller to attach a replica and name its environment."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()

    async def attach(
        self, stream: services.ReplicaStream, events: AsyncIterator[services.ReplicaEvent]
    ) -> None:
        stream.send_init(ReplicaInit(environment="named-env"))
        async for event in events:
            if isinstance(event, ReplicaReport):
                self.ready.set()


async def test_an_attached_worker_labels_its_series_with_the_controllers_environment() -> None:
    controller = _Controller()
    server, _ = services.build_server(
        [services.replica_handler(controller)], [services.CONTROLLER_SERVICE], Security()
    )
    port = services.bind(server, "127.0.0.1", 0, Security())
    await server.start()
    try:
        async with spawn_worker(
            "--controller", f"127.0.0.1:{port}", "--metrics-port", "0"
        ) as worker:
            url = await _metrics_url(worker)
            await asyncio.wait_for(controller.ready.wait(), 20)
            _, samples = await scrape(url)
    finally:
        await server.stop(grace=None)
    labels = {dict(labels).get("environment") for (_, labels) in samples}
    assert labels == {"named-env"}
    assert value(samples, "reuse_runtime_limiter_capacity", environment="named-env") == 1
