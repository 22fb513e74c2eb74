"""The web UI names an OOM-killed replica's cause, with its memory limit (a real container
under a 200Mi limit, a real browser)."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from reuse_runtime.model import ErrorKind
from tests.container import tasks
from tests.container.harness import container_controller
from tests.helpers import submit
from tests.ui.browser import chromium, logged_in, shoot

pytestmark = [pytest.mark.container, pytest.mark.browser, pytest.mark.timeout(420)]


async def test_the_environments_page_shows_an_oom_with_its_limit() -> None:
    async with container_controller(ui_port=0) as cc, chromium() as browser:
        url = await cc.server.ui_ready()
        assert (await (await submit(cc.client, tasks.small, 1))).ok  # type: ignore[attr-defined]
        result = await (await submit(cc.client, tasks.hog, 400))  # type: ignore[misc]
        assert result.error is not None and result.error.kind is ErrorKind.REPLICA_LOST
        token = cc.security.token
        assert token is not None
        page = await logged_in(browser, url, token, "/environments")
        hungry = page.locator("section.environment[data-environment=hungry]")
        lost = hungry.locator("table.events tr.event.lost").first
        await expect(lost).to_contain_text("oom")
        await expect(lost).to_contain_text("memory limit of 200Mi")
        # The replica that took its place, with its container's id.
        await expect(hungry.locator("table.replicas tbody tr").first).to_contain_text(
            "container", timeout=60_000
        )
        await shoot(page, "environments-oom")
