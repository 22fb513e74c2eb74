"""The web UI of a live controller with real replicas, in headless Chromium: runs
submitted by a driver, their tree, a log line appearing while its task runs, the
abort, a report; the environments page with its replicas and events."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import expect

from reuse_runtime.store import ActionPhase
from tests.controller import tasks as controller_tasks
from tests.helpers import ROOT, running_controller, spawn_controller, submit, subprocess_env
from tests.ui.browser import VIEWPORT, chromium, logged_in, shoot

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


@dataclass
class Controller:
    address: str
    ui_url: str
    token: str
    home: Path


@contextlib.asynccontextmanager
async def standalone(tmp_path: Path) -> AsyncIterator[Controller]:
    """`reuse-runtime controller --port 0 --ui-port 0` with a token, until it says where."""
    token = secrets.token_urlsafe(16)
    home = tmp_path / "home"
    async with spawn_controller(
        "--ui-port", "0", REUSE_RUNTIME_HOME=str(home), REUSE_RUNTIME_TOKEN=token
    ) as process:
        yield Controller(process.address, process.ui_url, token, home)


@contextlib.asynccontextmanager
async def drive(
    controller: Controller, tmp_path: Path, call: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A driver script that runs ``call`` on the controller, prints the run's name and
    URL, and waits for it; killed, if it is still there, when the block ends."""
    script = tmp_path / "driver.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import reuse_runtime as flyte
            from tests.ui import live_tasks
            flyte.init(endpoint={controller.address!r})
            run = flyte.run({call})
            print(run.name, run.url, flush=True)
            run.wait(quiet=True)
            """
        )
    )
    driver = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, cwd=str(ROOT),
        env=subprocess_env(REUSE_RUNTIME_HOME=str(controller.home),
                           REUSE_RUNTIME_TOKEN=controller.token),
    )  # fmt: skip
    try:
        yield driver
    finally:
        if driver.returncode is None:
            driver.kill()
        await driver.wait()


async def run_name(driver: asyncio.subprocess.Process) -> tuple[str, str]:
    assert driver.stdout is not None
    line = (await asyncio.wait_for(driver.stdout.readline(), 120)).decode().split()
    assert len(line) == 2, f"the driver said {line!r}"
    return line[0], line[1]


async def finished(driver: asyncio.subprocess.Process) -> None:
    await asyncio.wait_for(driver.wait(), 120)


async def test_a_real_three_level_run_shows_its_tree_and_a_childs_log(tmp_path: Path) -> None:
    async with standalone(tmp_path) as controller, chromium() as browser:
        async with drive(controller, tmp_path, "live_tasks.main, 20") as driver:
            name, url = await run_name(driver)
            await finished(driver)
        assert url == f"{controller.ui_url}/runs/{name}"  # r.url: the run's page
        page = await logged_in(browser, controller.ui_url, controller.token, f"/runs/{name}")
        assert page.url == url
        await expect(page.locator(".run-header .phase").first).to_have_text("succeeded")
        tree = page.locator("#tree")
        await expect(tree.locator(".row").first.locator(".inputs")).to_have_text("n=20")
        await expect(tree.locator("li.group", has_text="prep").locator(".total")).to_have_text(
            "3 calls"
        )
        square_map = tree.locator("li.group", has_text="square_map")
        await expect(square_map.locator(".total")).to_have_text("20 calls")
        await square_map.locator("button.expand").first.click()
        await expect(square_map.locator("a.name", has_text="square")).to_have_count(20)
        await square_map.locator("a.name", has_text="square").nth(3).click()
        await expect(page.locator("#action-panel #log")).to_contain_text("squaring")
        await shoot(page, "live-run-page")


async def test_a_line_a_running_task_prints_appears_without_a_reload(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    async with standalone(tmp_path) as controller, chromium() as browser:
        async with drive(controller, tmp_path, f"live_tasks.waits_for, {str(gate)!r}") as driver:
            name, _ = await run_name(driver)
            page = await logged_in(browser, controller.ui_url, controller.token, f"/runs/{name}")
            await page.locator("#tree a.name", has_text="waits_for").first.click()
            log = page.locator("#action-panel #log")
            await expect(log).to_contain_text("the first line", timeout=60_000)
            await expect(log).not_to_contain_text("the second line")
            navigations: list[str] = []
            page.on("framenavigated", lambda frame: navigations.append(frame.url))
            gate.touch()
            await expect(log).to_contain_text("the second line", timeout=30_000)
            assert navigations == []  # no reload: the line came by the page's own polling
            # The panel's facts follow the action: it is on a replica, or done.
            facts = page.locator("#action-panel .title .phase")
            await expect(facts).to_have_text(re.compile("running|succeeded"), timeout=10_000)
            await expect(page.locator("#log-empty")).to_be_hidden()
            await shoot(page, "live-log")
            await finished(driver)


async def test_aborting_from_the_page_ends_the_run_aborted(tmp_path: Path) -> None:
    async with standalone(tmp_path) as controller, chromium() as browser:
        async with drive(controller, tmp_path, "live_tasks.sleeps, 120.0") as driver:
            name, _ = await run_name(driver)
            page = await logged_in(browser, controller.ui_url, controller.token, f"/runs/{name}")
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await expect(page.locator("#abort")).to_be_visible()
            await page.click("#abort")
            await expect(page.locator(".run-header .phase").first).to_have_text(
                "aborted", timeout=60_000
            )
            await expect(page.locator("#abort")).to_have_count(0)
            # The tree follows the header: its root ended too.
            root = page.locator("#tree li.node .row").first.locator(".phase")
            await expect(root).to_have_text("aborted", timeout=10_000)
            await shoot(page, "run-aborted")
            await finished(driver)
        # As the runs store has it (the UI's API reads it).
        recorded = await page.request.get(f"{controller.ui_url}/api/runs/{name}")
        assert (await recorded.json())["phase"] == ActionPhase.ABORTED.value


async def test_a_report_is_a_tab_of_its_actions_page(tmp_path: Path) -> None:
    async with standalone(tmp_path) as controller, chromium() as browser:
        async with drive(controller, tmp_path, "live_tasks.reports, 3") as driver:
            name, _ = await run_name(driver)
            await finished(driver)
        page = await logged_in(browser, controller.ui_url, controller.token, f"/runs/{name}")
        await page.locator("#tree a.name", has_text="reports").first.click()
        await page.click("#report-link")
        frame = page.frame_locator("#report")
        await expect(frame.locator("p.epoch")).to_have_count(3)
        await frame.locator("nav button", has_text="Summary").click()
        await expect(frame.locator("#summary")).to_have_text("trained")
        await shoot(page, "report-tab")


async def test_an_embedded_runs_url_is_its_page_while_the_process_runs(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(16)
    script = tmp_path / "embedded.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import reuse_runtime as flyte
            from tests.ui import live_tasks
            flyte.init()
            run = flyte.run(live_tasks.main, 5)
            run.wait(quiet=True)
            print(run.name, run.url, flush=True)
            sys.stdin.readline()  # the UI serves while the process runs
            """
        )
    )
    driver = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=str(ROOT),
        env=subprocess_env(REUSE_RUNTIME_HOME=str(tmp_path / "home"), REUSE_RUNTIME_TOKEN=token),
    )  # fmt: skip
    assert driver.stdin is not None
    try:
        name, url = await run_name(driver)
        assert re.fullmatch(rf"http://127\.0\.0\.1:\d+/runs/{name}", url), url
        async with chromium() as browser:
            page = await browser.new_page(viewport=VIEWPORT)  # type: ignore[attr-defined]
            await page.goto(url)
            await page.fill("input[name=token]", token)
            await page.click("form button[type=submit]")
            await page.wait_for_url(url)
            await expect(page.locator("h1")).to_have_text(name)
            await expect(page.locator(".run-header .phase").first).to_have_text("succeeded")
        driver.stdin.write(b"\n")
        await finished(driver)
        assert driver.returncode == 0
    finally:
        if driver.returncode is None:
            driver.kill()
            await driver.wait()


async def test_the_environments_page_shows_replicas_events_and_the_hour(tmp_path: Path) -> None:
    async with running_controller(ui_port=0) as (server, client), chromium() as browser:
        url = await server.ui_ready()  # type: ignore[attr-defined]
        calls = [await submit(client, controller_tasks.interval, 0.05) for _ in range(60)]
        assert all(r.ok for r in await asyncio.gather(*calls))  # type: ignore[attr-defined]
        page = await logged_in(browser, url, server.security.token, "/environments")  # type: ignore[attr-defined]
        elastic = page.locator("section.environment[data-environment=elastic]")
        await expect(elastic.locator("table.replicas tbody tr").first).to_contain_text("pid ")
        await expect(elastic.locator("table.events")).to_contain_text("ready")
        await expect(page.locator("canvas.history")).to_have_count(1)
        await shoot(page, "environments")
