"""``flyte.with_runcontext(...).run(...)`` and the ``.aio`` forms of run, wait and outputs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import reuse_runtime as flyte
from reuse_runtime.sdk import ignored
from tests.helpers import run_python


def test_settings_are_checked_and_backend_only_ones_warned_about() -> None:
    ignored._seen.clear()
    with pytest.raises(ValueError, match="dry_run"):
        flyte.with_runcontext(dry_run=True)
    with pytest.raises(ValueError, match="run name"):
        flyte.with_runcontext(name="../escape")
    with pytest.raises(TypeError, match="env_vars"):
        flyte.with_runcontext(env_vars={"A": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="overwrite_cach"):
        flyte.with_runcontext(overwrite_cach=True)  # type: ignore[call-arg]
    with pytest.warns(flyte.ReuseRuntimeWarning, match="service_account"):
        flyte.with_runcontext(service_account="robot")
    runner = flyte.with_runcontext(name="n1", env_vars={"A": "1"}, log_level="debug")
    assert runner.settings.log_level == 10 and runner.settings.env_vars == {"A": "1"}


def test_run_context_settings_reach_the_tasks(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        textwrap.dedent(
            """
            import asyncio, logging, os
            import reuse_runtime as flyte
            from reuse_runtime import paths, runlog

            env = flyte.TaskEnvironment(name="rc", reusable=flyte.ReusePolicy(replicas=1))

            @env.task
            async def child() -> str:
                return os.environ.get("STAGE", "-")

            @env.task
            async def main() -> list:
                flyte.logger.debug("debug line")
                return [os.environ.get("STAGE", "-"), await child(), flyte.ctx().action.run_name]

            async def driver() -> None:
                r = await flyte.with_runcontext(
                    name="staged", env_vars={"STAGE": "test"}, log_level=logging.DEBUG,
                    labels={"team": "ml"},
                ).run.aio(main)
                await r.wait.aio()
                print((await r.outputs.aio())[0])
                plain = await flyte.run.aio(main)
                print((await plain.outputs.aio())[0])
                log = runlog.find_run_log(paths.state_dir() / "runs", r.name)
                print(open(log).read().splitlines()[1])

            if __name__ == "__main__":
                asyncio.run(flyte.init_from_config.aio())
                asyncio.run(driver())
            """
        ),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "['test', 'test', 'staged']"
    assert lines[1].startswith("['-', '-', 'r")  # other runs keep the environment's pool
    assert lines[2] == "labels: team=ml"
    assert done.stderr.count("[main] DEBUG debug line") == 1  # only the run that asked
