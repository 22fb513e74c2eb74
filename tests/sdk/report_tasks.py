"""Tasks with reports, imported by the replicas of tests/sdk/test_report.py."""

from __future__ import annotations

import reuse_runtime as flyte
import reuse_runtime.report

env = flyte.TaskEnvironment("reports", reusable=flyte.ReusePolicy(replicas=1))


@env.task(report=True)
async def streams(steps: int) -> int:
    for step in range(steps):
        await flyte.report.log.aio(f"<p>step {step}</p>", do_flush=True)
    tab = flyte.report.get_tab("Totals")
    tab.log("<b>all done</b>")
    return steps


@env.task(report=True)
def sync_replaces() -> str:
    flyte.report.log("<p>first</p>")
    flyte.report.replace("<p>only this</p>")
    return "ok"


@env.task(report=True)
async def fails_after_logging() -> None:
    await flyte.report.log.aio("<p>before the error</p>")
    raise ValueError("boom")


@env.task
async def no_report() -> int:
    flyte.report.log("<p>nobody sees this</p>")
    flyte.report.flush()
    return 1
