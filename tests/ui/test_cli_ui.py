"""``reuse-runtime ui``: the web UI over a runs store, with no controller."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from reuse_runtime.store import SqliteRunStore, StoreSettings
from tests.helpers import ROOT, run_cli, subprocess_env
from tests.ui.conftest import session
from tests.ui.support import record_three_levels


async def test_it_serves_a_store_read_only_behind_a_single_use_login_link(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.sqlite"
    with SqliteRunStore.open(StoreSettings(path=path)) as store:
        record_three_levels(store)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reuse_runtime", "ui", "--store", str(path), "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(ROOT),
        env=subprocess_env(REUSE_RUNTIME_HOME=str(tmp_path / "home")),
    )  # fmt: skip
    assert process.stdout is not None
    try:
        served = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        link = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().split()[4]
        url = served.split()[3].rstrip(",")
        assert served.startswith(f"web UI on {url}, reading {path}")
        async with session() as browser:
            assert (await browser.get(f"{url}/api/runs")).status == 401
            assert (await browser.get(link)).status == 200  # through the login, to the runs
            runs = await (await browser.get(f"{url}/api/runs")).json()
            assert [run["name"] for run in runs["runs"]] == ["three-levels"]
            page = await (await browser.get(f"{url}/environments")).text()
            assert "no live replicas to show" in page
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 60) == 0


def test_without_a_store_it_says_where_it_looked(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "ui", "--store", str(tmp_path / "none.sqlite"))
    assert done.returncode == 2
    assert "there is no runs store at" in done.stderr and "--store" in done.stderr
