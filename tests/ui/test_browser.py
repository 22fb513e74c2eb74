"""The web UI in headless Chromium, over a runs store the tests record directly.

(The tests against a live controller, its replicas and its runs, are in
``test_browser_live.py``.)
"""

from __future__ import annotations

import time

import pytest
from playwright.async_api import expect

from reuse_runtime.store import (
    ActionPhase,
    LogRecord,
    RunEnded,
    RunProgress,
    RunSubmitted,
    SqliteRunStore,
)
from reuse_runtime.ui import WebUI
from tests.ui.browser import VIEWPORT, chromium, logged_in, shoot
from tests.ui.conftest import TOKEN
from tests.ui.support import XSS, action, record_hostile, record_three_levels, record_wide

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


async def test_login_once_then_a_cookie_and_no_way_in_without_it(
    store: SqliteRunStore, ui: WebUI
) -> None:
    record_three_levels(store)
    assert store.flush(30)
    async with chromium() as browser:
        page = await browser.new_page(viewport=VIEWPORT)  # type: ignore[attr-defined]
        await page.goto(f"{ui.url}/runs/three-levels")
        await expect(page).to_have_url(f"{ui.url}/login?next=/runs/three-levels")
        await page.fill("input[name=token]", "not the token")
        await page.click("form button[type=submit]")
        await expect(page.locator("#login-error")).to_have_text("that is not the token")
        await page.fill("input[name=token]", TOKEN)
        await page.click("form button[type=submit]")
        await expect(page).to_have_url(f"{ui.url}/runs/three-levels")
        await expect(page.locator("h1")).to_have_text("three-levels")
        # The session is HttpOnly: the page's scripts cannot read it.
        assert await page.evaluate("document.cookie") == ""
        (cookie,) = await page.context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert TOKEN not in page.url and TOKEN not in await page.content()
        # Another browser, with no cookie: pages go to the login, the API answers 401.
        stranger = await browser.new_page(viewport=VIEWPORT)  # type: ignore[attr-defined]
        await stranger.goto(f"{ui.url}/environments")
        await expect(stranger).to_have_url(f"{ui.url}/login?next=/environments")
        for path in ("/api/runs", "/api/runs/three-levels/timeline", "/api/environments/panel"):
            answer = await stranger.request.get(f"{ui.url}{path}")
            assert answer.status == 401, path
        refused = await stranger.request.post(f"{ui.url}/api/runs/three-levels/abort")
        assert refused.status == 401


async def test_a_three_level_run_shows_its_tree_and_a_child_its_log(
    store: SqliteRunStore, ui: WebUI
) -> None:
    record_three_levels(store)
    assert store.flush(30)
    async with chromium() as browser:
        page = await logged_in(browser, ui.url, TOKEN, "/runs/three-levels")
        tree = page.locator("#tree")
        await expect(tree.locator("a.name", has_text="main")).to_be_visible()
        # The group and the map, folded; the group opened shows its three calls.
        prep = tree.locator("li.group", has_text="prep")
        await expect(prep.locator(".total")).to_have_text("3 calls")
        await expect(
            tree.locator("li.group", has_text="square_map").locator(".total")
        ).to_have_text("20 calls")
        await prep.locator("button.expand").first.click()
        await expect(prep.locator("a.name", has_text="prepare")).to_have_count(3)
        # The third level: a prepare's leaves, and a leaf's log.
        first = prep.locator("li.node:not(.group)").first
        await first.locator("button.expand").first.click()
        await expect(first.locator("a.name", has_text="leaf")).to_have_count(2)
        await first.locator("a.name", has_text="leaf").first.click()
        panel = page.locator("#action-panel")
        await expect(panel.locator("h2")).to_have_text("leaf")
        await expect(panel.locator("#log")).to_contain_text("says hello")
        await shoot(page, "run-page")
        await page.click("#tab-timeline")
        await expect(page.locator("#timeline-note")).to_have_text("30 actions, 2 replicas.")
        await shoot(page, "run-timeline")


async def test_a_probe_in_output_names_and_errors_is_shown_as_text(
    store: SqliteRunStore, ui: WebUI
) -> None:
    record_hostile(store)
    assert store.flush(30)
    async with chromium() as browser:
        page = await logged_in(browser, ui.url, TOKEN, "/runs/hostile")
        await expect(page.locator(".run-header .error-title")).to_contain_text(XSS)
        await expect(page.locator(".run-header dd").first).to_have_text(XSS)  # the task name
        await page.locator("#tree a.name").first.click()
        await expect(page.locator("#action-panel .traceback")).to_contain_text(XSS)
        await page.locator("#tree li.node li.node a.name").first.click()
        await expect(page.locator("#action-panel #output")).to_contain_text("<script>")
        await expect(page.locator("#action-panel #log")).to_contain_text(XSS)
        await page.goto(f"{ui.url}/runs")
        await expect(page.locator("table.runs")).to_contain_text(XSS)
        assert await page.evaluate("window.__xss") is None
        await shoot(page, "escaping")


async def test_a_run_of_100000_actions_opens_in_under_two_seconds(
    store: SqliteRunStore, ui: WebUI
) -> None:
    record_wide(store, "huge", 100_000)
    assert store.flush(120)
    async with chromium() as browser:
        page = await logged_in(browser, ui.url, TOKEN, "/runs")
        took = []
        for _ in range(3):  # the best of three: the machine is shared
            started = time.monotonic()
            await page.goto(f"{ui.url}/runs/huge")
            await expect(page.locator("#tree a.name", has_text="child")).to_have_count(50)
            took.append(time.monotonic() - started)
        assert min(took) < 2.0, took
        await expect(page.locator(".run-header .counts")).to_contain_text("100001 succeeded")
        # The next page comes on demand.
        await page.locator("#tree .more-button").first.click()
        await expect(page.locator("#tree a.name", has_text="child")).to_have_count(100)


async def test_a_running_run_updates_its_page_without_a_reload(
    store: SqliteRunStore, ui: WebUI
) -> None:
    """The page polls while the run runs: new children, new counts, a new log line."""
    now = time.time()
    store.run_submitted(RunSubmitted("growing", "fan_out", "env", "root", created=now - 5))
    store.run_progress(RunProgress("growing", ActionPhase.RUNNING, now - 4))
    store.log_line(LogRecord("growing", "root", "stdout", "the first line", now - 3))
    for i in range(5):
        store.action_ended(action("growing", f"c{i}", "root", "child", at=now - 2 + i * 0.01))
    assert store.flush(30)
    async with chromium() as browser:
        page = await logged_in(browser, ui.url, TOKEN, "/runs/growing")
        navigations: list[str] = []
        page.on("framenavigated", lambda frame: navigations.append(frame.url))
        tree = page.locator("#tree")
        await expect(tree.locator("a.name", has_text="child")).to_have_count(5)
        await tree.locator("a.name", has_text="fan_out").click()
        log = page.locator("#action-panel #log")
        await expect(log).to_contain_text("the first line")
        for i in range(5, 10):
            store.action_ended(action("growing", f"c{i}", "root", "child", at=time.time()))
        store.log_line(LogRecord("growing", "root", "stdout", "the second line", time.time()))
        assert store.flush(30)
        await expect(log).to_contain_text("the second line", timeout=20_000)
        await expect(tree.locator("a.name", has_text="child")).to_have_count(10, timeout=20_000)
        await expect(page.locator(".run-header .counts")).to_contain_text(
            "10 succeeded", timeout=20_000
        )
        store.run_ended(RunEnded("growing", ActionPhase.SUCCEEDED, time.time()))
        assert store.flush(30)
        await expect(page.locator(".run-header .phase").first).to_have_text(
            "succeeded", timeout=20_000
        )
        assert navigations == []
