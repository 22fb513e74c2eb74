"""What a run's page weighs as the run grows: requests, bytes and time to show its tree.

    python -m benchmarks.ui_page [--sizes 10,1000,100000] [--reps 3]

Records runs of each size (a root and that many finished children, the way the
controller records them) in one runs store, serves the web UI over it, and opens
each run's page in headless Chromium (Debian's, driven by playwright) until its
tree shows the first page of children. Measured per size: the requests the page
made, the bytes of their bodies, and the seconds from navigation to the tree
(the best of ``reps``: the machine is shared). Reports one JSON object
(``harness.emit``) with each size's figures over the smallest's: past the first
page of 50 children, paging keeps them flat.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import emit
from reuse_runtime.store import (
    ActionPhase,
    ActionRecord,
    RunEnded,
    RunSubmitted,
    SqliteRunStore,
    StoreSettings,
)
from reuse_runtime.ui import WebUI

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync"]
SUCCEEDED = ActionPhase.SUCCEEDED
OUTPUT = b"\x80\x05K\x04."  # pickle.dumps(4)


def record_run(store: SqliteRunStore, name: str, children: int) -> None:
    """A finished run whose root called ``children`` tasks on four replicas."""
    now = time.time() - 600
    store.run_submitted(RunSubmitted(name, "fan_out", "bench", "root", created=now))
    for i in range(children):
        at = now + 1 + i * 0.001
        store.action_ended(
            ActionRecord(name, f"c{i}", "root", f"k{i}", "child", "bench", "", SUCCEEDED,
                         at - 0.5, at - 0.4, at, f"bench-{i % 4}", f"({i},)", OUTPUT)
        )  # fmt: skip
        if i % 10_000 == 9_999 and not store.flush(timeout=300):
            raise RuntimeError("the store did not flush in 300 s")
    end = now + 2 + children * 0.001
    store.action_ended(
        ActionRecord(name, "root", "", "kroot", "fan_out", "bench", "", SUCCEEDED,
                     now, now + 0.1, end, "bench-0", "()", OUTPUT)
    )  # fmt: skip
    store.run_ended(RunEnded(name, SUCCEEDED, end + 0.1, OUTPUT))


async def open_page(browser: Any, url: str, token: str, run: str) -> dict[str, Any]:
    """One logged-in page opening ``run``: its requests, bytes and seconds to the tree."""
    page = await browser.new_page()
    try:
        await page.goto(f"{url}/login?next=/runs")
        await page.fill("input[name=token]", token)
        await page.click("form button[type=submit]")
        await page.wait_for_url(f"{url}/runs")
        requests: list[Any] = []
        page.on("requestfinished", lambda request: requests.append(request))
        started = time.monotonic()
        await page.goto(f"{url}/runs/{run}")
        await page.locator("#tree a.name", has_text="child").first.wait_for()
        took = time.monotonic() - started
        await page.wait_for_load_state("networkidle")
        sizes = [int((await request.sizes())["responseBodySize"]) for request in requests]
        shown = await page.locator("#tree a.name", has_text="child").count()
        return {"requests": len(sizes), "bytes": sum(sizes), "seconds": took, "rows": shown}
    finally:
        await page.close()


async def measure(sizes: list[int], reps: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as directory:
        with SqliteRunStore.open(StoreSettings(path=Path(directory) / "runs.sqlite")) as store:
            for n in sizes:
                record_run(store, f"run-{n}", n)
            if not store.flush(timeout=300):
                raise RuntimeError("the store did not flush in 300 s")
            async with WebUI(store, token=token, port=0) as ui, async_playwright() as driver:
                browser = await driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    await open_page(browser, ui.url, token, f"run-{sizes[0]}")  # warm
                    found: dict[str, dict[str, Any]] = {}
                    for n in sizes:
                        tries = [await open_page(browser, ui.url, token, f"run-{n}")]
                        for _ in range(reps - 1):
                            tries.append(await open_page(browser, ui.url, token, f"run-{n}"))
                        best = min(tries, key=lambda t: t["seconds"])
                        found[str(n)] = best
                finally:
                    await browser.close()
    small = found[str(sizes[0])]
    return {
        "sizes": found,
        # Each size's page over the smallest's: paging keeps these near 1 past one page.
        "over_smallest": {
            n: {key: round(page[key] / small[key], 3) for key in ("requests", "bytes", "seconds")}
            for n, page in found.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,1000,100000")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    sizes = sorted(int(n) for n in args.sizes.split(","))
    emit(asyncio.run(measure(sizes, args.reps)))


if __name__ == "__main__":
    main()
