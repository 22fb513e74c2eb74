"""``flyte.report``: a task's HTML, flushed to the controller as its report (the web UI
shows it); Flyte's names and behaviour outside a reporting task."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import reuse_runtime as flyte
import reuse_runtime.report
from reuse_runtime.client import ControllerClient
from reuse_runtime.model import REPORT_STREAM, LogLine, Submission
from tests.helpers import running_controller
from tests.sdk import report_tasks


def test_outside_a_task_the_report_is_one_nobody_sees() -> None:
    report = flyte.report.current_report()
    assert report.name == "dummy"
    flyte.report.log("<p>x</p>", do_flush=True)  # no task: nothing to send, no error
    flyte.report.flush()
    assert flyte.report.current_report() is not report  # a fresh dummy each time


def test_tabs_log_replace_and_render_as_one_document() -> None:
    report = flyte.report.Report("train")
    assert not report.has_content()
    report.get_tab("main").log("<p>a</p>")
    report.get_tab("main").log("<p>b</p>")
    assert report.get_tab("main").get_html() == "<p>a</p>\n<p>b</p>"
    report.get_tab("main").replace("<p>c</p>")
    assert report.get_final_report().count("<p>c</p>") == 1
    with pytest.raises(ValueError, match="Tab missing does not exist"):
        report.get_tab("missing", create_if_missing=False)
    report.get_tab("<b>Loss</b>").log("<canvas></canvas>")
    document = report.get_final_report()
    # Two tabs: both bodies, and the tab's name as text (the HTML is the task's own).
    assert "<p>c</p>" in document and "<canvas></canvas>" in document
    assert "&lt;b&gt;Loss&lt;/b&gt;" in document and "<b>Loss</b>" not in document


@pytest.fixture
async def reports() -> AsyncIterator[tuple[ControllerClient, list[LogLine]]]:
    seen: list[LogLine] = []
    async with running_controller() as (server, _):
        client = ControllerClient(server.address, server.security, on_logs=seen.extend)  # type: ignore[attr-defined]
        await client.wait_ready()
        try:
            yield client, seen
        finally:
            await client.close()


async def _run(client: ControllerClient, task: object, *args: object) -> object:
    key = await client.register(task.environment_spec())  # type: ignore[attr-defined]
    spec = task.task_spec(args, {}, run_id="report-run")  # type: ignore[attr-defined]
    result = await client.submit(Submission(key, spec, stream_logs=True))
    return spec.task_id, result


def _reports(seen: list[LogLine], task_id: str) -> list[str]:
    return [line.text for line in seen if line.task_id == task_id and line.stream == REPORT_STREAM]


async def test_each_flush_sends_the_whole_report_and_the_end_sends_the_last(
    reports: tuple[ControllerClient, list[LogLine]],
) -> None:
    client, seen = reports
    task_id, result = await _run(client, report_tasks.streams, 3)
    assert result.ok and result.unwrap() == 3  # type: ignore[attr-defined]
    sent = _reports(seen, task_id)
    # Three flushes, each the whole report so far, then the final one with the new tab.
    assert len(sent) == 4
    assert "<p>step 0</p>" in sent[0] and "<p>step 1</p>" not in sent[0]
    assert all(f"<p>step {n}</p>" in sent[2] for n in range(3))
    assert "<b>all done</b>" in sent[3] and "Totals" in sent[3]


async def test_a_sync_task_replaces_and_a_failed_task_still_sends_its_report(
    reports: tuple[ControllerClient, list[LogLine]],
) -> None:
    client, seen = reports
    task_id, result = await _run(client, report_tasks.sync_replaces)
    assert result.ok  # type: ignore[attr-defined]
    failed_id, failed = await _run(client, report_tasks.fails_after_logging)
    assert not failed.ok  # type: ignore[attr-defined]
    plain_id, plain = await _run(client, report_tasks.no_report)
    assert plain.ok  # type: ignore[attr-defined]
    (only,) = _reports(seen, task_id)
    assert "<p>only this</p>" in only and "<p>first</p>" not in only
    (last,) = _reports(seen, failed_id)
    assert "<p>before the error</p>" in last
    assert _reports(seen, plain_id) == []
