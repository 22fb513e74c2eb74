"""Containers against local subprocesses: cold start and warm throughput, in one run.

    python -m benchmarks.container [--reps 3] [--n 5000] [--network bridge|host]

Needs the Debian base image (``reuse-runtime image base``) in an engine: the one
that answers the usual way (``$DOCKER_HOST``, else Podman's or Docker's socket, as
after ``reuse-runtime engine start``), else Podman's service started on a socket of
this run's own and stopped at its end. It first builds the workload's image (not
timed), then, for each repetition, runs ``benchmarks.sdk_probe gather`` in a
fresh process with ``REUSE_RUNTIME_BACKEND=local`` and with ``=container``, the
first of the two alternating: the seed's ``reuse_concurrency`` workload
(``replicas=2, concurrency=100``, noop children gathered by one parent, see
``benchmarks.sdk_tasks``).

* **cold start**: ``run()`` to the first task executing, on a fresh pool (for
  containers: two containers created and started, their workers attached);
* **warm**: tasks/s of ``n`` children on the warm pool, and CPU time per task
  (the driver, which holds the embedded controller, plus the replicas: their
  processes locally, their containers' cgroups as the engine reports them).

Medians of the repetitions, and container/local ratios from the same run.
``python -m benchmarks.run --only container`` measures the same, as rows Ea-c.

Every container of a run carries a label of its own (``reuse-bench-run=<id>``), and
the run removes what is left with that label at its end. The workload's image is
kept: the next run with the same code finds it built.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.children import ChildFailed, child_environment, run_child
from benchmarks.harness import ROOT
from reuse_runtime import engine
from reuse_runtime.backends.container import LABELS_ENV, NETWORK_ENV
from reuse_runtime.errors import EngineUnavailableError
from reuse_runtime.images.builder import debian_base

BACKENDS = ("local", "container")
#: The label on every container a benchmark run creates; its value is the run's id.
RUN_LABEL = "reuse-bench-run"
#: The measurement each repetition runs, per backend: ``benchmarks.sdk_probe`` and its arguments.
PROBE = "benchmarks.sdk_probe"


class ContainersUnavailable(Exception):
    """No engine and no Podman to start one, or no base image: nothing to measure (expected)."""


@dataclass(frozen=True)
class ContainerEngine:
    """The engine a run measures containers on, ready: base image present, workload built."""

    host: str  # DOCKER_HOST form
    name: str  # "Podman 4.3.1"
    label: str  # "reuse-bench-run=<id>", on every container of this run
    image: str  # what the workload's image build said

    def environment(self, backend: str, network: str = "bridge") -> dict[str, str]:
        """A measurement process's settings for ``backend``, beyond the clean defaults."""
        if backend == "local":
            return {"REUSE_RUNTIME_BACKEND": "local"}
        return {
            "REUSE_RUNTIME_BACKEND": "container",
            NETWORK_ENV: network,
            LABELS_ENV: self.label,
            "DOCKER_HOST": self.host,
        }


def order(rep: int) -> tuple[str, ...]:
    """The backends in the order repetition ``rep`` measures them: both, the first
    alternating, so that a slow moment of the machine hits both alike."""
    return BACKENDS if rep % 2 == 0 else BACKENDS[::-1]


def gather_args(n: int) -> list[str]:
    """:data:`PROBE`'s arguments: a fresh pool's cold start, then ``n`` children warm."""
    return ["gather", "--n", str(n)]


@contextlib.contextmanager
def container_engine(state_dir: str) -> Iterator[ContainerEngine]:
    """An engine with the base image and the workload's image, for one run.

    Raises :class:`ContainersUnavailable` (saying what to do) when there is none;
    at the end, removes every container left with this run's label and stops the
    Podman service it started.
    """
    if importlib.util.find_spec("docker") is None:
        raise ContainersUnavailable("the Docker client library is missing: pip install docker")
    with contextlib.ExitStack() as stack:
        try:
            host = stack.enter_context(engine.engine_for_run(Path(state_dir) / "engine"))
        except EngineUnavailableError as exc:
            raise ContainersUnavailable(str(exc)) from None
        client, name = _ready_client(host)
        label = f"{RUN_LABEL}={uuid.uuid4().hex[:12]}"
        try:
            image = _build_workload_image(state_dir, host)
            yield ContainerEngine(host, name, label, image)
        finally:
            _remove_containers(client, label)
            client.close()


def _ready_client(host: str) -> tuple[Any, str]:
    """A client of ``host`` and the engine's name, once the base image is found there."""
    import docker.errors

    try:
        client = engine.connect(host)
    except EngineUnavailableError as exc:
        raise ContainersUnavailable(str(exc)) from None
    try:
        client.images.get(debian_base())
        return client, engine.engine_name(client)
    except docker.errors.ImageNotFound:
        client.close()
        raise ContainersUnavailable(
            f"the base image {debian_base()} is not in the engine: make it with "
            "`reuse-runtime image base`"
        ) from None
    except docker.errors.DockerException as exc:
        client.close()
        raise ContainersUnavailable(f"the engine at {host} failed: {exc}") from None


def _build_workload_image(state_dir: str, host: str) -> str:
    """Build the image of ``benchmarks/sdk_tasks.py``'s environment, before any timing."""
    try:
        build = subprocess.run(
            [sys.executable, "-m", "reuse_runtime", "image", "build", "benchmarks/sdk_tasks.py"],
            cwd=ROOT,
            env=child_environment(state_dir, {"DOCKER_HOST": host}),
            capture_output=True,
            text=True,
            timeout=900,
        )
    except subprocess.TimeoutExpired:
        raise ChildFailed("the workload's image build took more than 900 s") from None
    if build.returncode != 0:
        tail = " | ".join((build.stderr + build.stdout).strip().splitlines()[-3:])
        raise ChildFailed(f"the workload's image build failed: {tail}")
    return build.stdout.strip().splitlines()[-1]


def _remove_containers(client: Any, label: str) -> None:
    """Remove the containers left with ``label`` (a measurement killed on its timeout).

    An engine that fails here is reported in one line: the measurements are done.
    """
    import docker.errors

    try:
        for container in client.containers.list(all=True, filters={"label": label}):
            with contextlib.suppress(docker.errors.NotFound):  # removed meanwhile
                container.remove(force=True)
    except docker.errors.DockerException as exc:
        print(f"benchmarks.container: containers labelled {label} are left: {exc}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument(
        "--network", default="bridge", help="the containers' network: bridge (default) or host"
    )
    args = parser.parse_args()

    started = time.monotonic()
    runs: dict[str, list[dict[str, Any]]] = {b: [] for b in BACKENDS}
    with tempfile.TemporaryDirectory(prefix="bench-containers-") as state_dir:
        try:
            with container_engine(state_dir) as ready:
                print(f"{ready.name}: {ready.image}", file=sys.stderr)
                for rep in range(args.reps):
                    for backend in order(rep):
                        environ = child_environment(
                            state_dir, ready.environment(backend, args.network)
                        )
                        result = run_child(PROBE, gather_args(args.n), environ, 600.0)
                        runs[backend].append(result)
                        print(
                            f"rep {rep + 1} {backend}: cold {result['cold_start_s']:.2f} s, "
                            f"{result['tasks_per_s']:,.0f} tasks/s",
                            file=sys.stderr,
                        )
        except (ContainersUnavailable, ChildFailed) as exc:
            raise SystemExit(f"benchmarks.container: {exc}") from None
    took = time.monotonic() - started

    def median(backend: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in runs[backend])

    def cpu_per_task_ms(backend: str) -> float:
        return statistics.median(
            float((r["cpu_controller_s"] + sum(r["cpu_replicas_s"])) / r["n"] * 1000)
            for r in runs[backend]
        )

    rows = {
        b: {
            "cold_start_s": median(b, "cold_start_s"),
            "tasks_per_s": median(b, "tasks_per_s"),
            "cpu_ms_per_task": cpu_per_task_ms(b),
        }
        for b in BACKENDS
    }
    print(
        f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores), {args.reps} reps of "
        f"n={args.n}, {args.network} network, medians, {took:.0f} s with the image build"
    )
    print("| backend | cold start: run() to first task | warm tasks/s | CPU per task |")
    print("|---|---|---|---|")
    for b in BACKENDS:
        r = rows[b]
        print(
            f"| {b} | {r['cold_start_s']:.2f} s | {r['tasks_per_s']:,.0f} | "
            f"{r['cpu_ms_per_task'] * 1000:.0f} µs |"
        )
    local, cont = rows["local"], rows["container"]
    print(
        f"| container / local | {cont['cold_start_s'] / local['cold_start_s']:.1f}x | "
        f"{cont['tasks_per_s'] / local['tasks_per_s']:.2f}x | "
        f"{cont['cpu_ms_per_task'] / local['cpu_ms_per_task']:.2f}x |"
    )
    print(json.dumps({"runs": runs}), file=sys.stderr)


if __name__ == "__main__":
    main()
