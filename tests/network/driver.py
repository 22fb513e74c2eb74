"""A client of the network tests, run on the client host: ``python -m tests.network.driver``.

It submits tasks of :mod:`tests.network.fault_tasks` to a controller through the
SDK's client (:class:`~reuse_runtime.client.ControllerClient`), waits for every
result (bounded by ``--timeout``), and prints one JSON line: what it submitted, what
came back, the results its client received twice, and the client's reconnect
events with their times. Credentials come from the environment
(``REUSE_RUNTIME_TOKEN``, ``REUSE_RUNTIME_TLS_*``), as for any client.

``--parents P --children N``: P parents, each gathering N children (``fanout``).
``--flat N``: N top-level ``timed`` tasks, submitted at once (a throughput).
``--run``: one parent (``run_fanout``, on the controller's own replicas) as a run the
controller owns (``flyte.run``, Flyte's API), followed until its result: the client
may go away meanwhile, the run goes on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from typing import Any

from reuse_runtime.client import ControllerClient
from reuse_runtime.model import Submission
from reuse_runtime.security import Security
from tests.network.fault_tasks import fanout, run_fanout, timed


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    events: list[tuple[float, str]] = []

    def on_event(line: str) -> None:
        events.append((time.time(), line))
        print(f"driver: {line}", file=sys.stderr, flush=True)

    run_id = f"net-{secrets.token_hex(3)}"
    async with ControllerClient(args.controller, Security.from_env(), on_event=on_event) as client:
        await client.wait_ready(30)
        if args.flat:
            key = await client.register(timed.environment_spec())
            calls = [(timed, (i, args.seconds, args.log)) for i in range(args.flat)]
        else:
            key = await client.register(fanout.environment_spec())
            calls = [(fanout, (args.children, args.seconds, args.log, args.pad))] * args.parents
        began = time.time()
        futures = []
        for task, call in calls:
            spec = task.task_spec(call, {}, run_id=run_id)
            futures.append(client.submit(Submission(key, spec)))
        print("submitted", flush=True)
        done, pending = await asyncio.wait(futures, timeout=args.timeout)
        ended = time.time()
        succeeded, failures = 0, []
        for future in done:
            result = future.result() if future.exception() is None else None
            if result is None:
                failures.append(f"{type(future.exception()).__name__}: {future.exception()}")
            elif not result.ok:
                failures.append(f"{result.state.name}: {result.error}")
            else:
                value = result.unwrap()
                expected = list(range(args.children)) if not args.flat else None
                if expected is None or value == expected:
                    succeeded += 1
                else:
                    failures.append(f"wrong result: {str(value)[:200]}")
        for future in pending:
            future.cancel()
        return {
            "submitted": len(futures),
            "succeeded": succeeded,
            "failures": failures[:10],
            "unfinished": len(pending),
            "duplicates": client.duplicate_results,
            "began": began,
            "ended": ended,
            "events": events,
        }


def owned_run(args: argparse.Namespace) -> dict[str, Any]:
    """One parent as a run the controller owns, through Flyte's API; waited for (bounded)."""
    import reuse_runtime as flyte

    flyte.init(endpoint=args.controller)
    began = time.time()
    run = flyte.run(run_fanout, n=args.children, seconds=args.seconds, log=args.log)
    print("submitted", run.name, flush=True)
    run.wait(quiet=True, timeout=args.timeout)
    ended = time.time()
    value = run.outputs()[0] if run.status == "succeeded" else None
    return {
        "submitted": 1,
        "succeeded": int(value == list(range(args.children))),
        "failures": [] if value is not None else [run.status],
        "unfinished": 0,
        "duplicates": 0,  # one result, from the run's record; the parent counts its own
        "began": began,
        "ended": ended,
        "events": [],
        "run": run.name,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--controller", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--parents", type=int, default=1)
    parser.add_argument("--children", type=int, default=0)
    parser.add_argument("--flat", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--pad", type=int, default=0, help="bytes of arguments per child")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--run", action="store_true", help="one parent, as a run (flyte.run)")
    args = parser.parse_args()
    report = owned_run(args) if args.run else asyncio.run(drive(args))
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
