"""Count gRPC messages and tasks per hop, in every process of a run (a diagnostic).

    REUSE_BENCH_COUNT_MESSAGES=1 PYTHONPATH=benchmarks/diagnostics:. \\
        python -m benchmarks.sdk_probe gather --n 50000

Python imports ``sitecustomize`` at start-up from ``PYTHONPATH``; the embedded
controller gives its replicas the driver's path, so the driver and every replica
load this file. With the variable set, each process prints at exit, on stderr
(a replica's stderr is in its log under ``$REUSE_RUNTIME_HOME/replicas/``)::

    COUNTS pid=... {"dispatch": [messages, tasks], ...}

Hops: ``submit`` (a client's Submit batches: the driver's and the parent task's),
``dispatch`` (controller to replica), ``result`` (replica to controller),
``submit_event`` (controller to client). Few tasks per message means the per-message
overhead dominates: a healthy 50k run carries ~100 tasks per dispatch and result.

It wraps private functions of ``reuse_runtime.wire``: update it when they move.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from typing import Any

if os.environ.get("REUSE_BENCH_COUNT_MESSAGES"):
    from reuse_runtime.wire import clients, services

    counts: dict[str, list[int]] = {}

    def _count(hop: str, tasks: int) -> None:
        entry = counts.setdefault(hop, [0, 0])
        entry[0] += 1
        entry[1] += tasks

    submit_batch = clients._submit_batch
    submit_events = services._submit_events
    send_results = clients.ControllerConnection.send_results
    replica_messages = services.ReplicaStream.messages

    def _submit_batch(items: Any, cancels: Any) -> Any:
        _count("submit", len(items))
        return submit_batch(items, cancels)

    def _submit_events(results: Any, logs: Any) -> Any:
        _count("submit_event", len(results))
        return submit_events(results, logs)

    def _send_results(self: Any, results: Any, logs: Any) -> None:
        _count("result", len(results))
        send_results(self, results, logs)

    async def _messages(self: Any) -> Any:
        async for message in replica_messages(self):
            if message.WhichOneof("kind") == "dispatch":
                _count("dispatch", len(message.dispatch.tasks))
            yield message

    clients._submit_batch = _submit_batch
    services._submit_events = _submit_events
    clients.ControllerConnection.send_results = _send_results  # type: ignore[method-assign]
    services.ReplicaStream.messages = _messages  # type: ignore[method-assign]

    def _report() -> None:
        if counts:
            print(f"COUNTS pid={os.getpid()} {json.dumps(counts)}", file=sys.stderr, flush=True)

    atexit.register(_report)
