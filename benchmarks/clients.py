"""Many clients on one controller: together as fast as one, and none starved.

    python -m benchmarks.clients [--clients 8] [--n 10000] [--reps 3]

A standalone ``reuse-runtime controller`` subprocess and the seed's pool
(``benchmarks.sdk_tasks``: ``replicas=2, concurrency=100``, noop tasks), warmed up
first. Then, interleaved rep by rep (the order alternating):

* **one**: one client process gathers ``clients * n`` noop tasks (a
  :class:`~reuse_runtime.client.ControllerClient` submits them all at once and
  awaits every result);
* **many**: ``--clients`` client processes, each gathering ``n``, started together
  (each connects and registers first, then all are told to go at once).

Reported: the tasks/s of each (many: every task over the time from the first
client's start to the last one's end), many over one per repetition, each client's
time over the mean of them (the most starved client's is the largest), and the CPU
per task of the controller and of the replicas.

Reports one JSON object (``harness.emit``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import psutil

from benchmarks import sdk_tasks
from benchmarks.harness import RESULT_MARK, ROOT, cpu_seconds, emit
from reuse_runtime.client import ControllerClient
from reuse_runtime.model import Submission
from reuse_runtime.security import TOKEN_ENV, Security

READY = re.compile(r"listening on (\S+)")
#: Seconds any one wait of the harness may take.
WAIT_S = 300.0


# ---------------------------------------------------------------- one client process


async def client(address: str, n: int, name: str) -> dict[str, Any]:
    """Connect and register, say ``ready``, wait for ``go`` on stdin, then gather ``n``."""
    security = Security(token=os.environ.get(TOKEN_ENV) or None)
    async with ControllerClient(address, security) as controller:
        await controller.wait_ready()
        key = await controller.register(sdk_tasks.noop.environment_spec())
        print("ready", flush=True)
        line = await asyncio.to_thread(sys.stdin.readline)
        if line.strip() != "go":
            raise RuntimeError(f"expected go, got {line!r}")
        me = psutil.Process()
        cpu_before = sum(me.cpu_times()[:2])
        began = time.time()
        futures = [
            controller.submit(
                Submission(key, sdk_tasks.noop.task_spec((i,), {}, run_id=f"clients-{name}"))
            )
            for i in range(n)
        ]
        results = await asyncio.gather(*futures)
        ended = time.time()
        if sum(r.unwrap() for r in results) != n * (n - 1) // 2:  # type: ignore[misc]
            raise RuntimeError("wrong sum of results")
        return {
            "n": n,
            "began": began,
            "ended": ended,
            "elapsed_s": ended - began,
            "cpu_s": sum(me.cpu_times()[:2]) - cpu_before,
        }


# ---------------------------------------------------------------- the orchestration


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    stdout = process.stdout
    assert stdout is not None
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return got[0] if got else ""


class Controller:
    """The standalone controller subprocess, and how to start clients of it."""

    def __init__(self, state_dir: str) -> None:
        self.token = secrets.token_urlsafe(24)
        self.environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith("REUSE_RUNTIME_")},
            "PYTHONPATH": str(ROOT),
            "REUSE_RUNTIME_HOME": state_dir,
            "REUSE_RUNTIME_LOG_LEVEL": "warning",
            TOKEN_ENV: self.token,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reuse_runtime", "controller", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=str(ROOT),
            env=self.environ,
        )
        match = READY.search(_read_line(self.process, WAIT_S))
        if match is None:
            self.close()
            raise RuntimeError("the controller did not start")
        self.address = match.group(1)

    def cpu(self) -> tuple[float, float]:
        """CPU seconds so far: the controller's, and its replicas' together."""
        me = psutil.Process(self.process.pid)
        replicas = [p.pid for p in me.children(recursive=True)]
        used = cpu_seconds([me.pid, *replicas])
        return used.get(me.pid, 0.0), sum(v for k, v in used.items() if k != me.pid)

    def gather(self, clients: int, n: int) -> dict[str, Any]:
        """``clients`` processes gathering ``n`` each, told to go together."""
        command = [sys.executable, "-m", "benchmarks.clients", "--client", self.address]
        started = [
            subprocess.Popen(
                [*command, "--n", str(n), "--name", str(i)],
                stdout=subprocess.PIPE,
                stdin=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=str(ROOT),
                env=self.environ,
            )
            for i in range(clients)
        ]
        try:
            for process in started:
                if _read_line(process, WAIT_S).strip() != "ready":
                    raise RuntimeError("a client did not connect")
            cpu_before = self.cpu()
            for process in started:
                assert process.stdin is not None
                process.stdin.write("go\n")
                process.stdin.flush()
            results = []
            for process in started:
                stdout, stderr = process.communicate(timeout=WAIT_S)
                found = [line for line in stdout.splitlines() if line.startswith(RESULT_MARK)]
                if process.returncode != 0 or not found:
                    tail = " | ".join(stderr.strip().splitlines()[-3:])
                    raise RuntimeError(f"a client failed ({process.returncode}): {tail}")
                results.append(json.loads(found[-1][len(RESULT_MARK) :]))
            cpu_after = self.cpu()
        finally:
            for process in started:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        total = clients * n
        span = max(r["ended"] for r in results) - min(r["began"] for r in results)
        mean = statistics.mean(r["elapsed_s"] for r in results)
        return {
            "clients": clients,
            "n": n,
            "tasks_per_s": total / span,
            "span_s": span,
            "elapsed_s": [r["elapsed_s"] for r in results],
            "worst_over_mean": max(r["elapsed_s"] for r in results) / mean,
            "cpu_us_per_task_controller": (cpu_after[0] - cpu_before[0]) / total * 1e6,
            "cpu_us_per_task_replicas": (cpu_after[1] - cpu_before[1]) / total * 1e6,
            "cpu_us_per_task_clients": sum(r["cpu_s"] for r in results) / total * 1e6,
        }

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def measure(clients: int, n: int, reps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-clients-") as state_dir:
        controller = Controller(state_dir)
        try:
            controller.gather(1, 2_000)  # starts the pool's replicas and warms them
            one: list[dict[str, Any]] = []
            many: list[dict[str, Any]] = []
            for rep in range(reps):
                for kind in ("one", "many") if rep % 2 == 0 else ("many", "one"):
                    if kind == "one":
                        one.append(controller.gather(1, clients * n))
                    else:
                        many.append(controller.gather(clients, n))
        finally:
            controller.close()
    return {
        "clients": clients,
        "n": n,
        "one": one,
        "many": many,
        "many_over_one": [
            m["tasks_per_s"] / o["tasks_per_s"] for o, m in zip(one, many, strict=True)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--n", type=int, default=10_000, help="tasks each client gathers")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--name", default="0", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        import uvloop

        emit(uvloop.run(client(args.client, args.n, args.name)))
        return
    emit(measure(args.clients, args.n, args.reps))


if __name__ == "__main__":
    main()
