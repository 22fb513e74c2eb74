"""Fixtures of the web UI's tests: a real runs store, a real UI over it, HTTP clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from reuse_runtime.store import SqliteRunStore, StoreSettings
from reuse_runtime.ui import WebUI

TOKEN = "the-token-of-the-tests"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteRunStore]:
    with SqliteRunStore.open(StoreSettings(path=tmp_path / "runs.sqlite")) as opened:
        yield opened


@pytest.fixture
async def ui(store: SqliteRunStore) -> AsyncIterator[WebUI]:
    async with WebUI(store, token=TOKEN, port=0) as served:
        yield served


def session() -> aiohttp.ClientSession:
    # unsafe: keep cookies of a server named by its IP address (127.0.0.1).
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


@pytest.fixture
async def anonymous(ui: WebUI) -> AsyncIterator[aiohttp.ClientSession]:
    async with session() as client:
        yield client


@pytest.fixture
async def client(ui: WebUI) -> AsyncIterator[aiohttp.ClientSession]:
    """A browser that logged in with the token."""
    async with session() as logged_in:
        response = await logged_in.post(
            f"{ui.url}/login", data={"token": TOKEN, "next": "/runs"}, allow_redirects=False
        )
        assert response.status == 303, await response.text()
        yield logged_in


async def csrf_of(client: aiohttp.ClientSession, url: str) -> str:
    """The CSRF token a page of the UI carries."""
    text = await (await client.get(url)).text()
    marker = 'name="csrf-token" content="'
    start = text.index(marker) + len(marker)
    return text[start : text.index('"', start)]
