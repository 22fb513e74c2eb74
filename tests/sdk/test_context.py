"""``flyte.ctx()``, ``flyte.group()``, ``flyte.custom_context()`` and ``flyte.logger``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import reuse_runtime as flyte
from tests.helpers import run_python


def test_outside_a_task_the_context_is_falsy_and_empty() -> None:
    assert not flyte.ctx()
    assert flyte.ctx().action is None and flyte.ctx().custom_context is None
    assert flyte.get_custom_context() == {}
    with flyte.group("nothing"), flyte.custom_context(a="b"):
        pass


def test_context_groups_custom_context_and_log_records_inside_tasks(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        textwrap.dedent(
            """
            import asyncio, json, logging, subprocess, sys
            import reuse_runtime as flyte

            env = flyte.TaskEnvironment(
                name="ctxenv", reusable=flyte.ReusePolicy(replicas=1, concurrency=8)
            )
            records = []

            class Keep(logging.Handler):
                def emit(self, record):
                    records.append((record.run_name, record.action_name))

            @env.task
            async def leaf(i: int) -> dict:
                c = flyte.ctx()
                return {"i": i, "custom": flyte.get_custom_context(), "run": c.action.run_name,
                        "group": c.group_data.name if c.group_data else None,
                        "attempt": c.attempt_number}

            @env.task
            async def main() -> dict:
                c = flyte.ctx()
                logging.getLogger("mine").addHandler(Keep())
                logging.getLogger("mine").warning("from main")
                flyte.logger.info("logged by %s", "main")
                with flyte.group("fetch"):
                    grouped = await asyncio.gather(*(leaf(i) for i in range(3)))
                with flyte.custom_context(team="ml"):
                    tagged = await leaf(9)
                plain = await leaf(10)
                return {"me": [c.action.name, c.action.run_name, bool(c), c.task_name],
                        "grouped": grouped, "tagged": tagged, "plain": plain,
                        "records": records}

            if __name__ == "__main__":
                r = flyte.with_runcontext(name="ctx-run", custom_context={"who": "me"}).run(main)
                out = r.outputs()[0]
                print(json.dumps(out))
                status = subprocess.run([sys.executable, "-m", "reuse_runtime", "status",
                                         "--json"], capture_output=True, text=True, check=True)
                env = [e for e in json.loads(status.stdout)["environments"]
                       if e["name"] == "ctxenv"][0]
                print(json.dumps(env["groups"]))
            """
        ),
    )
    assert done.returncode == 0, done.stderr
    first, groups = done.stdout.splitlines()[-2:]
    out = json.loads(first)
    action, run, truthy, task_name = out["me"]
    assert run == "ctx-run" and truthy and task_name == "main" and len(action) == 32
    assert [g["group"] for g in out["grouped"]] == ["fetch"] * 3
    assert all(g["run"] == "ctx-run" for g in out["grouped"])
    assert out["grouped"][0]["custom"] == {"who": "me"}  # the run's, inherited
    assert out["tagged"]["custom"] == {"who": "me", "team": "ml"}
    assert out["plain"]["custom"] == {"who": "me"} and out["plain"]["group"] is None
    assert out["plain"]["attempt"] == 0
    assert out["records"] == [["ctx-run", action]]
    assert json.loads(groups) == [{"name": "fetch", "running": 0, "succeeded": 3, "failed": 0}]
    # Output lines carry the group; flyte.logger reaches the caller like print().
    assert "[main] INFO logged by main" in done.stderr
