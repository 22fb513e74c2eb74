"""A replica whose process is gone while its stream stays open (a connection cut without
a FIN, as when a pod's network is torn down): the backend's word that it ended is final."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import pytest

from tests.controller import tasks
from tests.helpers import running_controller, submit, until_in_flight


class HalfOpenProxy:
    """Forwards 127.0.0.1:PORT to the controller; when a replica's side closes, the
    controller's side is left open and silent (a half-open connection)."""

    def __init__(self) -> None:
        self.target = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._held: list[asyncio.StreamWriter] = []

    async def start(self) -> HalfOpenProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._held.append(up_writer)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()

        # Replica -> controller ends without closing the controller's side.
        back = asyncio.ensure_future(pipe(up_reader, writer))
        await pipe(reader, up_writer)
        back.cancel()
        writer.close()

    async def close(self) -> None:
        for writer in self._held:
            writer.close()
        if self._server is not None:
            self._server.close()


@pytest.mark.slow  # 15-25 s of the default suite's budget: CI's slow suite runs it
async def test_a_replica_gone_with_its_stream_still_open_is_dropped_and_its_task_retried() -> None:
    proxy = await HalfOpenProxy().start()
    try:
        async with running_controller(advertise_address=f"127.0.0.1:{proxy.port}") as (
            server,
            client,
        ):
            proxy.target = int(server.address.rsplit(":", 1)[1])  # type: ignore[attr-defined]
            first = await (await submit(client, tasks.interval, 0.01))
            pid = first.unwrap()[2]  # type: ignore[attr-defined]
            running = await submit(client, tasks.interval, 3.0, retries=0)
            await until_in_flight(client)
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            result = await asyncio.wait_for(running, 60)  # type: ignore[arg-type]
            took = time.monotonic() - killed
            status = await client.status()  # type: ignore[attr-defined]
    finally:
        await proxy.close()
    # Retried on another replica (a replica's loss is not the task's failure), not hung.
    assert result.unwrap()[2] != pid  # type: ignore[attr-defined]
    assert took < 60
    elastic = next(e for e in status.environments if e.name == "elastic")
    assert all(str(pid) not in r.where for r in elastic.replicas)
