"""Who gets in: the token once, then a session cookie; without it, every page sends to
the login and every API call answers 401; a state change needs the session's CSRF token."""

from __future__ import annotations

import aiohttp

from reuse_runtime.store import SqliteRunStore
from reuse_runtime.ui import WebUI
from tests.ui.conftest import TOKEN, csrf_of, session
from tests.ui.support import record_three_levels

PAGES = [
    "/runs",
    "/runs?phase=failed",
    "/runs/three-levels",
    "/runs/three-levels?tab=timeline",
    "/runs/three-levels/actions/root",
    "/environments",
]
API = [
    ("GET", "/api/runs"),
    ("GET", "/api/runs/table"),
    ("GET", "/api/runs/three-levels"),
    ("GET", "/api/runs/three-levels/header"),
    ("GET", "/api/runs/three-levels/children?parent=root"),
    ("GET", "/api/runs/three-levels/timeline"),
    ("POST", "/api/runs/three-levels/abort"),
    ("GET", "/api/runs/three-levels/actions/root/panel"),
    ("GET", "/api/runs/three-levels/actions/root/logs?after=0"),
    ("GET", "/api/runs/three-levels/actions/root/search?q=x"),
    ("GET", "/api/runs/three-levels/actions/root/report"),
    ("GET", "/api/environments/panel"),
    ("GET", "/api/environments/history"),
]


async def test_without_a_session_pages_go_to_the_login_and_the_api_answers_401(
    store: SqliteRunStore, ui: WebUI, anonymous: aiohttp.ClientSession
) -> None:
    record_three_levels(store)
    assert store.flush(30)
    for path in PAGES:
        response = await anonymous.get(ui.url + path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"].startswith("/login?next="), path
    for method, path in API:
        response = await anonymous.request(method, ui.url + path, allow_redirects=False)
        assert response.status == 401, (method, path)
        assert "log in" in (await response.json())["error"]
    # A forged or stale cookie is no session.
    anonymous.cookie_jar.update_cookies({"rr_session": "4102444800.abc.0123"})
    assert (await anonymous.get(ui.url + "/api/runs")).status == 401
    # The login page and the static files are public.
    assert (await anonymous.get(ui.url + "/login")).status == 200
    assert (await anonymous.get(ui.url + "/static/vendor/htmx.min.js")).status == 200


async def test_the_token_becomes_an_httponly_strict_cookie_and_no_url_carries_it(
    store: SqliteRunStore, ui: WebUI
) -> None:
    record_three_levels(store)
    assert store.flush(30)
    async with session() as browser:
        wrong = await browser.post(f"{ui.url}/login", data={"token": "nope"})
        assert wrong.status == 401 and "not the token" in await wrong.text()
        response = await browser.post(
            f"{ui.url}/login",
            data={"token": TOKEN, "next": "/runs/three-levels"},
            allow_redirects=False,
        )
        assert response.status == 303
        assert response.headers["Location"] == "/runs/three-levels"
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert TOKEN not in cookie
        page = await browser.get(f"{ui.url}/runs/three-levels")
        assert page.status == 200 and TOKEN not in await page.text()
        assert str(page.url) == f"{ui.url}/runs/three-levels"
        # Somewhere else after the login is refused: only this server's own paths.
        away = await browser.post(
            f"{ui.url}/login", data={"token": TOKEN, "next": "//evil.example/"},
            allow_redirects=False,
        )  # fmt: skip
        assert away.headers["Location"] == "/runs"
        out = await browser.post(
            f"{ui.url}/logout", data={"csrf": await csrf_of(browser, f"{ui.url}/runs")}
        )
        assert str(out.url).startswith(f"{ui.url}/login")
        assert (await browser.get(f"{ui.url}/api/runs")).status == 401


async def test_failed_logins_are_throttled(ui: WebUI, anonymous: aiohttp.ClientSession) -> None:
    for _ in range(10):
        assert (await anonymous.post(f"{ui.url}/login", data={"token": "guess"})).status == 401
    # Now even the right token waits for the minute to pass.
    throttled = await anonymous.post(f"{ui.url}/login", data={"token": TOKEN})
    assert throttled.status == 429 and "wait a minute" in await throttled.text()


async def test_a_login_link_works_once(ui: WebUI) -> None:
    link = ui.login_link("/environments")
    assert TOKEN not in link
    async with session() as browser:
        response = await browser.get(link, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/environments"
        assert (await browser.get(f"{ui.url}/api/runs")).status == 200
    async with session() as other:
        again = await other.get(link, allow_redirects=False)
        assert again.status == 401 and "used or has expired" in await again.text()


async def test_the_abort_needs_the_csrf_token_and_this_servers_origin(
    store: SqliteRunStore, client: aiohttp.ClientSession, ui: WebUI
) -> None:
    record_three_levels(store)
    assert store.flush(30)
    url = f"{ui.url}/api/runs/three-levels/abort"
    token = await csrf_of(client, f"{ui.url}/runs/three-levels")
    refused = await client.post(url, data={"csrf": "forged"})
    assert refused.status == 403 and "CSRF" in await refused.text()
    elsewhere = await client.post(
        url, data={"csrf": token}, headers={"Origin": "http://evil.example"}
    )
    assert elsewhere.status == 403 and "another site" in await elsewhere.text()
    # The token is right: this UI reads a store alone, so there is nothing to abort with.
    accepted = await client.post(url, data={"csrf": token}, allow_redirects=False)
    assert accepted.status == 409 and "no controller" in await accepted.text()
    by_header = await client.post(url, headers={"X-CSRF-Token": token}, allow_redirects=False)
    assert by_header.status == 409


async def test_every_answer_carries_the_security_headers(
    ui: WebUI, client: aiohttp.ClientSession
) -> None:
    for path in ("/runs", "/api/runs", "/login"):
        response = await client.get(ui.url + path)
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
    # The scripts and styles travel under versioned names a browser keeps: no refetch.
    page = await (await client.get(ui.url + "/runs")).text()
    script = page.split('<script src="')[1].split('"')[0]
    assert script.startswith("/static/vendor/htmx.min.js?v=")
    cached = await client.get(ui.url + script)
    assert cached.headers["Cache-Control"] == "public, max-age=31536000, immutable"
