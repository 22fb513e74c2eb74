"""Faults between hosts: a controller (a), workers that attach (b, c), a client (d).

Every test runs a fan-out (parents gathering children of :mod:`fault_tasks`) from
the client through the controller, over mTLS and a token, while one fault hits,
then heals it. Each records a row (see :mod:`tests.network.report`) and checks the
promises: no task is lost and no result reaches its caller twice (a task may run
twice: at least once); a partitioned worker is declared lost at its deadline, its
tasks are retried elsewhere, its late results are counted, and it rejoins, or exits
once its ``--reconnect`` window is over, leaving nothing running; a partitioned
client comes back and gets its results.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.helpers import ROOT
from tests.network.cluster import Cluster, finished, wait_for
from tests.network.report import outcome, record
from tests.tls import make_certs

pytestmark = pytest.mark.network

#: The controller's report deadline (its default): a silent replica is lost after it.
DEADLINE = 5.0


def _setup(cluster: Cluster, workers: tuple[str, ...] = ("b", "c")) -> None:
    """The controller, its environment registered (by a first run), the workers attached."""
    cluster.start_controller()
    warm = finished(cluster.drive("--parents", "1", "--children", "2"), 120)
    assert warm["succeeded"] == 1, warm
    started = [cluster.start_worker(cluster[host], wait=False) for host in workers]
    for worker in started:  # started together: their imports overlap
        cluster.listening(worker)
    wait_for(lambda: cluster.ready(*(f"worker-{h}" for h in workers)), 60, "the workers attached")
    Path(cluster.log).unlink()  # count from here


def _fanout(cluster: Cluster, parents: int, children: int, seconds: float, *extra: str) -> Any:
    return cluster.drive(
        "--parents", str(parents), "--children", str(children), "--seconds", str(seconds),
        "--timeout", "600", *extra,
    )  # fmt: skip


def _runs_on(cluster: Cluster, host: str, since: float = 0.0) -> bool:
    return any(e.host == host and e.kind == "leaf" and e.time > since for e in cluster.executions())


def _events(cluster: Cluster, kind: str, replica: str, since: float = 0.0) -> list[float]:
    """When the controller recorded ``kind`` (lost, attached) for ``replica``, after ``since``."""
    return [
        e["at"]
        for e in cluster.environment()["events"]
        if e["kind"] == kind and e["replica_id"] == replica and e["at"] > since
    ]


def _back(report: dict[str, Any], since: float) -> float | None:
    """When the client sent its tasks again, after ``since``."""
    times = [at for at, line in report["events"] if "is back" in line and at > since]
    return min(times, default=None)


def _check_declared_lost(cluster: Cluster, replica: str, cut_at: float) -> float:
    """The replica was declared lost at its deadline; returns after how long."""
    lost = _events(cluster, "lost", replica, cut_at)
    assert lost, f"{replica} was never declared lost"
    after = lost[0] - cut_at
    # Its last report came up to a heartbeat before the cut; the check runs every 0.1 s.
    assert DEADLINE - 1.5 <= after <= DEADLINE + 2.0, f"{replica} declared lost after {after} s"
    return after


def _cut_off(cluster: Cluster, host: str, seconds: float) -> tuple[float, float]:
    """Partition ``host`` for ``seconds`` (the length of the fault, no readiness wait);
    when it was cut off and when it healed."""
    cut_at = time.time()
    cluster[host].partition()
    time.sleep(seconds)
    cluster[host].heal()
    return cut_at, time.time()


# ------------------------------------------------------------------ slow networks


@pytest.mark.timeout(300)
def test_50_ms_round_trips_with_1_percent_loss(network_ready: None, tmp_path: Path) -> None:
    with Cluster(tmp_path, delay_ms=25) as cluster:
        _setup(cluster)
        cluster["a"].lose(1)  # every packet to or from the controller, each way
        report = finished(_fanout(cluster, 2, 300, 0.1), 240)
        cluster["a"].heal()
        row = outcome("50 ms RTT, 1% loss", cluster, report, 300)
        row.notes.append(_took(report, _again(cluster, 2, 300, 0.1)))
        record(row)


def _again(cluster: Cluster, *workload: object) -> dict[str, Any]:
    """The same run once the fault is healed (a baseline; its executions are not counted)."""
    executions = cluster.executions()
    again = finished(_fanout(cluster, *workload), 240)  # type: ignore[arg-type]
    assert again["succeeded"] == again["submitted"], again
    # Keep the log as it was: the row counts the run under the fault.
    Path(cluster.log).write_text(
        "".join(f"{e.kind} {e.index} {e.host} {e.pid} {e.time}\n" for e in executions)
    )
    return again


def _took(report: dict[str, Any], healed: dict[str, Any]) -> str:
    return (
        f"took {report['ended'] - report['began']:.1f} s "
        f"({healed['ended'] - healed['began']:.1f} s healed)"
    )


@pytest.mark.timeout(300)
def test_a_10_mbit_link(network_ready: None, tmp_path: Path) -> None:
    with Cluster(tmp_path) as cluster:
        _setup(cluster)
        cluster["a"].limit_rate(10)  # the controller's link: everything crosses it
        # 16 KiB of arguments per child: about 10 MB through the controller.
        report = finished(_fanout(cluster, 2, 300, 0.05, "--pad", "16384"), 240)
        cluster["a"].heal()
        row = outcome("10 Mbit/s link", cluster, report, 300)
        row.notes.append(_took(report, _again(cluster, 2, 300, 0.05, "--pad", "16384")))
        record(row)


# ------------------------------------------------------------------ partitions


@pytest.mark.timeout(300)
def test_a_worker_partitioned_for_10_s(network_ready: None, tmp_path: Path) -> None:
    with Cluster(tmp_path) as cluster:
        _setup(cluster)
        driver = _fanout(cluster, 2, 400, 0.25)
        wait_for(lambda: _runs_on(cluster, "b"), 60, "the worker on b running children")
        cut_at, healed_at = _cut_off(cluster, "b", 10)
        report = finished(driver, 240)
        row = outcome("worker partitioned 10 s", cluster, report, 400)
        lost_after = _check_declared_lost(cluster, "worker-b", cut_at)
        # It was running children when it was cut off: they finished meanwhile, and
        # their results came late, when the network healed.
        late = cluster.environment()["late_results"]
        assert late > 0, "the partitioned worker's late results were not counted"
        # Told it was declared lost, it rejoins, warm, as a new replica.
        attached = wait_for(
            lambda: _events(cluster, "attached", "worker-b", healed_at), 60, "worker-b rejoined"
        )
        row.recovery = attached[0] - healed_at
        _runs_again(cluster, "b")
        row.notes += [f"declared lost after {lost_after:.1f} s", f"{late} late results"]
        record(row)


def _runs_again(cluster: Cluster, host: str) -> None:
    """A run after the heal uses the worker on ``host`` again."""
    since = time.time()
    again = finished(_fanout(cluster, 1, 200, 0.1), 120)
    assert again["succeeded"] == 1, again
    assert _runs_on(cluster, host, since), f"the worker on {host} ran nothing after the heal"


@pytest.mark.timeout(360)
def test_a_worker_partitioned_for_60_s(network_ready: None, tmp_path: Path) -> None:
    window = 15.0
    with Cluster(tmp_path) as cluster:
        _setup(cluster)
        # A second worker on b, with a reconnect window shorter than the partition.
        short = cluster.start_worker(cluster["b"], "--reconnect", f"{window:g}", name="worker-b2")
        wait_for(lambda: cluster.ready("worker-b2"), 60, "worker-b2 attached")
        driver = _fanout(cluster, 2, 400, 0.25)
        wait_for(lambda: _runs_on(cluster, "b"), 60, "the workers on b running children")
        cut_at = time.time()
        cluster["b"].partition()
        # The short-window worker gives up during the partition, and leaves nothing.
        exited_at = wait_for(lambda: short.poll() is not None and time.time(), 58, "b2 exits")
        gone_after = exited_at - cut_at
        assert not psutil.pid_exists(short.pid) or psutil.Process(short.pid).status() == "zombie"
        time.sleep(max(0.0, cut_at + 60 - time.time()))
        cluster["b"].heal()
        healed_at = time.time()
        report = finished(driver, 240)
        row = outcome("worker partitioned 60 s", cluster, report, 400)
        lost_after = _check_declared_lost(cluster, "worker-b", cut_at)
        # It dropped the connection after LINK_PATIENCE (20 s) of silence, then dialled
        # for its window: it cannot have exited sooner.
        assert gone_after >= 20 + window - 1, f"worker-b2 exited after {gone_after:.0f} s"
        attached = wait_for(
            lambda: _events(cluster, "attached", "worker-b", healed_at), 60, "worker-b rejoined"
        )
        row.recovery = attached[0] - healed_at
        # Replaced by whatever runs it (systemd, a Deployment): the new one attaches.
        cluster.start_worker(cluster["b"], name="worker-b2")
        wait_for(lambda: cluster.ready("worker-b2"), 60, "the replacement worker-b2 attached")
        _runs_again(cluster, "b")
        row.notes += [
            f"declared lost after {lost_after:.1f} s",
            f"worker with --reconnect {window:g} exited after {gone_after:.0f} s",
        ]
        record(row)


#: The run the second client starts (``flyte.run``): 600 children of 1 s on the
#: controller's own 16 slots (``fault_tasks.runs``), about 40 s: still going once the
#: first client's tasks run, and over within the 60 s partition.
RUN_CHILDREN = 600


@pytest.mark.timeout(360)
def test_a_client_partitioned_for_60_s(network_ready: None, tmp_path: Path) -> None:
    """Two clients on the host cut off: one submitted tasks itself (the controller
    cancels them once it drops the client, and the client sends them again when it
    is back), the other started a run the controller owns (``flyte.run``): that run
    goes on while its client is away, and the client follows it again when back."""
    with Cluster(tmp_path) as cluster:
        _setup(cluster)
        owned_log = str(tmp_path / "owned.log")
        owned = cluster.drive(
            "--run", "--children", str(RUN_CHILDREN), "--seconds", "1", "--timeout", "300",
            "--log", owned_log,
        )  # fmt: skip

        def run_going() -> bool:
            return any(e.kind == "leaf" for e in cluster.executions(owned_log))

        wait_for(run_going, 90, "the run's children running")
        driver = _fanout(cluster, 2, 300, 0.25)
        wait_for(lambda: _runs_on(cluster, "b"), 60, "the other client's children running")
        cut_at, healed_at = _cut_off(cluster, "d", 60)
        report = finished(driver, 240)
        run = finished(owned, 240)
        row = outcome("client partitioned 60 s: tasks", cluster, report, 300)
        back = _back(report, healed_at)
        assert back is not None, f"the client never came back: {report['events']}"
        row.recovery = back - healed_at
        # The controller cancels the tasks of a client it lost, and the client sends
        # them again when it is back: they run again (see the reliability page).
        row.notes.append(f"{row.executions - row.submitted} re-executions")
        record(row)
        # The run went on without its client: it ran once, and ended before the heal.
        owned_row = outcome(
            "client partitioned 60 s: flyte.run", cluster, run, RUN_CHILDREN, owned_log
        )
        executions = cluster.executions(owned_log)
        away = sum(e.kind == "leaf" and cut_at < e.time < healed_at for e in executions)
        assert away > 0, "none of the run's tasks ran while its client was away"
        ended = max(e.time for e in executions)
        assert ended < healed_at, f"the run ended {ended - healed_at:.1f} s after the heal"
        assert owned_row.executions == owned_row.submitted, f"tasks ran again: {owned_row.line()}"
        log = (tmp_path / "driver.log").read_text()
        assert f"is back; following run {run['run']} again" in log, log[-2000:]
        owned_row.recovery = run["ended"] - healed_at  # until the client had the result
        owned_row.notes.append(
            f"{away} of its tasks ran while the client was away; "
            f"the run ended {ended - cut_at:.0f} s into the partition"
        )
        record(owned_row)


@pytest.mark.timeout(360)
def test_the_controller_partitioned_for_30_s(network_ready: None, tmp_path: Path) -> None:
    with Cluster(tmp_path) as cluster:
        _setup(cluster)
        driver = _fanout(cluster, 2, 500, 0.25)
        wait_for(lambda: _runs_on(cluster, "b"), 60, "children running on b")
        cut_at, healed_at = _cut_off(cluster, "a", 30)
        report = finished(driver, 300)
        row = outcome("controller partitioned 30 s", cluster, report, 500)
        for worker in ("worker-b", "worker-c"):
            _check_declared_lost(cluster, worker, cut_at)
        attached = [
            wait_for(lambda w=w: _events(cluster, "attached", w, healed_at), 60, f"{w} rejoined")[0]
            for w in ("worker-b", "worker-c")
        ]
        back = _back(report, healed_at)
        row.recovery = max([*attached, *([back] if back is not None else [])]) - healed_at
        row.notes.append(f"{row.executions - row.submitted} re-executions")
        record(row)


# ------------------------------------------------------------------ issue 29's hang


@pytest.mark.timeout(300)
def test_a_retried_child_runs_when_the_only_worker_is_cut_off(
    network_ready: None, tmp_path: Path
) -> None:
    """Issue 29's hang, across namespaces: ``replicas=1, concurrency=4``, one external
    worker, a parent gathering 400 children of 0.2 s, the worker's link cut for 20 s.
    The parent holds the pool's one replica; the worker's children must be retried."""
    with Cluster(tmp_path) as cluster:
        _setup(cluster, workers=("b",))
        driver = _fanout(cluster, 1, 400, 0.2)
        wait_for(lambda: _runs_on(cluster, "b"), 60, "the worker running children")
        _, healed_at = _cut_off(cluster, "b", 20)
        # 400 x 0.2 s on four slots is 20 s: bounded well within two minutes.
        report = finished(driver, 120)
        row = outcome("worker cut 20 s (issue 29 hang)", cluster, report, 400)
        row.notes.append(f"took {report['ended'] - report['began']:.1f} s")
        attached = wait_for(
            lambda: _events(cluster, "attached", "worker-b", healed_at), 60, "worker-b rejoined"
        )
        row.recovery = attached[0] - healed_at
        record(row)


# ------------------------------------------------------------------ mTLS


@pytest.mark.timeout(180)
def test_a_host_with_the_wrong_certificate_is_refused(network_ready: None, tmp_path: Path) -> None:
    with Cluster(tmp_path) as cluster:
        _setup(cluster, workers=("b",))
        addresses = [host.address for host in cluster.network.hosts.values()]
        other = tmp_path / "other"
        other.mkdir()
        wrong = make_certs(other, prefix="other-", addresses=addresses)
        # A worker whose certificate another CA signed is not taken.
        worker = cluster.start_worker(cluster["c"], certs=wrong)
        assert worker.wait(60) != 0
        log = (tmp_path / "worker-c.log").read_text()
        assert "did not take this worker" in log, log[-2000:]
        # Nor a client's.
        refused = cluster["d"].run(
            sys.executable, "-m", "reuse_runtime", "status", "--json", "--endpoint",
            cluster.address, env=cluster.environ(cluster["d"], wrong), cwd=str(ROOT),
        )  # fmt: skip
        assert refused.returncode != 0, refused.stdout
        # The hosts with the right one go on.
        assert cluster.ready("worker-b")
        report = finished(_fanout(cluster, 1, 50, 0.0), 120)
        record(outcome("wrong certificate refused", cluster, report, 50))
