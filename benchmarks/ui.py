"""What the web UI costs the controller: none open, and one browser watching a live run.

    python -m benchmarks.ui [--n 50000] [--reps 2] [--page run|environments]

Starts two standalone controllers (``--no-ui``, and the UI on a free port) and runs
the SDK benchmark's workload (a parent gathering ``n`` noop children, replicas=2,
concurrency=100) through them, in three conditions, rotated rep by rep:

* ``no-ui``: the controller serves no UI;
* ``ui``: it serves one, and no browser is open;
* ``browser``: one headless Chromium (Debian's, driven by playwright) watches the
  run's page (``--page run``: the header, the root's children; they poll while the
  run runs) or the environments page, from the moment the run has a name.

Measured: the controller process's CPU (user plus system, its threads included:
the UI's reader threads are in it) over the run, per condition, and the ratios
``ui / no-ui`` and ``browser / ui``: what serving the UI costs, and what one
browser costs. Reports one JSON object (``harness.emit``): medians of ``reps``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import secrets
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from benchmarks.harness import ROOT, emit

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Controller:
    process: asyncio.subprocess.Process
    address: str
    ui_url: str
    token: str
    home: Path

    def cpu(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)


@contextlib.asynccontextmanager
async def controller(home: Path, *, ui: bool) -> AsyncIterator[Controller]:
    token = secrets.token_urlsafe(16)
    flags = ["--ui-port", "0"] if ui else ["--no-ui"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reuse_runtime", "controller", "--port", "0", *flags,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=str(ROOT),
        env=_env(home, token),
    )  # fmt: skip
    assert process.stdout is not None
    address = ui_url = ""
    try:
        while not address or (ui and not ui_url):
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            if not line:
                raise RuntimeError("the controller exited before it was ready")
            if found := re.search(r"listening on (\S+)", line):
                address = found.group(1)
            if found := re.search(r"web UI on (\S+)", line):
                ui_url = found.group(1)
        yield Controller(process, address, ui_url, token, home)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 60)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()


def _env(home: Path, token: str) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.update(
        REUSE_RUNTIME_HOME=str(home),
        REUSE_RUNTIME_TOKEN=token,
        REUSE_RUNTIME_LOG_LEVEL="warning",
        PYTHONPATH=str(ROOT),
    )
    return env


DRIVER = """
import reuse_runtime as flyte
from benchmarks import sdk_tasks
flyte.init(endpoint={address!r})
run = flyte.run(sdk_tasks.main, {n})
print(run.name, flush=True)
run.wait(quiet=True, progress=False)
print("done", flush=True)
"""


async def one_run(
    target: Controller, n: int, browser: Any | None, page_kind: str
) -> dict[str, Any]:
    """Run the workload on ``target``; its CPU and wall time (a browser watching, if any)."""
    script = target.home / "driver.py"
    script.write_text(textwrap.dedent(DRIVER.format(address=target.address, n=n)))
    cpu_before, started = target.cpu(), time.monotonic()
    driver = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, cwd=str(ROOT), env=_env(target.home, target.token),
    )  # fmt: skip
    assert driver.stdout is not None
    page = None
    requests: dict[str, int] = {}

    def seen(request: Any) -> None:
        path = request.url.split("?", 1)[0].replace(target.ui_url, "")
        kind = "static" if path.startswith("/static/") else path.rsplit("/", 1)[-1] or path
        requests[kind] = requests.get(kind, 0) + 1

    try:
        name = (await asyncio.wait_for(driver.stdout.readline(), 120)).decode().strip()
        if browser is not None:
            page = await browser.new_page()
            page.on("request", seen)
            path = f"/runs/{name}" if page_kind == "run" else "/environments"
            await page.goto(f"{target.ui_url}{path}")
            await page.fill("input[name=token]", target.token)
            await page.click("form button[type=submit]")
            await page.wait_for_url(f"{target.ui_url}{path}")
        done = (await asyncio.wait_for(driver.stdout.readline(), 900)).decode().strip()
        if done != "done":
            raise RuntimeError(f"the driver said {done!r}")
        await asyncio.wait_for(driver.wait(), 60)
    finally:
        if driver.returncode is None:
            driver.kill()
            await driver.wait()
        if page is not None:
            await page.close()
    wall = time.monotonic() - started
    cpu = target.cpu() - cpu_before
    found: dict[str, Any] = {"cpu_s": cpu, "wall_s": wall, "cpu_us_per_task": cpu / n * 1e6}
    if requests:
        found["requests"] = requests
    return found


async def measure(n: int, reps: int, page_kind: str) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory() as plain_home, tempfile.TemporaryDirectory() as ui_home:
        async with (
            controller(Path(plain_home), ui=False) as plain,
            controller(Path(ui_home), ui=True) as served,
            async_playwright() as driver,
        ):
            browser = await driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                # Warm both pools (replicas started, modules imported) before measuring.
                await one_run(plain, 1000, None, page_kind)
                await one_run(served, 1000, None, page_kind)
                results: dict[str, list[dict[str, Any]]] = {
                    "no-ui": [],
                    "ui": [],
                    "browser": [],
                }
                conditions = [
                    ("no-ui", plain, None),
                    ("ui", served, None),
                    ("browser", served, browser),
                ]
                for rep in range(reps):
                    for offset in range(3):
                        label, target, watcher = conditions[(rep + offset) % 3]
                        result = await one_run(target, n, watcher, page_kind)
                        results[label].append(result)
                        print(label, result, file=sys.stderr, flush=True)
            finally:
                await browser.close()

    def median(label: str, key: str) -> float:
        return statistics.median(r[key] for r in results[label])

    cpu = {label: median(label, "cpu_s") for label in results}
    return {
        "n": n,
        "reps": reps,
        "page": page_kind,
        "controller_cpu_s": cpu,
        "wall_s": {label: median(label, "wall_s") for label in results},
        "ui_over_no_ui": cpu["ui"] / cpu["no-ui"],
        "browser_over_ui": cpu["browser"] / cpu["ui"],
        "runs": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--page", choices=("run", "environments"), default="run")
    args = parser.parse_args()
    emit(asyncio.run(measure(args.n, args.reps, args.page)))


if __name__ == "__main__":
    main()
