"""Headless Chromium for the web UI's browser tests: Debian's ``chromium``, driven by
playwright (never ``playwright install``: it downloads a browser, and fails here)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("REUSE_RUNTIME_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Where the tests leave their screenshots (CI keeps them as artifacts).
SCREENSHOTS = Path(
    os.environ.get(
        "REUSE_RUNTIME_SCREENSHOTS", Path(__file__).resolve().parents[2] / "build" / "screenshots"
    )
)
VIEWPORT = {"width": 1400, "height": 900}


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[object]:
    """A browser (playwright's ``Browser``); a test without chromium fails saying why."""
    _check_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def _check_chromium() -> None:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("the browser tests need Debian's chromium: apt-get install -y chromium")


def _screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"


async def logged_in(browser: object, url: str, token: str, path: str = "/runs") -> object:
    """A new page, logged in with ``token`` through the login form, at ``path``."""
    page = await browser.new_page(viewport=VIEWPORT)  # type: ignore[attr-defined]
    await page.goto(f"{url}{path}")
    await page.fill("input[name=token]", token)
    await page.click("form button[type=submit]")
    await page.wait_for_url(f"{url}{path}")
    return page


async def shoot(page: object, name: str) -> Path:
    """Save a screenshot of the whole page as ``name``.png."""
    path = _screenshot_path(name)
    await page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
