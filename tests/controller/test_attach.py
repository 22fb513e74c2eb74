"""Workers someone else started join a standalone controller (`--environment`), for real."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

from reuse_runtime.client import ControllerClient
from reuse_runtime.security import Security
from tests.controller import tasks
from tests.helpers import (
    ROOT,
    eventually,
    running_controller,
    spawn_controller,
    spawn_worker,
    submit,
    subprocess_env,
)

TOKEN = "attach-test-token"


async def _external(client: object) -> object:
    status = await client.status()  # type: ignore[attr-defined]
    for env in status.environments:
        for replica in env.replicas:
            if env.name == "joinable" and replica.external and replica.state == "ready":
                return replica
    return None


async def test_an_external_worker_runs_tasks_is_marked_and_outlives_idle_ttl() -> None:
    async with running_controller(security=Security(token=TOKEN)) as (server, client):
        await client.register(tasks.where.environment_spec())
        async with spawn_worker(
            "--controller",
            server.address,
            "--environment",
            "joinable",
            "--concurrency",
            "2",
            REUSE_RUNTIME_TOKEN=TOKEN,
        ) as worker:
            replica = await eventually(lambda: _external(client), timeout=20)
            assert f"pid {worker.pid}" in replica.where  # type: ignore[attr-defined]
            result = await (await submit(client, tasks.where))
            assert result.unwrap() == worker.pid

            # idle_ttl is 1 s: the environment goes dormant; the external worker stays.
            async def dormant() -> bool:
                status = await client.status()
                return any(e.name == "joinable" and e.dormant for e in status.environments)

            await eventually(dormant, timeout=20)
            await asyncio.sleep(2.0)
            assert await _external(client) is not None
            assert worker.process.returncode is None
            again = await (await submit(client, tasks.where))
            assert again.unwrap() == worker.pid
            status = await client.status()
            (env,) = [e for e in status.environments if e.name == "joinable"]
            assert [r.external for r in env.replicas] == [True]  # none of the controller's own
            # Its owner stops it: it drains and leaves; nothing is lost.
            worker.signal(signal.SIGTERM)
            assert await worker.wait(20) == 0
            await eventually(lambda: _gone(client), timeout=20)


async def _gone(client: object) -> bool:
    return await _external(client) is None


async def test_a_refused_attach_exits_non_zero_with_the_reason() -> None:
    async with running_controller(security=Security(token=TOKEN)) as (server, _):
        for extra, reason in (
            (["--environment", "nonexistent"], "no environment named 'nonexistent'"),
            ([], "was not started by this controller"),
        ):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "reuse_runtime",
                "worker",
                "--controller",
                server.address,
                *extra,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=subprocess_env(REUSE_RUNTIME_TOKEN=TOKEN),
                cwd=str(ROOT),
            )
            _, err = await asyncio.wait_for(process.communicate(), 30)
            assert process.returncode == 1
            last = err.decode().strip().splitlines()[-1]
            assert last.startswith("reuse-runtime worker: error: the controller at"), last
            assert reason in last


async def test_a_worker_with_default_settings_is_served_under_the_default_report_deadline() -> None:
    """A worker started by hand with no --heartbeat reports often enough for the default
    deadline, and a task sent after it idled past half of it is dispatched at once."""
    async with running_controller(security=Security(token=TOKEN), report_deadline=5.0) as (
        server,
        client,
    ):
        await client.register(tasks.where.environment_spec())
        async with spawn_worker(
            "--controller",
            server.address,
            "--environment",
            "joinable",
            REUSE_RUNTIME_TOKEN=TOKEN,
        ) as worker:
            first = await eventually(lambda: _external(client), timeout=20)
            for _ in range(3):
                await asyncio.sleep(3.0)  # idle for more than half the deadline
                result = await asyncio.wait_for(await submit(client, tasks.where), 10)
                assert result.unwrap() == worker.pid
            still = await _external(client)
            assert still is not None
            assert still.replica_id == first.replica_id  # type: ignore[attr-defined]


async def test_an_external_worker_dials_its_lost_controller_within_its_window(
    tmp_path: Path,
) -> None:
    """By default a worker that joined with --environment rides out its controller's
    restart and rejoins, warm; one with a shorter --reconnect exits non-zero once its
    window is over."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    env = {"REUSE_RUNTIME_TOKEN": TOKEN, "REUSE_RUNTIME_HOME": str(tmp_path)}
    security = Security(token=TOKEN)
    worker_args = ("--environment", "joinable", "--concurrency", "2")
    async with spawn_controller("--port", port, **env) as first:
        async with ControllerClient(first.address, security) as client:
            await client.register(tasks.where.environment_spec())
            async with (
                spawn_worker(
                    "--controller", first.address, *worker_args, "--replica-id", "patient", **env
                ) as patient,
                spawn_worker(
                    "--controller", first.address, *worker_args, "--replica-id", "brief",
                    "--reconnect", "2", **env,
                ) as brief,
            ):  # fmt: skip
                await eventually(lambda: _attached(client, "patient", "brief"), timeout=20)
                first.process.kill()
                await first.process.wait()
                assert await brief.wait(30) == 1
                last = "".join(brief.stderr_lines).strip().splitlines()[-1]
                assert last.startswith("reuse-runtime worker: error: lost the controller"), last
                assert "did not take this worker back within 2 s" in last
                async with spawn_controller("--port", port, **env) as second:
                    async with ControllerClient(second.address, security) as again:
                        await again.register(tasks.where.environment_spec())
                        await eventually(lambda: _attached(again, "patient"), timeout=30)
                        result = await (await submit(again, tasks.where))
                        assert result.unwrap() == patient.pid


async def _attached(client: object, *replicas: str) -> bool:
    status = await client.status()  # type: ignore[attr-defined]
    ready = {r.replica_id for e in status.environments for r in e.replicas if r.state == "ready"}
    return set(replicas) <= ready
