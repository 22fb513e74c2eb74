"""The limit: a uvloop TCP echo of a task-shaped payload, the floor for Python dispatch.

    python -m benchmarks.limit [--n 100000] [--reps 3]

A server subprocess on 127.0.0.1 reads length-prefixed frames, each carrying a
request id and ``cloudpickle.dumps(((i,), {}))`` (a task's arguments), unpickles
them, calls a noop and answers with the id and the pickled result. The client
keeps ``--window`` requests in flight on one connection (and, for latency, one
at a time). No gRPC, no protobuf, no controller: what is left is the event loop,
the socket and pickling, which any Python dispatcher of this shape also pays.

Reports one JSON object (``harness.emit``): msgs/s with the window in flight, sequential p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import struct
import subprocess
import sys
import time
from typing import cast

import cloudpickle
import uvloop

from benchmarks.harness import emit

# Frame: payload length (u32), request id (u64), payload.
HEADER = struct.Struct("!IQ")


def noop(x: int) -> int:
    return x


class FrameReader:
    """Cuts a byte stream into ``(request id, payload)`` frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buffer = self._buffer
        buffer += data
        frames = []
        offset = 0
        size = len(buffer)
        while size - offset >= HEADER.size:
            length, request_id = HEADER.unpack_from(buffer, offset)
            end = offset + HEADER.size + length
            if end > size:
                break
            frames.append((request_id, bytes(buffer[offset + HEADER.size : end])))
            offset = end
        del buffer[:offset]
        return frames


class EchoServer(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._reader = FrameReader()

    def data_received(self, data: bytes) -> None:
        out = []
        for request_id, payload in self._reader.feed(data):
            args, kwargs = cloudpickle.loads(payload)
            reply = cloudpickle.dumps(noop(*args, **kwargs))
            out.append(HEADER.pack(len(reply), request_id))
            out.append(reply)
        if out:
            self._transport.write(b"".join(out))


async def serve() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(EchoServer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on 127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


class EchoClient(asyncio.Protocol):
    """Sends requests on one connection and resolves one future per request id."""

    def __init__(self) -> None:
        self._reader = FrameReader()
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._next_id = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        for request_id, payload in self._reader.feed(data):
            self._pending.pop(request_id).set_result(cloudpickle.loads(payload))

    def connection_lost(self, exc: Exception | None) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("the echo server closed the connection"))

    def call(self, x: int) -> asyncio.Future[int]:
        self._next_id += 1
        payload = cloudpickle.dumps(((x,), {}))
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        self._transport.write(HEADER.pack(len(payload), self._next_id) + payload)
        return future


async def throughput(client: EchoClient, n: int, window: int) -> float:
    """msgs/s with ``window`` requests in flight: each answer sends the next request.

    Callbacks, not a Task per request, so the floor carries no scheduling of its own.
    """
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    sent = received = 0

    def on_reply(future: asyncio.Future[int]) -> None:
        nonlocal received
        if future.exception() is not None:
            if not finished.done():
                finished.set_exception(future.exception())  # type: ignore[arg-type]
            return
        received += 1
        if sent < n:
            send()
        elif received == n:
            finished.set_result(None)

    def send() -> None:
        nonlocal sent
        client.call(sent).add_done_callback(on_reply)
        sent += 1

    started = time.perf_counter()
    for _ in range(min(window, n)):
        send()
    await asyncio.wait_for(finished, 120)
    return n / (time.perf_counter() - started)


async def sequential(client: EchoClient, n: int) -> tuple[float, float]:
    samples = []
    for i in range(n):
        begin = time.perf_counter()
        await asyncio.wait_for(client.call(i), 10)
        samples.append(time.perf_counter() - begin)
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e3, ordered[int(len(ordered) * 0.99)] * 1e3


async def measure(address: str, n: int, n_seq: int, window: int, reps: int) -> dict[str, object]:
    host, port = address.rsplit(":", 1)
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_connection(EchoClient, host, int(port))
    try:
        await throughput(client, min(n, 5000), window)  # warm up
        rates = [await throughput(client, n, window) for _ in range(reps)]
        latencies = [await sequential(client, n_seq) for _ in range(reps)]
    finally:
        transport.close()
    return {
        "n": n,
        "window": window,
        "msgs_per_s": rates,
        "seq_p50_ms": [p50 for p50, _ in latencies],
        "seq_p99_ms": [p99 for _, p99 in latencies],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--n-seq", type=int, default=5_000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help="run the server only")
    args = parser.parse_args()
    if args.serve:
        uvloop.run(serve())
        return
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.limit", "--serve"],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"echo server did not start: {line!r}")
        result = uvloop.run(measure(line.split()[-1], args.n, args.n_seq, args.window, args.reps))
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(5)
        if server.poll() is None:
            server.kill()
            server.wait()
    emit(result)


if __name__ == "__main__":
    main()
