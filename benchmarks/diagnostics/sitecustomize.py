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

More, for a closer look:

* ``REUSE_BENCH_TRACE_SIZES=1``: also print every message's task count, in order
  (``TRACE pid=... hop [sizes]``), and per replica for the dispatch hop.
* ``REUSE_BENCH_TRACE_LIMITER=1``: how many task slots were waited for (``LIMITER``).
* ``REUSE_BENCH_TRACE_EVENTS=DIR``: each replica writes ``DIR/events-<pid>.json``, a
  timeline ``[ms, event, tasks]`` of tasks in (``in``), result batches out (``out``) and
  messages handed to grpc (``wire:<kind>``): shows a batch of tasks coming back in pieces.

It wraps private functions of ``reuse_runtime.wire`` and ``reuse_runtime.client``:
update it when they move.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from typing import Any

if os.environ.get("REUSE_BENCH_COUNT_MESSAGES"):
    from reuse_runtime.client import connection, controller
    from reuse_runtime.wire import services

    counts: dict[str, list[int]] = {}
    # REUSE_BENCH_TRACE_SIZES=1 also keeps each message's task count, in order.
    trace: dict[str, list[int]] | None = {} if os.environ.get("REUSE_BENCH_TRACE_SIZES") else None

    def _count(hop: str, tasks: int) -> None:
        entry = counts.setdefault(hop, [0, 0])
        entry[0] += 1
        entry[1] += tasks
        if trace is not None:
            trace.setdefault(hop, []).append(tasks)

    submit_batch = controller.ControllerClient._submit_batch
    submit_events = services._submit_events
    send_results = connection.ControllerConnection.send_results
    replica_messages = services.ReplicaStream.messages

    def _submit_batch(self: Any, items: Any, cancels: Any) -> Any:
        _count("submit", len(items))
        return submit_batch(self, items, cancels)

    def _submit_events(results: Any, logs: Any, returned: Any) -> Any:
        _count("submit_event", len(results))
        return submit_events(results, logs, returned)

    def _send_results(self: Any, results: Any, logs: Any) -> None:
        _count("result", len(results))
        send_results(self, results, logs)

    async def _messages(self: Any) -> Any:
        async for message in replica_messages(self):
            bare = getattr(message, "message", message)  # a splice.Spliced one, or itself
            if bare.WhichOneof("kind") == "dispatch":
                _count("dispatch", len(bare.dispatch.tasks))
                if trace is not None:
                    trace.setdefault(f"dispatch:{self.hello.replica_id}", []).append(
                        len(bare.dispatch.tasks)
                    )
            yield message

    controller.ControllerClient._submit_batch = _submit_batch  # type: ignore[method-assign]
    services._submit_events = _submit_events
    connection.ControllerConnection.send_results = _send_results  # type: ignore[method-assign]
    services.ReplicaStream.messages = _messages  # type: ignore[method-assign]

    def _report() -> None:
        if counts:
            print(f"COUNTS pid={os.getpid()} {json.dumps(counts)}", file=sys.stderr, flush=True)
        for hop, sizes in (trace or {}).items():
            print(f"TRACE pid={os.getpid()} {hop} {json.dumps(sizes)}", file=sys.stderr, flush=True)

    atexit.register(_report)

if os.environ.get("REUSE_BENCH_TRACE_LIMITER"):
    from reuse_runtime.worker import limiter as _limiter_mod

    _waits = [0, 0]
    _acquire = _limiter_mod.TaskLimiter.acquire

    async def _traced_acquire(self: Any) -> None:
        _waits[0] += 1
        if not (self._active < self._capacity and not self._waiters):
            _waits[1] += 1
        await _acquire(self)

    _limiter_mod.TaskLimiter.acquire = _traced_acquire  # type: ignore[method-assign]

    def _report_waits() -> None:
        print(f"LIMITER pid={os.getpid()} acquires={_waits[0]} waited={_waits[1]}", file=sys.stderr)

    atexit.register(_report_waits)

if os.environ.get("REUSE_BENCH_TRACE_EVENTS"):
    import time as _time

    from reuse_runtime.client import connection as _connection
    from reuse_runtime.worker import servicer as _servicer

    _events: list[tuple[float, str, int]] = []
    _submit = _servicer.TaskSession.submit
    _send = _connection.ControllerConnection.send_results
    _reqs = _connection.ControllerConnection._requests

    def _traced_submit(self: Any, spec: Any) -> None:
        _events.append((_time.perf_counter(), "in", 1))
        _submit(self, spec)

    def _traced_send(self: Any, results: Any, logs: Any) -> None:
        _events.append((_time.perf_counter(), "out", len(results)))
        _send(self, results, logs)

    async def _traced_reqs(self: Any) -> Any:
        async for m in _reqs(self):
            kind = "wire:" + m.WhichOneof("kind")
            _events.append((_time.perf_counter(), kind, len(m.results.results)))
            yield m

    _servicer.TaskSession.submit = _traced_submit  # type: ignore[method-assign]
    _connection.ControllerConnection.send_results = _traced_send  # type: ignore[method-assign]
    _connection.ControllerConnection._requests = _traced_reqs  # type: ignore[method-assign]

    def _report_events() -> None:
        if not _events:
            return
        merged: list[list[Any]] = []
        t0 = _events[0][0]
        for t, kind, n in _events:
            if merged and merged[-1][1] == kind and kind == "in":
                merged[-1][2] += n
            else:
                merged.append([round((t - t0) * 1e3, 2), kind, n])
        path = os.path.join(os.environ["REUSE_BENCH_TRACE_EVENTS"], f"events-{os.getpid()}.json")
        with open(path, "w") as out:
            json.dump(merged, out)

    atexit.register(_report_events)
