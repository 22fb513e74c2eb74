"""Issue 5's benchmark: this runtime against the limit, one worker, Ray and cold processes.

    pip install -e '.[bench]'          # Ray is optional: without it its rows say so
    python -m benchmarks.run           # the full run, about 7 minutes on 2 cores
    python -m benchmarks.run --quick   # a smaller run, under 3 minutes

Prints the machine, then one table: every row is the median of ``--reps``
repetitions (3), each in a fresh process, and its distance from the limit
(row 1). Writes the raw results to ``benchmarks/results/<time>.json``.

1. **limit**: a uvloop TCP echo of a task-shaped cloudpickle payload, one
   connection, 100 in flight (``benchmarks.limit``): the floor for any Python
   dispatch of this shape.
2. **sdk**: the seed's ``reuse_concurrency`` workload through the SDK and the
   embedded controller (``benchmarks.sdk_probe``), timed inside the parent task;
   per-child latency; cold start (``run()`` to the first task on a fresh pool).
3. **worker**: ``WorkerClient.run`` straight to one ``reuse-runtime worker``.
4. **ray**: two async Ray actors, ``max_concurrency=100``, calls from a driver.
5. **cold**: a fresh process per task (``python -c``, and the runtime's
   ``reusable="off"``) against a warm pool, without and with a 1 s import.
E. **container**: cold start and warm gather with local replicas and with
   containers, interleaved rep by rep (``benchmarks.container``); the container
   cold start and its ratio to the local one (target 6b). Needs an engine (or
   Podman to start one) and the Debian base image: skipped, saying why, without.
6. **scale**: 1k, 10k and 100k children; the controller's RSS.
7. **metrics**: the SDK workload with the embedded controller's Prometheus
   metrics off and on, alternating in one run: the cost of metrics.
8. **vsray**: the SDK workload and two Ray async actors at n=50k, paired and
   interleaved rep by rep: the ratio of each pair, its median and spread.
9. **makespan**: 10 ms and 100 ms tasks, n=10k, on the seed pool (capacity
   200): the makespan against the ideal ``n * duration / 200``.
B. **bytes**: 1 MiB argument and 1 MiB result per task, n=1k: the peak RSS of
   every process, and the throughput against a loopback TCP+pickle relay of
   the same payloads (``benchmarks.relay``), paired rep by rep.
N. **network**: noop and 100 ms tasks from a client host through a controller
   host to two worker hosts (network namespaces, ``benchmarks.network``) at 0, 10
   and 50 ms of round trip; each rate's ratio to 0 ms in the same repetition.
   Needs root: skipped, saying why, where namespaces cannot be made.

Every gather row reports CPU per task (user plus system, from ``/proc``, over the
measured run): per process and in total (the ``CPU us`` column). On a shared
machine that, and the paired ratios, are the numbers to read.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from benchmarks import container, targets
from benchmarks.children import ChildFailed, child_environment, run_child
from benchmarks.harness import ROOT
from benchmarks.sdk_tasks import INIT_SECONDS_ENV
from reuse_runtime.sdk.environment import NON_REUSABLE_MAX_REPLICAS

RESULTS_DIR = ROOT / "benchmarks" / "results"
SECTIONS = (
    "limit",
    "floor",
    "sdk",
    "worker",
    "ray",
    "cold",
    "container",
    "scale",
    "metrics",
    "store",
    "vsray",
    "makespan",
    "bytes",
    "clients",
    "replicas",
    "network",
)
#: The scale section's window when 100k children are also run in windows.
SCALE_WINDOW = 10_000


@dataclass(frozen=True)
class Plan:
    """How big each measurement is. ``--quick`` shrinks the counts, not the repetitions."""

    reps: int = 3
    limit_n: int = 100_000
    limit_n_seq: int = 5_000
    floor_n: int = 50_000
    floor_relay_window: int = 100
    sdk_ns: tuple[int, ...] = (500, 5_000, 50_000)
    sdk_seq: int = 300
    sdk_pools: int = 3
    worker_n_seq: int = 2_000
    worker_n_par: int = 20_000
    ray_ns: tuple[int, ...] = (500, 5_000, 50_000)
    ray_n_seq: int = 1_000
    cold_tasks: int = 100
    cold_init_s: float = 1.0
    container_n: int = 5_000
    scale_ns: tuple[int, ...] = (1_000, 10_000, 100_000)
    metrics_n: int = 50_000
    store_n: int = 50_000
    vsray_n: int = 50_000
    makespan_n: int = 10_000
    makespan_ms: tuple[float, ...] = (10.0, 100.0)
    bytes_n: int = 1_000
    bytes_size: int = 2**20
    clients: int = 8
    clients_n: int = 10_000
    replicas_workers: int = 1_000
    replicas_idle_s: float = 10.0
    network_rtts_ms: tuple[float, ...] = (0.0, 10.0, 50.0)
    network_noops: int = 5_000
    network_timed: int = 3_000


QUICK = Plan(
    limit_n=20_000,
    limit_n_seq=1_000,
    floor_n=20_000,
    sdk_ns=(500, 5_000),
    worker_n_seq=500,
    worker_n_par=5_000,
    ray_ns=(500, 5_000),
    ray_n_seq=300,
    cold_tasks=20,
    container_n=1_000,
    scale_ns=(1_000, 10_000),
    metrics_n=20_000,
    store_n=20_000,
    vsray_n=20_000,
    makespan_n=4_000,
    bytes_n=300,
    clients_n=2_000,
    replicas_workers=200,
    replicas_idle_s=5.0,
    network_noops=2_000,
    network_timed=1_500,
)


# ---------------------------------------------------------------- rows


@dataclass
class Row:
    """One line of the table. Every number is the median over the repetitions."""

    key: str
    label: str
    n: int | None = None
    rate: float | None = None  # tasks (or messages, or calls) per second
    p50_ms: float | None = None
    p99_ms: float | None = None
    seconds: float | None = None  # wall time, or the time the label names
    note: str = ""
    spread: float | None = None  # (max - min) / median of the row's main number
    samples: dict[str, list[float]] = field(default_factory=dict)
    error: str = ""
    # Most CPU that processes outside this run took while the row's section ran,
    # in % of one core (see MachineLoad): rows with a high value are suspect.
    others_pct: float | None = None
    cpu_us: float | None = None  # CPU per task, all processes of the run together


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _spread(values: list[float]) -> float | None:
    if len(values) < 2 or not statistics.median(values):
        return None
    return (max(values) - min(values)) / statistics.median(values)


def make_row(
    key: str, label: str, samples: dict[str, list[float]], *, n: int | None = None, note: str = ""
) -> Row:
    """A row from per-repetition samples named rate, p50_ms, p99_ms and seconds."""
    row = Row(key, label, n=n, note=note, samples=samples)
    row.rate = _median(samples.get("rate", []))
    row.p50_ms = _median(samples.get("p50_ms", []))
    row.p99_ms = _median(samples.get("p99_ms", []))
    row.seconds = _median(samples.get("seconds", []))
    row.cpu_us = _median(samples.get("cpu_us_per_task_total", []))
    main = next((samples[k] for k in ("rate", "seconds", "p50_ms") if samples.get(k)), [])
    row.spread = _spread(main)
    return row


class MachineLoad:
    """CPU that other processes took while a measurement ran: the noise in its numbers.

    The machine's busy CPU time less this run's own (this process and every process
    it waited for, which includes the replicas: their controller reaps them, and
    what a child reports as ``escaped_cpu_s``: Ray's workers, which nobody reaps).
    """

    def __init__(self) -> None:
        self._began = time.monotonic()
        self._busy, self._steal = self._machine()
        self._ours = self._own()

    @staticmethod
    def _machine() -> tuple[float, float]:
        t = psutil.cpu_times()
        busy = sum(getattr(t, k, 0.0) for k in ("user", "nice", "system", "irq", "softirq"))
        return busy, getattr(t, "steal", 0.0)

    @staticmethod
    def _own() -> float:
        me, children = os.times(), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.user + me.system + children.ru_utime + children.ru_stime

    def others_pct(self, escaped_cpu_s: float = 0.0) -> tuple[float, float]:
        """Other processes' CPU and the hypervisor's steal, in % of one core.

        ``escaped_cpu_s``: CPU of this run's processes that nobody here reaped.
        """
        wall = max(time.monotonic() - self._began, 1e-9)
        busy, steal = self._machine()
        ours = self._own() - self._ours + escaped_cpu_s
        others = max(0.0, (busy - self._busy) - ours)
        return 100 * others / wall, 100 * (steal - self._steal) / wall


class Bench:
    """Runs the sections of a :class:`Plan` and collects their rows and raw results."""

    def __init__(self, plan: Plan, state_dir: str, log: Callable[[str], None]) -> None:
        self.plan = plan
        self.state_dir = state_dir
        self.log = log
        self.rows: list[Row] = []
        self.raw: dict[str, Any] = {}
        self.section_others: list[float] = []  # others' CPU % of each measurement

    def section(self, name: str) -> None:
        """Run one section; its rows get the busiest moment of the machine during it."""
        self.section_others = []
        first = len(self.rows)
        getattr(self, name)()
        worst = max(self.section_others, default=None)
        for row in self.rows[first:]:
            row.others_pct = worst

    def child(
        self,
        module: str,
        *args: object,
        timeout_s: float = 300.0,
        init_s: float = 0.0,
        environ: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Run one measurement process; ``environ``: settings beyond the clean defaults."""
        extra = {INIT_SECONDS_ENV: f"{init_s:g}"} if init_s else {}
        extra.update(environ or {})
        argv = [str(a) for a in args]
        command = f"{module} {' '.join(argv)}" + (
            f" ({', '.join(f'{k}={v}' for k, v in extra.items())})" if extra else ""
        )
        load = os.getloadavg()[0]
        began = time.monotonic()
        machine_load = MachineLoad()
        try:
            result = run_child(module, argv, child_environment(self.state_dir, extra), timeout_s)
        except ChildFailed as exc:
            self.log(f"  {command}: FAILED after {time.monotonic() - began:.1f} s: {exc}")
            self.raw.setdefault(module, []).append(
                {
                    "args": argv,
                    "init_s": init_s,
                    "environ": environ or {},
                    "load_1m": load,
                    "error": str(exc),
                }
            )
            raise
        others, steal = machine_load.others_pct(result.get("escaped_cpu_s", 0.0))
        self.section_others.append(others)
        self.log(
            f"  {command}: {time.monotonic() - began:.1f} s "
            f"(others {others:.0f}% of a core, steal {steal:.0f}%)"
        )
        self.raw.setdefault(module, []).append(
            {
                "args": argv,
                "init_s": init_s,
                "environ": environ or {},
                "load_1m": load,
                "others_cpu_pct": others,
                "steal_pct": steal,
                **result,
            }
        )
        return result

    def failed(self, key: str, label: str, exc: Exception) -> None:
        self.log(f"  {label}: FAILED: {exc}")
        self.rows.append(Row(key, label, error=str(exc)))

    # ------------------------------------------------------------ 1. the limit

    def limit(self) -> None:
        p = self.plan
        label = "limit: uvloop TCP echo, cloudpickle, 1 conn, 100 in flight"
        try:
            r = self.child(
                "benchmarks.limit",
                "--n",
                p.limit_n,
                "--n-seq",
                p.limit_n_seq,
                "--reps",
                p.reps,
                timeout_s=180,
            )
        except ChildFailed as exc:
            self.failed("1", label, exc)
            return
        self.rows.append(
            make_row(
                "1",
                label,
                {"rate": r["msgs_per_s"], "p50_ms": r["seq_p50_ms"], "p99_ms": r["seq_p99_ms"]},
                n=p.limit_n,
                note="p50/p99: one message at a time",
            )
        )

    # ------------------------------------------------------------ F. the floor, paired

    def floor(self) -> None:
        """The seed gather's CPU per task against two floors of its shape, rep by rep.

        Each repetition runs the three in a fresh process each, in a rotating order:
        ``benchmarks.floor`` (three processes, one small frame per task per hop, all in
        flight: the least Python can do), ``benchmarks.relay`` with small frames (the
        same hops with asyncio streams, ``floor_relay_window`` in flight), and the SDK
        gather. The ratios are per repetition: a slow moment hits all three alike.
        """
        p = self.plan
        n = p.floor_n
        kinds = ("floor", "relay", "ours")
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
        for rep in range(p.reps):
            got: dict[str, dict[str, Any]] = {}
            for kind in kinds[rep % 3 :] + kinds[: rep % 3]:
                try:
                    if kind == "floor":
                        got[kind] = self.child("benchmarks.floor", "--n", n)
                    elif kind == "relay":
                        got[kind] = self.child(
                            "benchmarks.relay", "--n", n, "--size", 8,
                            "--window", p.floor_relay_window,
                        )  # fmt: skip
                    else:
                        got[kind] = self.child("benchmarks.sdk_probe", "gather", "--n", n)
                except ChildFailed as exc:
                    self.log(f"  floor rep {rep}: {kind} failed: {exc}")
            if len(got) == len(kinds):
                for kind in kinds:
                    runs[kind].append(got[kind])
        ours = runs["ours"]
        if not ours:
            self.failed("F", "floor", ChildFailed("no complete repetition"))
            return

        def total(run: dict[str, Any]) -> float:
            return (run["cpu_controller_s"] + sum(run["cpu_replicas_s"])) / run["n"] * 1e6

        def floor_row(key: str, label: str, kind: str, note: str) -> None:
            names = runs[kind][0]["cpu_us_per_task"]
            per_process = {
                name: statistics.median(r["cpu_us_per_task"][name] for r in runs[kind])
                for name in names
            }
            self.rows.append(
                make_row(
                    key,
                    label,
                    {
                        "rate": [r["tasks_per_s"] for r in runs[kind]],
                        "cpu_us_per_task_total": [r["cpu_us_per_task_total"] for r in runs[kind]],
                    },
                    n=n,
                    note=_join(
                        note,
                        "CPU us/task: "
                        + ", ".join(f"{name} {us:.1f}" for name, us in per_process.items()),
                    ),
                )
            )

        floor_row(
            "Fa",
            "floor: 3 processes, 4 small frames/task, all in flight",
            "floor",
            "uvloop Protocols, cloudpickle, one write per frame per hop",
        )
        floor_row(
            "Fb",
            f"floor: relay of small frames, {p.floor_relay_window} in flight",
            "relay",
            "benchmarks.relay --size 8: asyncio streams on uvloop",
        )
        self.rows.append(
            make_row(
                "Fc",
                f"sdk: gather n={n:,} (paired with Fa, Fb)",
                _gather_samples(ours),
                n=n,
                note=_cpu_note(ours),
            )
        )
        for key, kind in (("Fd", "floor"), ("Fe", "relay")):
            ratios = [
                total(o) / f["cpu_us_per_task_total"] for o, f in zip(ours, runs[kind], strict=True)
            ]
            self.rows.append(
                Row(
                    key,
                    f"CPU per task: Fc / {'Fa' if kind == 'floor' else 'Fb'}, per repetition",
                    note=(
                        f"median {statistics.median(ratios):.2f}x, range {min(ratios):.2f}x-"
                        f"{max(ratios):.2f}x over {len(ratios)} repetitions (target: 1.3x)"
                    ),
                    spread=_spread(ratios),
                    samples={"ratio": ratios},
                )
            )
        shares = [r["cpu_controller_s"] / (total(r) * r["n"] / 1e6) for r in ours]
        self.rows.append(
            Row(
                "Ff",
                "controller's share of Fc's CPU",
                note=(
                    f"median {statistics.median(shares):.0%}, range {min(shares):.0%}-"
                    f"{max(shares):.0%} (target: at most 25%); the driver's process holds "
                    f"the embedded controller"
                ),
                spread=_spread(shares),
                samples={"share": shares},
            )
        )

    # ------------------------------------------------------------ 2. the SDK

    def sdk(self) -> None:
        p = self.plan
        smallest = min(p.sdk_ns)
        runs: dict[int, list[dict[str, Any]]] = {n: [] for n in p.sdk_ns}
        errors: dict[int, str] = {}
        for _ in range(p.reps):  # repetition-major, so a slow moment hits every n alike
            for n in p.sdk_ns:
                seq = ("--seq", p.sdk_seq) if n == smallest else ()
                try:
                    runs[n].append(self.child("benchmarks.sdk_probe", "gather", "--n", n, *seq))
                except ChildFailed as exc:
                    errors[n] = str(exc)
        for i, n in enumerate(p.sdk_ns):
            label = f"sdk: reuse_concurrency, gather n={n:,}"
            if not runs[n]:
                self.failed(f"2{'abc'[i]}", label, ChildFailed(errors[n]))
                continue
            self.rows.append(
                make_row(
                    f"2{'abc'[i]}",
                    label,
                    _gather_samples(runs[n]),
                    n=n,
                    note=_join(
                        "warm pool; s: run() to outputs()",
                        _cpu_note(runs[n]),
                        _partial(runs[n], p.reps),
                    ),
                )
            )
        seqs = [r["sequential"] for r in runs[smallest] if "sequential" in r]
        if seqs:
            self.rows.append(
                make_row(
                    "2d",
                    "sdk: sequential children, one at a time",
                    {"p50_ms": [s["p50_ms"] for s in seqs], "p99_ms": [s["p99_ms"] for s in seqs]},
                    n=p.sdk_seq,
                    note="call to result inside the parent, nothing queued",
                )
            )
        colds = [r for n in p.sdk_ns for r in runs[n]]
        if colds:
            self.rows.append(
                make_row(
                    "2e",
                    "sdk: cold start, run() to first task (fresh pool)",
                    {"seconds": [r["cold_start_s"] for r in colds]},
                    note=(
                        f"{len(colds)} fresh processes; first run(main, n=200) end-to-end "
                        f"{statistics.median(r['cold_run_wall_s'] for r in colds):.2f} s"
                    ),
                )
            )
        pools: list[float] = []
        for _ in range(p.reps):
            try:
                got = self.child("benchmarks.sdk_probe", "pools", "--pools", p.sdk_pools)
                pools.extend(got["fresh_pool_s"])
            except ChildFailed:
                pass
        if pools:
            self.rows.append(
                make_row(
                    "2f",
                    "sdk: cold start, fresh pool on a running controller",
                    {"seconds": pools},
                    note=(
                        f"run() to first task; {p.sdk_pools} one-replica pools one after "
                        f"another in each of {p.reps} processes"
                    ),
                )
            )

    # ------------------------------------------------------------ 3. one worker

    def worker(self) -> None:
        p = self.plan
        try:
            r = self.child(
                "benchmarks.worker_direct",
                "--n-seq",
                p.worker_n_seq,
                "--n-par",
                p.worker_n_par,
                "--reps",
                p.reps,
            )
        except ChildFailed as exc:
            self.failed("3", "worker: WorkerClient.run", exc)
            return
        self.rows.append(
            make_row(
                "3a",
                "worker: WorkerClient.run, sequential",
                {"p50_ms": r["seq_p50_ms"], "p99_ms": r["seq_p99_ms"]},
                n=p.worker_n_seq,
                note="one worker subprocess, --concurrency 100",
            )
        )
        self.rows.append(
            make_row(
                "3b",
                "worker: WorkerClient.run, 100 in flight",
                {"rate": r["tasks_per_s"]},
                n=p.worker_n_par,
                note="the batched Dispatch stream",
            )
        )

    # ------------------------------------------------------------ 4. Ray

    def ray(self) -> None:
        p = self.plan
        runs = []
        for _ in range(p.reps):
            try:
                r = self.child(
                    "benchmarks.ray_actors",
                    "--n",
                    *p.ray_ns,
                    "--n-seq",
                    p.ray_n_seq,
                    timeout_s=400,
                )
            except ChildFailed as exc:
                self.failed("4", "ray", exc)
                return
            if not r.get("installed"):
                self.rows.append(
                    Row("4", "ray: not installed (pip install -e '.[bench]')", error="")
                )
                return
            runs.append(r)
        version = runs[0]["version"]
        for i, n in enumerate(p.ray_ns):
            self.rows.append(_ray_row(f"4{'abc'[i]}", f"ray {version}:", runs, n))
        self.rows.append(
            make_row(
                "4d",
                "ray: sequential calls",
                {
                    "p50_ms": [r["seq_p50_ms"] for r in runs],
                    "p99_ms": [r["seq_p99_ms"] for r in runs],
                },
                n=p.ray_n_seq,
            )
        )
        self.rows.append(
            make_row(
                "4e",
                "ray: ray.init() (num_cpus=2, no dashboard)",
                {"seconds": [r["init_s"] for r in runs]},
                note=(
                    "init to first actor call "
                    f"{statistics.median(r['cold_start_s'] for r in runs):.2f} s"
                ),
            )
        )

    # ------------------------------------------------------------ 5. cold

    def cold(self) -> None:
        p = self.plan
        tasks = p.cold_tasks

        def python_c(init_s: float) -> dict[str, Any]:
            return self.child("benchmarks.cold_process", "--tasks", tasks, "--init-s", init_s)

        def runtime(reusable: str) -> Callable[[float], dict[str, Any]]:
            def measure(init_s: float) -> dict[str, Any]:
                return self.child(
                    "benchmarks.sdk_probe", "cold", "--tasks", tasks, "--reusable", reusable,
                    init_s=init_s,
                )  # fmt: skip

            return measure

        kinds = [
            ("cold: python -c per task", python_c, f"{NON_REUSABLE_MAX_REPLICAS} at once"),
            (
                "cold: reusable='off', a worker per task",
                runtime("off"),
                f"NON_REUSABLE_MAX_REPLICAS={NON_REUSABLE_MAX_REPLICAS}",
            ),
            ("warm: reusable pool, from fresh", runtime("on"), "replicas=2, incl. its cold start"),
        ]
        variants = [
            (f"5{key}", label + (f", {init_s:g} s import" if init_s else ""), init_s, call, note)
            for init_s, keys in ((0.0, "abc"), (p.cold_init_s, "def"))
            for key, (label, call, note) in zip(keys, kinds, strict=True)
        ]
        results: dict[str, list[dict[str, Any]]] = {v[0]: [] for v in variants}
        errors: dict[str, str] = {}
        for _ in range(p.reps):
            for key, _label, init_s, call, _note in variants:
                try:
                    results[key].append(call(init_s))
                except ChildFailed as exc:
                    errors[key] = str(exc)
        for key, label, _init_s, _call, note in variants:
            got = results[key]
            if not got:
                self.failed(key, label, ChildFailed(errors.get(key, "no result")))
                continue
            self.rows.append(
                make_row(
                    key,
                    label,
                    {
                        "rate": [r["tasks_per_s"] for r in got],
                        "seconds": [r["wall_s"] for r in got],
                    },
                    n=tasks,
                    note=_join(
                        note, _peak_workers(got), f"s: all {tasks} tasks", _partial(got, p.reps)
                    ),
                )
            )

    # ------------------------------------------------------------ E. containers

    def container(self) -> None:
        """Cold start and warm gather, local replicas against containers, rep by rep.

        ``benchmarks.container``'s measurement: each repetition runs the SDK gather in a
        fresh process with local replicas and with containers (the first alternating).
        Skipped, in one line, where no engine or no base image is available.
        """
        p = self.plan
        label = "containers: local against container replicas"
        pairs: list[dict[str, dict[str, Any]]] = []
        error = ""
        try:
            with container.container_engine(self.state_dir) as ready:
                self.log(f"  {ready.name} at {ready.host}: {ready.image}")
                for rep in range(p.reps):
                    got: dict[str, dict[str, Any]] = {}
                    for backend in container.order(rep):
                        try:
                            got[backend] = self.child(
                                container.PROBE, *container.gather_args(p.container_n),
                                environ=ready.environment(backend), timeout_s=600,
                            )  # fmt: skip
                        except ChildFailed as exc:
                            error = f"{backend}: {exc}"
                    if len(got) == len(container.BACKENDS):
                        pairs.append(got)
        except container.ContainersUnavailable as exc:
            self.log(f"  {label}: skipped: {exc}")
            self.rows.append(Row("E", label, note=f"skipped: {exc}"))
            return
        except ChildFailed as exc:  # the workload's image build
            self.failed("E", label, exc)
            return
        if not pairs:
            self.failed("E", label, ChildFailed(f"no complete repetition; last: {error}"))
            return
        for key, backend in (("Ea", "local"), ("Eb", "container")):
            runs = [pair[backend] for pair in pairs]
            cpu = {k: statistics.median(v) for k, v in _cpu_samples(runs).items()}
            self.rows.append(
                make_row(
                    key,
                    f"containers: {backend} replicas, cold start + gather",
                    # s: the cold start, run() to the first task on a fresh pool (as 2e).
                    {**_gather_samples(runs), "seconds": [r["cold_start_s"] for r in runs]},
                    n=p.container_n,
                    note=_join(
                        "s: run() to first task, fresh pool, fresh process; tasks/s: warm",
                        f"CPU us/task: driver+controller {cpu['cpu_us_per_task_controller']:.0f}"
                        f", replicas {cpu['cpu_us_per_task_replicas']:.0f}",
                        _partial(runs, p.reps),
                    ),
                )
            )

        def ratios(pick: Callable[[dict[str, Any]], float]) -> list[float]:
            return [pick(pair["container"]) / pick(pair["local"]) for pair in pairs]

        cold = ratios(lambda r: r["cold_start_s"])
        rate = ratios(lambda r: r["tasks_per_s"])
        cpu_ratio = ratios(lambda r: (r["cpu_controller_s"] + sum(r["cpu_replicas_s"])) / r["n"])
        self.rows.append(
            Row(
                "Ec",
                "containers: Eb / Ea, per repetition",
                note=(
                    f"cold start median {statistics.median(cold):.1f}x, range "
                    f"{min(cold):.1f}x-{max(cold):.1f}x over {len(cold)} repetitions; warm "
                    f"tasks/s {statistics.median(rate):.2f}x, CPU per task "
                    f"{statistics.median(cpu_ratio):.2f}x"
                ),
                spread=_spread(cold),
                samples={"ratio": cold, "rate_ratio": rate, "cpu_ratio": cpu_ratio},
            )
        )

    # ------------------------------------------------------------ 6. scale

    def scale(self) -> None:
        p = self.plan
        cases = [(n, 0) for n in p.scale_ns]
        if max(p.scale_ns) > SCALE_WINDOW:
            cases.append((max(p.scale_ns), SCALE_WINDOW))
        runs: dict[tuple[int, int], list[dict[str, Any]]] = {c: [] for c in cases}
        errors: dict[tuple[int, int], str] = {}
        for _ in range(p.reps):
            for n, window in cases:
                try:
                    runs[n, window].append(
                        self.child("benchmarks.sdk_probe", "gather", "--n", n, "--window", window)
                    )
                except ChildFailed as exc:
                    errors[n, window] = str(exc)
        for i, (n, window) in enumerate(cases):
            how = f"{window:,} in flight" if window else "all at once"
            label = f"scale: n={n:,}, {how}"
            key = f"6{'abcdef'[i]}"
            got = runs[n, window]
            if not got:
                self.failed(key, label, ChildFailed(errors[n, window]))
                continue
            mb = 1e6
            peak = statistics.median(r["rss_peak"] for r in got) / mb
            growth = statistics.median((r["rss_peak"] - r["rss_before"]) for r in got) / mb
            replica = statistics.median(r["replica_rss_peak"] for r in got) / mb
            self.rows.append(
                make_row(
                    key,
                    label,
                    {
                        **_gather_samples(got),
                        "controller_rss_peak_mb": [r["rss_peak"] / mb for r in got],
                        "controller_rss_growth_mb": [
                            (r["rss_peak"] - r["rss_before"]) / mb for r in got
                        ],
                        "replica_rss_peak_mb": [r["replica_rss_peak"] / mb for r in got],
                    },
                    n=n,
                    note=_join(
                        f"controller RSS peak {peak:.0f} MB (+{growth:.0f}); "
                        f"replica peak {replica:.0f} MB",
                        _cpu_note(got),
                        _partial(got, p.reps),
                    ),
                )
            )

    # ------------------------------------------------------------ 7. metrics

    def metrics(self) -> None:
        """Metrics off against on, alternating (off first, then on first), so drift hits both."""
        p = self.plan
        n = p.metrics_n
        runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        errors: dict[bool, str] = {}
        for rep in range(p.reps):
            for on in (False, True) if rep % 2 == 0 else (True, False):
                args = ("gather", "--n", n, *(("--metrics",) if on else ()))
                try:
                    runs[on].append(self.child("benchmarks.sdk_probe", *args))
                except ChildFailed as exc:
                    errors[on] = str(exc)
        for on, key in ((False, "7a"), (True, "7b")):
            label = f"metrics {'on' if on else 'off'}: gather n={n:,}"
            got = runs[on]
            if not got:
                self.failed(key, label, ChildFailed(errors.get(on, "no result")))
                continue
            note = [_cpu_note(got), _partial(got, p.reps)]
            if on and runs[False]:
                off_rate = statistics.median(r["tasks_per_s"] for r in runs[False])
                on_rate = statistics.median(r["tasks_per_s"] for r in got)
                note.insert(0, f"{on_rate / off_rate:.1%} of the off throughput")
                counted = {r.get("metrics_succeeded") for r in got}
                note.append(f"/metrics counted {sorted(counted)} successes per run")
            self.rows.append(
                make_row(
                    key,
                    label,
                    _gather_samples(got),
                    n=n,
                    note=_join(*note),
                )
            )

    # ------------------------------------------------------------ R. the runs store

    def store(self) -> None:
        """The runs store off against on (every action recorded), alternating (off first,
        then on first), so drift hits both; the row to read is Rc, CPU per task on / off."""
        p = self.plan
        n = p.store_n
        runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        errors: dict[bool, str] = {}
        for rep in range(p.reps):
            for on in (False, True) if rep % 2 == 0 else (True, False):
                args = ("gather", "--n", n, *(() if on else ("--no-store",)))
                try:
                    runs[on].append(self.child("benchmarks.sdk_probe", *args))
                except ChildFailed as exc:
                    errors[on] = str(exc)
        for on, key in ((False, "Ra"), (True, "Rb")):
            label = f"runs store {'on' if on else 'off'}: gather n={n:,}"
            got = runs[on]
            if not got:
                self.failed(key, label, ChildFailed(errors.get(on, "no result")))
                continue
            note = [_cpu_note(got), _partial(got, p.reps)]
            if on:
                recorded = sorted({r.get("recorded_actions") for r in got}, key=str)
                dropped = sum(r.get("store_dropped", 0) for r in got)
                note.append(f"recorded {recorded} actions per run, {dropped} dropped")
                writer = [
                    r["store_writer_us_per_task"] for r in got if "store_writer_us_per_task" in r
                ]
                if writer:
                    note.append(
                        f"the store's writer thread {statistics.median(writer):.1f} us/task"
                    )
            self.rows.append(make_row(key, label, _gather_samples(got), n=n, note=_join(*note)))
        if runs[False] and runs[True]:
            off = _cpu_samples(runs[False])["cpu_us_per_task_total"]
            on_ = _cpu_samples(runs[True])["cpu_us_per_task_total"]
            ratio = statistics.median(on_) / statistics.median(off)
            controller = [
                statistics.median(_cpu_samples(runs[on])["cpu_us_per_task_controller"])
                for on in (False, True)
            ]
            self.rows.append(
                Row(
                    "Rc",
                    "runs store: CPU per task, on / off",
                    note=(
                        f"{ratio:.3f}x ({statistics.median(on_):.1f} / "
                        f"{statistics.median(off):.1f} us, every process); the controller's "
                        f"process {controller[1]:.1f} / {controller[0]:.1f} us "
                        f"(+{controller[1] - controller[0]:.1f} us per recorded action)"
                        f"{_writer_share(runs[True])}"
                    ),
                    samples={"on_us": on_, "off_us": off, "ratio": [ratio]},
                    cpu_us=statistics.median(on_),
                )
            )

    # ------------------------------------------------------------ 8. against Ray, paired

    def vsray(self) -> None:
        """The SDK workload and Ray at one n, interleaved rep by rep (order alternating)."""
        p = self.plan
        n = p.vsray_n
        ours: list[dict[str, Any]] = []
        theirs: list[dict[str, Any]] = []
        ratios: list[float] = []
        version = ""
        for rep in range(p.reps):
            pair: dict[str, dict[str, Any]] = {}
            for kind in ("ours", "ray") if rep % 2 == 0 else ("ray", "ours"):
                try:
                    if kind == "ours":
                        pair[kind] = self.child("benchmarks.sdk_probe", "gather", "--n", n)
                    else:
                        r = self.child(
                            "benchmarks.ray_actors", "--n", n, "--n-seq", 0, timeout_s=400
                        )
                        if not r.get("installed"):
                            self.rows.append(Row("8", "vs ray: ray not installed", error=""))
                            return
                        version = r["version"]
                        pair[kind] = r
                except ChildFailed as exc:
                    self.log(f"  vsray rep {rep}: {kind} failed: {exc}")
            if len(pair) == 2:
                ours.append(pair["ours"])
                theirs.append(pair["ray"])
                ratios.append(pair["ours"]["tasks_per_s"] / pair["ray"]["calls_per_s"][str(n)])
        if not ratios:
            self.failed("8", "vs ray", ChildFailed("no complete pair"))
            return
        self.rows.append(
            make_row(
                "8a",
                f"vs ray: sdk gather n={n:,} (paired with 8b)",
                _gather_samples(ours),
                n=n,
                note=_join(_cpu_note(ours), _partial(ours, p.reps)),
            )
        )
        self.rows.append(_ray_row("8b", f"vs ray: ray {version},", theirs, n))
        self.rows.append(
            Row(
                "8c",
                "vs ray: 8a / 8b, per pair",
                note=(
                    f"median {statistics.median(ratios):.1f}x, range {min(ratios):.1f}x-"
                    f"{max(ratios):.1f}x over {len(ratios)} pairs "
                    f"({', '.join(f'{x:.1f}' for x in ratios)})"
                ),
                spread=_spread(ratios),
                samples={"ratio": ratios},
            )
        )

    # ------------------------------------------------------------ 9. makespan

    def makespan(self) -> None:
        p = self.plan
        n = p.makespan_n
        runs: dict[float, list[dict[str, Any]]] = {ms: [] for ms in p.makespan_ms}
        errors: dict[float, str] = {}
        for _ in range(p.reps):
            for ms in p.makespan_ms:
                try:
                    runs[ms].append(
                        self.child("benchmarks.sdk_probe", "makespan", "--n", n, "--ms", ms)
                    )
                except ChildFailed as exc:
                    errors[ms] = str(exc)
        for i, ms in enumerate(p.makespan_ms):
            key, label = f"9{'abc'[i]}", f"makespan: {ms:g} ms tasks, capacity 200"
            got = runs[ms]
            if not got:
                self.failed(key, label, ChildFailed(errors.get(ms, "no result")))
                continue
            ratios = [r["ratio"] for r in got]
            ideal = got[0]["ideal_s"]
            self.rows.append(
                make_row(
                    key,
                    label,
                    {
                        "rate": [n / r["elapsed_s"] for r in got],
                        "seconds": [r["elapsed_s"] for r in got],
                        "ratio_to_ideal": ratios,
                    },
                    n=n,
                    note=_join(
                        f"ideal {ideal:.2f} s; makespan {statistics.median(ratios):.2f}x ideal "
                        f"(efficiency {1 / statistics.median(ratios):.0%})",
                        _partial(got, p.reps),
                    ),
                )
            )

    # ------------------------------------------------------------ B. bytes

    def bytes(self) -> None:
        """1 MiB in and out per task: RSS of every process, and a relay paired rep by rep."""
        p = self.plan
        n, size = p.bytes_n, p.bytes_size
        ours: list[dict[str, Any]] = []
        relays: list[dict[str, Any]] = []
        ratios: list[float] = []
        for rep in range(p.reps):
            pair: dict[str, dict[str, Any]] = {}
            for kind in ("ours", "relay") if rep % 2 == 0 else ("relay", "ours"):
                module, mode = (
                    ("benchmarks.sdk_probe", ("bytes",))
                    if kind == "ours"
                    else ("benchmarks.relay", ())
                )
                try:
                    pair[kind] = self.child(module, *mode, "--n", n, "--size", size)
                except ChildFailed as exc:
                    self.log(f"  bytes rep {rep}: {kind} failed: {exc}")
            if len(pair) == 2:
                ours.append(pair["ours"])
                relays.append(pair["relay"])
                ratios.append(pair["ours"]["tasks_per_s"] / pair["relay"]["tasks_per_s"])
        if not ratios:
            self.failed("B", "bytes", ChildFailed("no complete pair"))
            return
        mb = 1e6
        controller = max(r["rss_controller_peak"] for r in ours) / mb
        replicas = max(max(r["rss_replicas_peak"], default=0) for r in ours) / mb
        mib = size / 2**20
        self.rows.append(
            make_row(
                "Ba",
                f"bytes: sdk, {mib:g} MiB in + out per task",
                {
                    "rate": [r["tasks_per_s"] for r in ours],
                    "seconds": [r["elapsed_s"] for r in ours],
                    "rss_controller_peak_mb": [r["rss_controller_peak"] / mb for r in ours],
                    "rss_replica_peak_mb": [
                        max(r["rss_replicas_peak"], default=0) / mb for r in ours
                    ],
                    **_cpu_samples(ours),
                },
                n=n,
                note=(
                    f"peak RSS: driver+controller {controller:.0f} MB, busiest replica "
                    f"{replicas:.0f} MB (max over reps)"
                ),
            )
        )
        relay_peak = max(max(r["rss_peaks"]) for r in relays) / mb
        self.rows.append(
            make_row(
                "Bb",
                f"bytes: loopback TCP+pickle relay, {mib:g} MiB each way",
                {"rate": [r["tasks_per_s"] for r in relays]},
                n=n,
                note=f"3 processes, 100 in flight; peak RSS {relay_peak:.0f} MB",
            )
        )
        self.rows.append(
            Row(
                "Bc",
                "bytes: Ba / Bb, per pair",
                note=(
                    f"median {statistics.median(ratios):.0%}, range {min(ratios):.0%}-"
                    f"{max(ratios):.0%} over {len(ratios)} pairs"
                ),
                spread=_spread(ratios),
                samples={"ratio": ratios},
            )
        )

    # ------------------------------------------------------------ C. many clients

    def clients(self) -> None:
        """``clients`` processes against one standalone controller, and one client alone."""
        p = self.plan
        try:
            r = self.child(
                "benchmarks.clients", "--clients", p.clients, "--n", p.clients_n,
                "--reps", p.reps, timeout_s=900,
            )  # fmt: skip
        except ChildFailed as exc:
            self.failed("C", "clients", exc)
            return
        total = p.clients * p.clients_n

        def cpu_note(runs: list[dict[str, Any]]) -> str:
            parts = ("controller", "replicas", "clients")
            return "CPU us/task: " + ", ".join(
                f"{part} {statistics.median(x[f'cpu_us_per_task_{part}'] for x in runs):.0f}"
                for part in parts
            )

        self.rows.append(
            make_row(
                "Ca",
                f"clients: 1 client gathers {total:,} noops",
                {"rate": [x["tasks_per_s"] for x in r["one"]]},
                n=total,
                note=_join("standalone controller, the seed pool", cpu_note(r["one"])),
            )
        )
        worst = [x["worst_over_mean"] for x in r["many"]]
        self.rows.append(
            make_row(
                "Cb",
                f"clients: {p.clients} clients gather {p.clients_n:,} each, at once",
                {"rate": [x["tasks_per_s"] for x in r["many"]], "worst_over_mean": worst},
                n=total,
                note=_join(
                    f"slowest client's time / the mean: median {statistics.median(worst):.2f}, "
                    f"most {max(worst):.2f} (target: at most 1.5)",
                    cpu_note(r["many"]),
                ),
            )
        )
        ratios = r["many_over_one"]
        self.rows.append(
            Row(
                "Cc",
                "clients: Cb / Ca, per repetition",
                note=(
                    f"median {statistics.median(ratios):.0%}, range {min(ratios):.0%}-"
                    f"{max(ratios):.0%} over {len(ratios)} pairs (target: at least 80%)"
                ),
                spread=_spread(ratios),
                samples={"ratio": ratios},
            )
        )

    # ------------------------------------------------------------ W. many replicas (workers)

    def replicas(self) -> None:
        """``replicas_workers`` workers attached to one controller: idle cost, routing, RSS."""
        p = self.plan
        runs = []
        for _ in range(p.reps):
            try:
                runs.append(
                    self.child(
                        "benchmarks.replicas",
                        "--workers",
                        p.replicas_workers,
                        "--idle-s",
                        p.replicas_idle_s,
                        timeout_s=900,
                    )
                )
            except ChildFailed as exc:
                self.log(f"  replicas: {exc}")
        if not runs:
            self.failed("W", "replicas", ChildFailed("no repetition finished"))
            return
        mb = 1e6
        for key, part, count in (
            ("Wa", "few", runs[0]["small"]),
            ("Wb", "many", p.replicas_workers),
        ):
            got = [r[part] for r in runs]
            self.rows.append(
                make_row(
                    key,
                    f"replicas: {count:,} attached workers, noop tasks",
                    {
                        "rate": [x["tasks_per_s"] for x in got],
                        "p50_ms": [x["seq_p50_ms"] for x in got],
                        "p99_ms": [x["seq_p99_ms"] for x in got],
                        "route_p99_le_ms": [x["route_p99_le_ms"] for x in got],
                        "route_within_1ms": [x["route_within_1ms"] for x in got],
                        "cpu_us_per_task_controller": [
                            x["controller_cpu_us_per_task"] for x in got
                        ],
                    },
                    note=(
                        "p50/p99: one task at a time, call to result; routing (the "
                        "controller's admission to dispatch, from its "
                        "task_queue_seconds histogram) p99 within "
                        f"{statistics.median(x['route_p99_le_ms'] for x in got):g} ms, "
                        f"{100 * statistics.median(x['route_within_1ms'] for x in got):.1f}% "
                        "within 1 ms; controller CPU "
                        f"{statistics.median(x['controller_cpu_us_per_task'] for x in got):.0f} "
                        "us/task with up to 200 in flight"
                        + (
                            f"; controller RSS peak {max(r['rss_peak'] for r in runs) / mb:.0f} "
                            "MB (target: at most 300)"
                            if part == "many"
                            else ""
                        )
                    ),
                )
            )
        idle = [r["idle_cpu_pct"] for r in runs]
        reports = [r["reports_cpu_pct"] for r in runs]
        self.rows.append(
            Row(
                "Wc",
                f"replicas: {p.replicas_workers:,} idle workers, controller CPU",
                note=(
                    f"their reports: median {statistics.median(reports):.1f}% of a core, "
                    f"range {min(reports):.1f}-{max(reports):.1f}% (target: at most 5%); "
                    f"the controller in all {statistics.median(idle):.1f}%, with none "
                    f"attached {statistics.median(r['idle_cpu_pct_no_workers'] for r in runs):.1f}%"
                ),
                spread=_spread(reports),
                samples={"idle_cpu_pct": idle, "reports_cpu_pct": reports},
            )
        )

    # ------------------------------------------------------------ N. network

    def network(self) -> None:
        """Noop and 100 ms tasks across network namespaces, at each round trip."""
        p = self.plan
        rtts, label = p.network_rtts_ms, "network: hosts in namespaces"
        runs: list[dict[str, Any]] = []
        error = ""
        for _ in range(p.reps):
            try:
                result = self.child(
                    "benchmarks.network", "--rtts", *rtts, "--noops", p.network_noops,
                    "--timed", p.network_timed, timeout_s=900,
                )  # fmt: skip
            except ChildFailed as exc:
                error = str(exc)
                continue
            if "skipped" in result:
                self.log(f"  {label}: skipped: {result['skipped']}")
                self.rows.append(Row("N", label, note=f"skipped: {result['skipped']}"))
                return
            runs.append(result)
        if not runs:
            self.failed("N", label, ChildFailed(error or "no result"))
            return
        base = f"{rtts[0]:g}"
        keys = iter("abcdefghij")
        for kind, what, n in (
            ("noop", "noop", p.network_noops),
            ("timed", "100 ms tasks", p.network_timed),
        ):
            for rtt in rtts:
                at = [r["rtt_ms"][f"{rtt:g}"] for r in runs]
                ratios = [a[kind] / r["rtt_ms"][base][kind] for a, r in zip(at, runs, strict=True)]
                client = [a[f"{kind}_e2e"] for a in at]
                self.rows.append(
                    make_row(
                        f"N{next(keys)}",
                        f"network: {what}, {rtt:g} ms RTT",
                        {"rate": [a[kind] for a in at], "ratio": ratios, "client": client},
                        n=n,
                        note=_join(
                            f"{statistics.median(ratios):.2f}x of {base} ms in the same rep",
                            f"client {statistics.median(client):,.0f}/s",
                            "rate: steady, middle 80% of starts",
                            _partial(runs, p.reps),
                        ),
                    )
                )


def _partial(runs: list[Any], reps: int) -> str:
    return "" if len(runs) == reps else f"ONLY {len(runs)} OF {reps} REPETITIONS"


def _gather_samples(runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """A gather row's samples: rate, latency, wall time, and CPU per task."""
    return {
        "rate": [r["tasks_per_s"] for r in runs],
        "p50_ms": [r["p50_ms"] for r in runs],
        "p99_ms": [r["p99_ms"] for r in runs],
        "seconds": [r["wall_s"] for r in runs],
        **_cpu_samples(runs),
    }


def _cpu_samples(runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """CPU microseconds per task, per process and in total (user plus system, /proc).

    The driver holds the embedded controller; replicas are busiest first (the first is
    normally the one running the parent).
    """

    def per_task(seconds: float, run: dict[str, Any]) -> float:
        return seconds / run["n"] * 1e6

    def replica(i: int, run: dict[str, Any]) -> float:
        used = run["cpu_replicas_s"]
        return per_task(used[i], run) if i < len(used) else 0.0

    return {
        "cpu_us_per_task_controller": [per_task(r["cpu_controller_s"], r) for r in runs],
        "cpu_us_per_task_replicas": [per_task(sum(r["cpu_replicas_s"]), r) for r in runs],
        "cpu_us_per_task_replica_1": [replica(0, r) for r in runs],
        "cpu_us_per_task_replica_2": [replica(1, r) for r in runs],
        "cpu_us_per_task_total": [
            per_task(r["cpu_controller_s"] + sum(r["cpu_replicas_s"]), r) for r in runs
        ],
    }


def _ray_row(key: str, label: str, runs: list[dict[str, Any]], n: int) -> Row:
    """Two Ray async actors' throughput at ``n`` calls, over ``runs``."""
    return make_row(
        key,
        f"{label} 2 async actors, n={n:,}",
        {"rate": [r["calls_per_s"][str(n)] for r in runs]},
        n=n,
        note="max_concurrency=100, round-robin, one ray.get",
    )


def _writer_share(got: list[dict[str, Any]]) -> str:
    """Of the controller's extra CPU with the store on, the writer thread's part."""
    writer = [r["store_writer_us_per_task"] for r in got if "store_writer_us_per_task" in r]
    if not writer:
        return ""
    return f", of which the store's writer thread {statistics.median(writer):.1f} us"


def _cpu_note(runs: list[dict[str, Any]]) -> str:
    cpu = {k: statistics.median(v) for k, v in _cpu_samples(runs).items()}
    return _join(
        f"CPU us/task: total {cpu['cpu_us_per_task_total']:.0f} = driver+controller "
        f"{cpu['cpu_us_per_task_controller']:.0f}, replicas "
        f"{cpu['cpu_us_per_task_replica_1']:.0f} + {cpu['cpu_us_per_task_replica_2']:.0f}",
        _busiest_note(runs),
    )


def _busiest_note(runs: list[dict[str, Any]]) -> str:
    """How busy each process's busiest thread was: one near 100% bounds the rate."""
    if not all(r.get("busiest_thread_replicas") for r in runs):
        return ""  # not measured (no schedstat in /proc, or an older result)

    def share(pick: Callable[[dict[str, Any]], list[float]]) -> str:
        ran = statistics.median(pick(r)[0] for r in runs)
        waited = statistics.median(pick(r)[1] for r in runs)
        return f"{ran:.0%} (+{waited:.0%} waiting for a CPU)"

    return (
        "busiest thread on a CPU: driver+controller "
        f"{share(lambda r: r['busiest_thread_controller'])}, replica 1 "
        f"{share(lambda r: r['busiest_thread_replicas'][0])}"
    )


def _peak_workers(runs: list[dict[str, Any]]) -> str:
    peaks = [r["peak_workers"] for r in runs if "peak_workers" in r]
    return f"up to {max(peaks)} workers alive" if peaks else ""


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


# ---------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    def git(*args: str) -> str:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout.strip()
        return ""

    dirty = git("status", "--porcelain", "--", "src")
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "commit": git("rev-parse", "--short", "HEAD"),
        "src_modified_files": len(dirty.splitlines()),
        "versions": {
            name: version(name)
            for name in ("reuse-runtime", "grpcio", "protobuf", "uvloop", "cloudpickle", "ray")
        },
    }


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _vs_limit(row: Row, limit: Row | None) -> str:
    """How many times below the limit: by throughput, or by sequential latency."""
    if limit is None or row.error:
        return ""
    if row.rate and limit.rate:
        return f"{limit.rate / row.rate:,.1f}x"
    if row.p50_ms and limit.p50_ms and not row.rate:
        return f"{row.p50_ms / limit.p50_ms:,.1f}x"
    return ""


def render(rows: list[Row], info: dict[str, Any], plan: Plan, took_s: float) -> str:
    limit = next((r for r in rows if r.key == "1" and not r.error), None)
    versions = info["versions"]
    modified = info["src_modified_files"]
    lines = [
        f"machine: {info['platform']}, {info['cpu_count']} CPUs, {info['memory_gb']} GB, "
        f"{info['python']}",
        f"reuse-runtime {versions['reuse-runtime']} at {info['commit']}"
        + (f" (+{modified} modified files in src/)" if modified else "")
        + f"; grpcio {versions['grpcio']}, uvloop {versions['uvloop']}, ray {versions['ray']}",
        f"load average: {info['load_start']} at start, {info['load_end']} at end; CPUs "
        f"{info['cpu_busy_before_pct']:.0f}% busy in the second before the run",
        f"took {took_s / 60:.1f} min; each row the median of {plan.reps} repetitions",
        "",
    ]
    header = (
        f"{'#':<3} {'measurement':<52} {'n':>7} {'tasks/s':>9} {'vs limit':>9} "
        f"{'p50 ms':>9} {'p99 ms':>9} {'s':>6} {'CPU us':>6} {'spread':>6} {'others':>6}  notes"
    )
    lines += [header, "-" * len(header)]
    section = ""
    for row in rows:
        if section and row.key[0] != section:
            lines.append("")
        section = row.key[0]
        if row.error:
            lines.append(f"{row.key:<3} {row.label:<52} FAILED: {row.error[:200]}")
            continue
        spread = "" if row.spread is None else f"{row.spread * 100:.0f}%"
        others = "" if row.others_pct is None else f"{row.others_pct:.0f}%"
        lines.append(
            f"{row.key:<3} {row.label:<52} {_fmt(row.n, ',d'):>7} {_fmt(row.rate, ',.0f'):>9} "
            f"{_vs_limit(row, limit):>9} {_fmt(row.p50_ms, ',.3f'):>9} "
            f"{_fmt(row.p99_ms, ',.3f'):>9} {_fmt(row.seconds, '.2f'):>6} "
            f"{_fmt(row.cpu_us, '.0f'):>6} {spread:>6} "
            f"{others:>6}  "
            f"{row.note}".rstrip()
        )
    lines += [
        "",
        "tasks/s: tasks (messages, calls) per second. vs limit: row 1's msgs/s over the row's",
        "tasks/s; for rows without tasks/s, the row's p50 over row 1's sequential p50.",
        "sdk and scale rows: tasks/s and p50/p99 are measured inside the parent task, from its",
        "first child call to the gather's end; p50/p99 per child (call to result), so with n",
        "children gathered at once they are mostly queueing. s: wall time (see the note).",
        "CPU us: CPU (user + system, from /proc) per task over the measured run, all the run's",
        "processes together (the note splits it per process).",
        "spread: (max - min) / median over the repetitions of the row's first number.",
        "others: the most CPU that processes outside this run used during one measurement of",
        "the row's section, in % of one core; above ~10% the row's numbers are suspect.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts, about 3 minutes")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per row (at least 3)")
    parser.add_argument(
        "--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="run these sections"
    )
    parser.add_argument("--out", type=Path, help="the JSON file (default: benchmarks/results/)")
    args = parser.parse_args(argv)
    if args.reps < 3:
        parser.error("--reps must be at least 3: every row is a median")
    plan = QUICK if args.quick else Plan()
    plan = Plan(**{**asdict(plan), "reps": args.reps})

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    info = machine()
    info["load_start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    # Other work on the machine skews every row; say how busy it was before we began.
    info["cpu_busy_before_pct"] = psutil.cpu_percent(interval=1.0)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reuse-bench-") as state_dir:
        bench = Bench(plan, state_dir, log)
        for name in SECTIONS:
            if name in args.only:
                log(f"[{name}]")
                bench.section(name)
    took_s = time.monotonic() - began
    info["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())

    print(render(bench.rows, info, plan, took_s))
    row_dicts = [asdict(r) for r in bench.rows]
    print(
        f"\nissue 30's targets, {dt.date.today()}, load average {info['load_start']} at start, "
        f"{info['load_end']} at end (the ratios, not the absolute figures, carry between "
        f"machines):\n{targets.render(targets.judge(row_dicts, bench.raw))}"
    )
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or RESULTS_DIR / f"{stamp}{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": info,
                "plan": asdict(plan),
                "took_s": took_s,
                "rows": row_dicts,
                "raw": bench.raw,
            },
            indent=2,
        )
    )
    print(f"\nraw results: {out}")
    return 1 if any(r.error for r in bench.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
