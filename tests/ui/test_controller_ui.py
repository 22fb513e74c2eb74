"""The web UI a real controller serves: its replicas and pool events, and the abort."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest

from reuse_runtime.controller.server import ControllerConfig
from reuse_runtime.model import REPORT_STREAM, Submission, TaskState
from reuse_runtime.runinfo import ActionPhase, NewRun
from tests.controller import tasks
from tests.helpers import eventually, running_controller, submit, until_in_flight
from tests.sdk import condition_tasks, report_tasks
from tests.ui.conftest import csrf_of, session


async def _login(ui_url: str, token: str) -> Any:
    browser = session()
    response = await browser.post(f"{ui_url}/login", data={"token": token}, allow_redirects=False)
    assert response.status == 303
    return browser


async def test_the_environments_page_shows_replicas_with_their_backend_and_events() -> None:
    async with running_controller(ui_port=0) as (server, client):
        url = await server.ui_ready()  # type: ignore[attr-defined]
        assert url.startswith("http://127.0.0.1:")
        assert (await (await submit(client, tasks.slow, 0.0))).ok  # type: ignore[attr-defined]
        async with await _login(url, server.security.token) as browser:  # type: ignore[attr-defined]
            panel = await (await browser.get(f"{url}/api/environments/panel")).text()
            (replica,) = server.service.pools[next(iter(server.service.pools))].replicas.values()  # type: ignore[attr-defined]
            assert ">single <span" in panel and replica.replica_id in panel
            assert f"pid {replica.handle.process.pid}" in panel  # the local backend's where
            assert ">started</span>" in panel and ">ready</span>" in panel
            page = await (await browser.get(f"{url}/environments")).text()
            assert 'data-environment="single"' in page and "tasks/s, queue length, replicas" in page


async def test_the_abort_ends_the_run_the_controller_owns_aborted() -> None:
    async with running_controller(ui_port=0) as (server, client):
        url = await server.ui_ready()  # type: ignore[attr-defined]
        book = server.runs  # type: ignore[attr-defined]
        spec = tasks.slow.task_spec((60.0,), {}, run_id="ui-abort")
        info = await book.create_run(
            NewRun("ui-abort", tasks.slow.environment_spec(), Submission("", spec))
        )
        assert info.url == f"{url}/runs/ui-abort"  # Run.url: the run's page
        owned = book.live["ui-abort"]
        await until_in_flight(client)
        async with await _login(url, server.security.token) as browser:  # type: ignore[attr-defined]
            page = await (await browser.get(f"{url}/runs/ui-abort")).text()
            assert 'id="abort"' in page
            token = await csrf_of(browser, f"{url}/runs/ui-abort")
            response = await browser.post(
                f"{url}/api/runs/ui-abort/abort", data={"csrf": token}, allow_redirects=False
            )
            assert response.status == 303
            # Until its task has gone, the page says it is being aborted, with no button.
            page = await (await browser.get(f"{url}/runs/ui-abort")).text()
            assert 'id="abort"' not in page
            assert 'id="aborting"' in page or "phase aborted" in page
            while owned.result is None:
                await asyncio.wait_for(owned.next_change(), 30)
            assert owned.result.state is TaskState.CANCELLED
            assert await asyncio.to_thread(book.store.flush, 30)
            shown = await (await browser.get(f"{url}/api/runs/ui-abort")).json()
            assert shown["phase"] == ActionPhase.ABORTED.value


async def test_a_pending_condition_is_shown_on_its_runs_page_and_signaled_from_it() -> None:
    async with running_controller(ui_port=0) as (server, _client):
        url = await server.ui_ready()  # type: ignore[attr-defined]
        book = server.runs  # type: ignore[attr-defined]
        task = condition_tasks.count
        spec = task.task_spec((), {}, run_id="ui-cond")
        await book.create_run(NewRun("ui-cond", task.environment_spec(), Submission("", spec)))
        owned = book.live["ui-cond"]
        (waiting,) = await eventually(lambda: book.conditions.list("ui-cond"), timeout=60)
        assert await asyncio.to_thread(book.store.flush, 30)
        async with await _login(url, server.security.token) as browser:  # type: ignore[attr-defined]
            page = await (await browser.get(f"{url}/runs/ui-cond")).text()
            assert f'id="condition-{waiting.action_id}"' in page and "How many?" in page
            token = await csrf_of(browser, f"{url}/runs/ui-cond")
            signal = f"{url}/api/runs/ui-cond/conditions/{waiting.action_id}/signal"
            bad = await browser.post(signal, data={"csrf": token, "value": "many"})
            assert bad.status == 400
            assert "expects an int: could not parse 'many' as int" in await bad.text()
            forged = await browser.post(signal, data={"csrf": "forged", "value": "41"})
            assert forged.status == 403
            done = await browser.post(
                signal, data={"csrf": token, "value": "41"}, allow_redirects=False
            )
            assert done.status == 303
            while owned.result is None:
                await asyncio.wait_for(owned.next_change(), 30)
            assert owned.result.ok and pickle.loads(owned.result.value) == 42


def test_a_ui_port_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"web UI port must be in 0\.\.65535"):
        ControllerConfig(ui_port=70000)


async def test_a_taken_ui_port_fails_the_start_unless_it_was_the_default() -> None:
    import socket

    from reuse_runtime.controller.server import ControllerServer
    from reuse_runtime.errors import ReuseRuntimeError

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        asked = ControllerServer(ControllerConfig(ui_port=port))
        try:
            with pytest.raises(ReuseRuntimeError, match=f"cannot listen on 127.0.0.1:{port}"):
                await asked.start()
        finally:
            await asked.close()
        async with running_controller(ui_port=port, ui_port_fallback=True) as (server, _):
            url = await server.ui_ready()  # type: ignore[attr-defined]
            assert url.startswith("http://127.0.0.1:") and not url.endswith(f":{port}")


async def test_a_runs_report_is_recorded_for_the_ui_and_is_no_line_to_follow() -> None:
    async with running_controller() as (server, _):
        book = server.runs  # type: ignore[attr-defined]
        spec = report_tasks.streams.task_spec((3,), {}, run_id="reported")
        await book.create_run(
            NewRun("reported", report_tasks.streams.environment_spec(), Submission("", spec))
        )
        owned = book.live["reported"]
        while owned.result is None:
            await asyncio.wait_for(owned.next_change(), 60)
        assert owned.result.state is TaskState.SUCCEEDED
        assert await asyncio.to_thread(book.store.flush, 30)
        report = book.store.action_report("reported", spec.task_id)
        assert report is not None and "<p>step 2</p>" in report.html
        assert "<b>all done</b>" in report.html
        # Followers (Run.wait, `reuse-runtime logs`) get the run's lines, not its report.
        assert all(line.stream != REPORT_STREAM for _, line in owned.lines)
        assert book.store.action_logs("reported", spec.task_id) == ()
