"""Prometheus metrics of a real controller: counters that match what happened, promtool-clean."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from reuse_runtime.client import ControllerClient
from reuse_runtime.security import Security
from tests import metrics_tasks as mt
from tests.helpers import running_controller, spawn_controller, submit, subprocess_env

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str) -> tuple[str, Samples]:
    def get() -> str:
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode())

    text = await asyncio.to_thread(get)
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[s.name, frozenset(s.labels.items())] = s.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def scrape_until(
    url: str, name: str, want: float, *, timeout: float = 60.0, **labels: str
) -> tuple[float | None, Samples]:
    """Scrape until ``name{labels}`` reads ``want`` or the time is up: its last value,
    and the samples it was read from."""
    deadline = time.monotonic() + timeout
    while True:
        _, samples = await scrape(url)
        got = value(samples, name, **labels)
        if got == want or time.monotonic() > deadline:
            return got, samples
        await asyncio.sleep(0.1)


async def test_counters_match_what_happened_and_pass_promtool(tmp_path: Path) -> None:
    """Acceptance 1: a standalone controller, 1,000 tasks (100 failing, 100 retried once)."""
    token = secrets.token_urlsafe(16)
    async with spawn_controller("--metrics-port", "0", REUSE_RUNTIME_TOKEN=token) as controller:
        async with ControllerClient(controller.address, Security(token=token)) as client:
            await client.wait_ready()
            futures = []
            for i in range(1000):
                if i % 10 == 3:
                    futures.append(await submit(client, mt.boom, i))
                elif i % 10 == 7:
                    futures.append(await submit(client, mt.flaky, i, str(tmp_path), retries=1))
                else:
                    futures.append(await submit(client, mt.ok, i))
            results = await asyncio.wait_for(asyncio.gather(*futures), 120)
        # The pool has 2 replicas; under load the second may still be starting.
        deadline = time.monotonic() + 30
        while True:
            text, samples = await scrape(controller.metrics_url)
            ready = value(samples, "reuse_runtime_replicas", environment="metered", phase="ready")
            if ready == 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)

    states = [r.state.name for r in results]
    assert states.count("SUCCEEDED") == 900 and states.count("FAILED") == 100
    env = "metered"
    assert value(samples, "reuse_runtime_tasks_total", environment=env, state="succeeded") == 900
    assert value(samples, "reuse_runtime_tasks_total", environment=env, state="failed") == 100
    assert value(samples, "reuse_runtime_tasks_total", environment=env, state="retried") == 100
    assert value(samples, "reuse_runtime_tasks_total", environment=env, state="cancelled") == 0
    assert value(samples, "reuse_runtime_tasks_total", environment=env, state="timed_out") == 0
    # Every attempt ran on a replica (1,000 + 100 first attempts); each task started once.
    assert value(samples, "reuse_runtime_task_duration_seconds_count", environment=env) == 1100
    assert value(samples, "reuse_runtime_task_queue_seconds_count", environment=env) == 1000
    assert value(samples, "reuse_runtime_queue_depth", environment=env) == 0
    assert value(samples, "reuse_runtime_tasks_running", environment=env) == 0
    ready = value(samples, "reuse_runtime_replica_starts_total", environment=env, result="ready")
    assert ready == 2
    assert value(samples, "reuse_runtime_replicas", environment=env, phase="ready") == 2
    assert value(samples, "reuse_runtime_replicas", environment=env, phase="starting") == 0
    assert value(samples, "reuse_runtime_cold_start_seconds_count", environment=env, until="ready")
    rss = [v for (name, _), v in samples.items() if name == "reuse_runtime_replica_rss_bytes"]
    assert len(rss) == 2 and all(v > 10e6 for v in rss)
    assert value(samples, "reuse_runtime_replica_losses_total", environment=env, cause="oom") == 0
    # Bounded labels: every series names its environment, but the controller's own (code
    # bundles serve many environments), and none names a task.
    assert value(samples, "reuse_runtime_code_bundles_received_total") is not None
    for (name, labels), _ in samples.items():
        if (
            name.startswith("reuse_runtime_")
            and name != "reuse_runtime_code_bundles_received_total"
        ):
            assert "environment" in dict(labels), name
            assert not {"task", "task_id"} & set(dict(labels)), name

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`); CI installs it")
    check = await asyncio.to_thread(
        subprocess.run,
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr


async def test_a_killed_replica_and_recycles_show_with_their_cause_and_reason() -> None:
    """Acceptance 2: kill -9 a replica, recycle by max_tasks; both appear, with why."""
    async with running_controller(metrics_port=0) as (server, client):
        url = server.metrics_url  # type: ignore[attr-defined]
        # max_tasks=3 on one replica: 7 tasks in a row recycle two replicas.
        pids = [(await (await submit(client, mt.pid))).unwrap() for _ in range(7)]
        assert len(set(pids)) == 3
        victim = pids[-1]
        os.kill(victim, signal.SIGKILL)
        lost, samples = await scrape_until(
            url, "reuse_runtime_replica_losses_total", 1, environment="recycled", cause="signal"
        )
        status = await client.status()
    assert lost == 1
    recycles = value(
        samples, "reuse_runtime_recycles_total", environment="recycled", reason="max_tasks"
    )
    assert recycles == 2
    env = next(e for e in status.environments if e.name == "recycled")
    kinds = [(e.kind, e.reason) for e in env.events]
    assert kinds.count(("recycled", "max_tasks")) == 2
    assert ("lost", "signal") in kinds
    loss = next(e for e in env.events if e.kind == "lost")
    assert "SIGKILL" in loss.detail


async def test_metrics_are_off_unless_asked() -> None:
    async with running_controller() as (server, _):
        assert server.metrics_url == ""  # type: ignore[attr-defined]
        assert server.service.metrics is None  # type: ignore[attr-defined]


async def test_a_taken_metrics_port_is_a_clear_error() -> None:
    async with running_controller(metrics_port=0) as (server, _):
        port = server.metrics_url.rsplit(":", 1)[1].split("/")[0]  # type: ignore[attr-defined]
        done = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reuse_runtime", "controller", "--port", "0",
            "--metrics-port", port,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=subprocess_env(),
        )  # fmt: skip
        out, err = await asyncio.wait_for(done.communicate(), 30)
    assert done.returncode == 2, (out, err)
    assert b"cannot serve metrics on 127.0.0.1:" in err
    assert b"Traceback" not in err


def test_a_bad_metrics_port_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    import reuse_runtime as flyte
    from reuse_runtime.errors import PolicyError

    for bad in ("9100", -1, 70000, True):
        with pytest.raises(PolicyError, match="metrics_port"):
            flyte.init(metrics_port=bad)  # type: ignore[arg-type]
    monkeypatch.setenv("REUSE_RUNTIME_METRICS_PORT", "nine")
    with pytest.raises(PolicyError, match="REUSE_RUNTIME_METRICS_PORT must be a port number"):
        flyte.init()
    monkeypatch.delenv("REUSE_RUNTIME_METRICS_PORT")
    flyte.init()  # back to the default for the tests after this one


async def test_a_worker_that_joined_counts_as_external_not_as_a_start_of_ours() -> None:
    from reuse_runtime.security import Security as Sec
    from tests.controller import tasks as ctasks
    from tests.helpers import spawn_worker

    token = "metrics-attach-token"
    async with running_controller(metrics_port=0, security=Sec(token=token)) as (server, client):
        await client.register(ctasks.where.environment_spec())  # type: ignore[attr-defined]
        async with spawn_worker(
            "--controller", server.address, "--environment", "joinable",  # type: ignore[attr-defined]
            REUSE_RUNTIME_TOKEN=token,
        ) as worker:  # fmt: skip
            external, _ = await scrape_until(
                server.metrics_url,  # type: ignore[attr-defined]
                "reuse_runtime_replicas",
                1,
                environment="joinable",
                phase="external",
            )
            assert (await (await submit(client, ctasks.where))).unwrap() == worker.pid
            _, samples = await scrape(server.metrics_url)  # type: ignore[attr-defined]
            status = await client.status()  # type: ignore[attr-defined]
    assert external == 1
    env = "joinable"
    assert value(samples, "reuse_runtime_replicas", environment=env, phase="ready") == 0
    assert (
        value(samples, "reuse_runtime_replica_starts_total", environment=env, result="ready") == 0
    )
    assert (
        value(
            samples, "reuse_runtime_cold_start_seconds_count", environment=env, until="first_task"
        )
        == 0
    )
    assert value(samples, "reuse_runtime_tasks_total", environment=env, state="succeeded") == 1
    (joined,) = [e for e in status.environments if e.name == env]
    assert [e.kind for e in joined.events] == ["attached"]


async def test_replayed_children_and_an_unresponsive_replica_are_counted(tmp_path: Path) -> None:
    """Durable replay counts each child answered from the log; a replica declared lost
    for its silence (SIGSTOP) counts as 'unresponsive', not as killed or disconnected."""
    from tests.controller import storm_tasks as st

    n = 50
    async with running_controller(metrics_port=0, report_deadline=2.0) as (server, client):
        url = server.metrics_url  # type: ignore[attr-defined]
        result = await asyncio.wait_for(
            await submit(client, st.parent_that_fails_once, n, str(tmp_path / "notes"), retries=1),
            120,
        )
        assert result.unwrap() == sum(2 * i for i in range(n))
        frozen = (await (await submit(client, st.pid_after, 0.0))).unwrap()
        os.kill(frozen, signal.SIGSTOP)
        try:
            lost, samples = await scrape_until(
                url,
                "reuse_runtime_replica_losses_total",
                1,
                environment="fragile",
                cause="unresponsive",
            )
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(frozen, signal.SIGKILL)
    assert lost == 1
    replayed = sum(
        count
        for (name, labels), count in samples.items()
        if name == "reuse_runtime_tasks_total" and ("state", "replayed") in labels
    )
    assert replayed == n
