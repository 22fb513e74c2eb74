"""The floor for moving large payloads: a loopback TCP relay of pickled frames.

    python -m benchmarks.relay --n 1000 --size 1048576 [--window 100]

Three processes, as in the runtime (driver, controller, replica): this process
sends ``n`` length-prefixed frames, each ``cloudpickle.dumps(((payload,), {}))``
with a ``size``-byte payload, with ``window`` in flight, to a relay subprocess;
the relay forwards each frame to a worker subprocess, which unpickles it and
replies with ``pickle.dumps(bytes(size))``; the relay forwards the reply back, and
this process unpickles it. No gRPC, protobuf or controller logic: what any
runtime must pay to carry these bytes this way. Reports tasks/s, the peak RSS
of the three processes, and their CPU (user + system) per task.

With small frames (``--size 8``) it is also a floor for the runtime's CPU per task
(``benchmarks.run``'s floor section): the same three hops with asyncio streams.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pickle
import struct
import time
from typing import Any

import cloudpickle

from benchmarks.harness import RssSampler, cpu_seconds, emit, spawn_server

HEADER = struct.Struct("!I")
LIMIT = 2**23  # stream buffer: a 1 MiB frame in few reads


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (length,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    return await reader.readexactly(length)


def _write_frame(writer: asyncio.StreamWriter, frame: bytes) -> None:
    writer.write(HEADER.pack(len(frame)))
    writer.write(frame)


async def _serve(handle: Any) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=LIMIT)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        await server.serve_forever()


def worker() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                args, _ = pickle.loads(await _read_frame(reader))
                _write_frame(writer, pickle.dumps(bytes(len(args[0]))))
                await writer.drain()

    _run(_serve(handle))


def relay(worker_port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", worker_port, limit=LIMIT)

        async def back() -> None:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while True:
                    _write_frame(writer, await _read_frame(up_reader))
                    await writer.drain()

        returning = asyncio.create_task(back())
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                _write_frame(up_writer, await _read_frame(reader))
                await up_writer.drain()
        returning.cancel()

    _run(_serve(handle))


def _run(main: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def drive(port: int, n: int, size: int, window: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=LIMIT)
    payload = os.urandom(size)
    room = asyncio.Semaphore(window)
    received = 0

    async def receive() -> None:
        nonlocal received
        for _ in range(n):
            value = pickle.loads(await _read_frame(reader))
            if len(value) != size:
                raise RuntimeError("wrong reply")
            received += 1
            room.release()

    began = time.perf_counter()
    receiving = asyncio.create_task(receive())
    for _ in range(n):
        await room.acquire()
        _write_frame(writer, cloudpickle.dumps(((payload,), {})))
        await writer.drain()
    await asyncio.wait_for(receiving, 300)
    elapsed = time.perf_counter() - began
    writer.close()
    return n / elapsed


def measure(n: int, size: int, window: int) -> dict[str, Any]:
    worker_process, worker_port = spawn_server("benchmarks.relay", "--serve-worker")
    relay_process, relay_port = spawn_server("benchmarks.relay", "--serve-relay", str(worker_port))
    try:
        pids = {"driver": os.getpid(), "relay": relay_process.pid, "worker": worker_process.pid}
        before = cpu_seconds(list(pids.values()))
        with RssSampler(interval_s=0.02, list_every_s=0.2) as rss:
            rate = _run(drive(relay_port, n, size, window))
        after = cpu_seconds(list(pids.values()))
        cpu = {name: (after[pid] - before[pid]) / n * 1e6 for name, pid in pids.items()}
        return {
            "n": n,
            "size": size,
            "window": window,
            "tasks_per_s": rate,
            "rss_peaks": sorted(rss.peaks.values(), reverse=True),
            "cpu_us_per_task": cpu,
            "cpu_us_per_task_total": sum(cpu.values()),
        }
    finally:
        for process in (relay_process, worker_process):
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=2**20)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--serve-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-relay", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_worker:
        worker()
    elif args.serve_relay:
        relay(args.serve_relay)
    else:
        emit(measure(args.n, args.size, args.window))


if __name__ == "__main__":
    main()
