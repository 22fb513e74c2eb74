"""What the pages and fragments show, read over HTTP from a real UI over a real store."""

from __future__ import annotations

import html
import time

import aiohttp

from reuse_runtime.store import (
    REPORT_STREAM,
    ActionPhase,
    LogRecord,
    RunEnded,
    RunProgress,
    RunSubmitted,
    SqliteRunStore,
)
from reuse_runtime.ui import WebUI
from tests.ui.support import XSS, action, record_hostile, record_three_levels, record_wide


async def _text(client: aiohttp.ClientSession, url: str) -> str:
    response = await client.get(url)
    assert response.status == 200, (url, response.status, await response.text())
    return await response.text()


async def test_a_run_shows_its_tree_with_groups_and_maps_folded(
    store: SqliteRunStore, ui: WebUI, client: aiohttp.ClientSession
) -> None:
    record_three_levels(store)
    assert store.flush(30)
    page = await _text(client, f"{ui.url}/runs/three-levels")
    # The root, open; its group and its map folded, with their counts.
    assert ">main</a>" in page and "23 children" in page
    assert ">prep</span>" in page and "3 calls" in page
    assert ">square_map</span>" in page and "20 calls" in page and "20 succeeded" in page
    members = await _text(
        client, f"{ui.url}/api/runs/three-levels/children?parent=root&group=square_map"
    )
    assert members.count(">square</a>") == 20
    assert "(7,)" in members and '&rarr; <span class="output" title="output">49</span>' in members
    prep = await _text(client, f"{ui.url}/api/runs/three-levels/children?parent=prep1")
    assert prep.count(">leaf</a>") == 2


async def test_an_actions_panel_has_its_log_and_search_finds_lines(
    store: SqliteRunStore, ui: WebUI, client: aiohttp.ClientSession
) -> None:
    record_three_levels(store)
    assert store.flush(30)
    panel = await _text(client, f"{ui.url}/api/runs/three-levels/actions/prep2-leaf1/panel")
    assert "leaf 2.1 says hello" in panel and "Log" in panel
    # The run has ended: its log is whole, nothing polls.
    assert 'hx-trigger="every 1s"' not in panel
    found = await _text(client, f"{ui.url}/api/runs/three-levels/actions/prep2-leaf1/search?q=SAYS")
    assert "1 line with" in found and "leaf 2.1 says hello" in found
    none = await _text(client, f"{ui.url}/api/runs/three-levels/actions/prep2-leaf1/search?q=nope")
    assert "0 lines with" in none


async def test_everything_a_task_writes_is_shown_as_text(
    store: SqliteRunStore, ui: WebUI, client: aiohttp.ClientSession
) -> None:
    record_hostile(store)
    assert store.flush(30)
    shown = [
        await _text(client, f"{ui.url}/runs/hostile"),
        await _text(client, f"{ui.url}/runs"),
        await _text(client, f"{ui.url}/api/runs/hostile/actions/root/panel"),
        await _text(client, f"{ui.url}/api/runs/hostile/actions/child/panel"),
        await _text(client, f"{ui.url}/api/runs/hostile/children?parent=root"),
        await _text(client, f"{ui.url}/api/runs/hostile/actions/child/logs?after=0"),
    ]
    for text in shown:
        assert "<script>window.__xss" not in text and "<img src=x" not in text
        assert html.escape(XSS, quote=False)[:30] in text or html.escape(XSS)[:30] in text


async def test_a_report_is_served_in_its_own_sandbox(
    store: SqliteRunStore, ui: WebUI, client: aiohttp.ClientSession
) -> None:
    record_three_levels(store)
    report = "<h1>Loss</h1><script>document.title = 'ran'</script>"
    store.log_line(LogRecord("three-levels", "sq1", REPORT_STREAM, report, time.time()))
    assert store.flush(30)
    response = await client.get(f"{ui.url}/api/runs/three-levels/actions/sq1/report")
    assert response.status == 200 and await response.text() == report
    policy = response.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox allow-scripts") and "allow-same-origin" not in policy
    tab = await _text(client, f"{ui.url}/runs/three-levels/actions/sq1?tab=report")
    assert '<iframe class="report" id="report" title="report" sandbox="allow-scripts' in tab
    assert "allow-same-origin" not in tab
    missing = await client.get(f"{ui.url}/api/runs/three-levels/actions/sq2/report")
    assert missing.status == 404


async def test_runs_are_listed_newest_first_filtered_and_paged(
    store: SqliteRunStore, ui: WebUI, client: aiohttp.ClientSession
) -> None:
    record_three_levels(store, "older")
    record_hostile(store, "failing")
    for n in range(55):
        record_wide(store, f"wide-{n:02d}", 1)
    assert store.flush(30)
    listed = await (await client.get(f"{ui.url}/api/runs")).json()
    names = [run["name"] for run in listed["runs"]]
    assert len(names) == 50 and listed["cursor"]
    more = await (await client.get(f"{ui.url}/api/runs?cursor={listed['cursor']}")).json()
    assert len(more["runs"]) == 7 and more["cursor"] is None
    assert set(names).isdisjoint(run["name"] for run in more["runs"])
    failed = await (await client.get(f"{ui.url}/api/runs?phase=failed")).json()
    assert [run["name"] for run in failed["runs"]] == ["failing"]
    named = await (await client.get(f"{ui.url}/api/runs?name=old")).json()
    assert [run["name"] for run in named["runs"]] == ["older"]
    page = await _text(client, f"{ui.url}/runs?phase=failed")
    assert "failing" in page and "wide-01" not in page
    bad = await client.get(f"{ui.url}/runs?phase=sideways")
    assert bad.status == 400 and "not a phase" in await bad.text()


async def test_a_wide_parents_children_come_a_page_at_a_time(
    store: SqliteRunStore, ui: WebUI, client: aiohttp.ClientSession
) -> None:
    record_wide(store, "wide", 120)
    assert store.flush(30)
    first = await _text(client, f"{ui.url}/api/runs/wide/children?parent=root")
    assert first.count(">child</a>") == 50 and ">More</button>" in first
    cursor = first.split("cursor=")[1].split('"')[0].replace("%3A", ":")
    second = await _text(client, f"{ui.url}/api/runs/wide/children?parent=root&cursor={cursor}")
    assert second.count(">child</a>") == 50 and ">More</button>" in second
    assert "(50,)" in second and "(49,)" not in second


async def test_the_timeline_has_a_bar_per_attempt_on_its_replica(
    store: SqliteRunStore, ui: WebUI, client: aiohttp.ClientSession
) -> None:
    record_hostile(store)
    record_three_levels(store)
    assert store.flush(30)
    hostile = await (await client.get(f"{ui.url}/api/runs/hostile/timeline")).json()
    root_bars = [bar for bar in hostile["bars"] if bar["id"] == "root"]
    assert [bar["replica"] for bar in root_bars] == ["env-1-aaaa", "env-2-bbbb"]
    assert all(bar["phase"] == "failed" and bar["end"] > bar["start"] for bar in root_bars)
    three = await (await client.get(f"{ui.url}/api/runs/three-levels/timeline")).json()
    assert three["total"] == three["shown"] == 30 and not three["live"]
    assert three["replicas"] == ["env-1-aaaa", "env-2-aaaa"]


async def test_a_run_that_ended_tells_the_pages_polled_parts_to_look_once_more(
    store: SqliteRunStore, ui: WebUI, client: aiohttp.ClientSession
) -> None:
    now = time.time()
    store.run_submitted(RunSubmitted("going", "fan_out", "env", "root", created=now - 5))
    store.run_progress(RunProgress("going", ActionPhase.RUNNING, now - 4))
    assert store.flush(30)
    going = await client.get(f"{ui.url}/api/runs/going/header")
    assert going.status == 200 and "HX-Trigger" not in going.headers
    # The tree's parts and a live action's facts poll, and also look at run-ended.
    page = await _text(client, f"{ui.url}/runs/going")
    assert 'hx-trigger="every 5s, run-ended from:body"' in page
    facts = await _text(client, f"{ui.url}/api/runs/going/actions/root/facts")
    assert 'hx-trigger="every 3s, run-ended from:body"' in facts and ">fan_out</h2>" in facts
    store.run_ended(RunEnded("going", ActionPhase.SUCCEEDED, now))
    assert store.flush(30)
    ended = await client.get(f"{ui.url}/api/runs/going/header")
    assert ended.headers["HX-Trigger"] == "run-ended"
    # Looked at once more, they poll no more.
    assert "hx-trigger" not in await _text(client, f"{ui.url}/api/runs/going/children?part=live")


async def test_the_roots_inputs_are_the_runs(
    store: SqliteRunStore, ui: WebUI, client: aiohttp.ClientSession
) -> None:
    """The controller records a run's inputs, not its actions': the root shows the run's."""
    now = time.time()
    store.run_submitted(
        RunSubmitted("inputs", "main", "env", "root", created=now - 5, inputs_preview="n=20")
    )
    store.action_ended(action("inputs", "root", "", "main", at=now, inputs_preview=""))
    store.action_ended(action("inputs", "kid", "root", "kid", at=now, inputs_preview=""))
    assert store.flush(30)
    page = await _text(client, f"{ui.url}/runs/inputs")
    assert '<span class="inputs" title="inputs">n=20</span>' in page
    root = await _text(client, f"{ui.url}/api/runs/inputs/actions/root/panel")
    assert '<dd class="io">n=20</dd>' in root
    kid = await _text(client, f"{ui.url}/api/runs/inputs/actions/kid/panel")
    assert "(not recorded for a child action)" in kid
