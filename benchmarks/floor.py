"""The floor of the seed gather's shape: three processes, four small frames per task.

    python -m benchmarks.floor [--n 50000] [--window 0]

A client (this process), a middle process and a worker process, over loopback TCP
with uvloop: what a client -> controller -> replica -> controller -> client round
trip costs when nothing else is done. Per task the client sends one frame,
``cloudpickle.dumps(((i,), {}))`` with a request id; the middle reads it and writes it
on to the worker; the worker unpickles it, calls a noop and writes back the pickled
result; the middle writes that back to the client, which unpickles it. One frame per
task on every hop, each its own write (no batching of tasks into one message: the
transport may still coalesce writes, as it does for everyone). Pipelined like a
gather: ``--window`` tasks in flight (0: all ``n`` at once).

Measured: tasks/s, and CPU (user + system, from ``/proc``) per task of each process
and in total. That total is what the runtime's CPU per task is compared with
(``benchmarks.run``'s floor section): absolute microseconds differ from day to day
and machine to machine, the ratio to a floor measured in the same run does not.

Reports one JSON object (``harness.emit``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import pickle
import signal
import subprocess
import time
from typing import Any, cast

import cloudpickle
import psutil
import uvloop

from benchmarks.harness import emit, spawn_server
from benchmarks.limit import HEADER, FrameReader, noop


class Worker(asyncio.Protocol):
    """Answers each frame on its own: unpickle, call, pickle, write."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._reader = FrameReader()

    def data_received(self, data: bytes) -> None:
        write = self._transport.write
        for request_id, payload in self._reader.feed(data):
            args, kwargs = pickle.loads(payload)
            reply = pickle.dumps(noop(*args, **kwargs))
            write(HEADER.pack(len(reply), request_id) + reply)


class Middle(asyncio.Protocol):
    """The client's side of the middle: each frame goes on to the worker, each reply back."""

    def __init__(self, worker: tuple[str, int]) -> None:
        self._worker = worker
        self._upstream: asyncio.Transport | None = None
        self._early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._reader = FrameReader()
        self._connecting = asyncio.ensure_future(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        upstream, _ = await loop.create_connection(lambda: Relay(self._transport), *self._worker)
        self._upstream = cast(asyncio.Transport, upstream)
        for frame in self._early:
            self._upstream.write(frame)
        self._early.clear()

    def data_received(self, data: bytes) -> None:
        for request_id, payload in self._reader.feed(data):
            frame = HEADER.pack(len(payload), request_id) + payload
            if self._upstream is None:
                self._early.append(frame)
            else:
                self._upstream.write(frame)


class Relay(asyncio.Protocol):
    """The worker's side of the middle: each reply frame goes back to the client."""

    def __init__(self, client: asyncio.Transport) -> None:
        self._client = client
        self._reader = FrameReader()

    def data_received(self, data: bytes) -> None:
        write = self._client.write
        for request_id, payload in self._reader.feed(data):
            write(HEADER.pack(len(payload), request_id) + payload)


class Client(asyncio.Protocol):
    """Sends tasks (one frame each) and counts the answers; each answer may send the next."""

    def __init__(self, n: int, window: int) -> None:
        self._n = n
        self._window = window or n
        self._sent = 0
        self._received = 0
        self._reader = FrameReader()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def start(self) -> None:
        for _ in range(min(self._window, self._n)):
            self._send()

    def _send(self) -> None:
        i = self._sent
        self._sent += 1
        payload = cloudpickle.dumps(((i,), {}))
        self._transport.write(HEADER.pack(len(payload), i) + payload)

    def data_received(self, data: bytes) -> None:
        for request_id, payload in self._reader.feed(data):
            if pickle.loads(payload) != request_id:
                self.done.set_exception(RuntimeError(f"wrong answer to {request_id}"))
                return
            self._received += 1
            if self._sent < self._n:
                self._send()
            elif self._received == self._n and not self.done.done():
                self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError("the middle closed the connection"))


async def serve(make: Any) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(make, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


async def drive(port: int, n: int, window: int) -> float:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_connection(lambda: Client(n, window), "127.0.0.1", port)
    try:
        began = time.perf_counter()
        client.start()
        await asyncio.wait_for(client.done, 300)
        return time.perf_counter() - began
    finally:
        transport.close()


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def measure(n: int, window: int, warmup: int) -> dict[str, Any]:
    worker, worker_port = spawn_server("benchmarks.floor", "--serve-worker")
    middle, middle_port = spawn_server("benchmarks.floor", "--serve-middle", str(worker_port))
    try:
        procs = {
            "client": psutil.Process(),
            "middle": psutil.Process(middle.pid),
            "worker": psutil.Process(worker.pid),
        }
        uvloop.run(drive(middle_port, warmup, window))
        before = {k: _cpu(p) for k, p in procs.items()}
        elapsed = uvloop.run(drive(middle_port, n, window))
        used = {k: _cpu(p) - before[k] for k, p in procs.items()}
    finally:
        for process in (middle, worker):
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
            if process.poll() is None:
                process.kill()
                process.wait()
    return {
        "n": n,
        "window": window,
        "elapsed_s": elapsed,
        "tasks_per_s": n / elapsed,
        "cpu_us_per_task": {k: v / n * 1e6 for k, v in used.items()},
        "cpu_us_per_task_total": sum(used.values()) / n * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--window", type=int, default=0, help="tasks in flight; 0: all at once")
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--serve-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-middle", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_worker:
        uvloop.run(serve(Worker))
    elif args.serve_middle:
        worker = ("127.0.0.1", args.serve_middle)
        uvloop.run(serve(lambda: Middle(worker)))
    else:
        emit(measure(args.n, args.window, args.warmup))


if __name__ == "__main__":
    main()
