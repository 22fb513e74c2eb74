"""The controller client against a real controller on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time

import pytest

from reuse_runtime.address import parse_address
from reuse_runtime.client import ControllerClient
from reuse_runtime.client.channel import CONNECTION_REFUSED, tcp_failure
from reuse_runtime.client.controller import REFUSED_GRACE
from reuse_runtime.controller.server import ControllerConfig, ControllerServer
from reuse_runtime.errors import ControllerUnavailableError, PolicyError
from reuse_runtime.security import Security
from tests.controller import tasks
from tests.helpers import eventually, running_controller, submit
from tests.test_metrics import scrape, value


async def test_concurrent_first_registrations_share_one_rpc() -> None:
    """10k children started at once must not send 10k RegisterEnvironment calls: counted
    by the controller's own metric of the calls it took."""
    async with running_controller(metrics_port=0) as (server, client):
        service = server.service  # type: ignore[attr-defined]
        spec = tasks.child.environment_spec()
        url = server.metrics_url  # type: ignore[attr-defined]
        name = "reuse_runtime_environment_registrations_total"
        keys = await asyncio.wait_for(
            asyncio.gather(*(client.register(spec) for _ in range(2_000))),  # type: ignore[attr-defined]
            30,
        )
        assert set(keys) == set(service.pools) and len(service.pools) == 1
        _, samples = await scrape(url)
        assert value(samples, name, environment=spec.name) == 1
        # Known afterwards: no RPC at all.
        assert await client.register(spec) == keys[0]  # type: ignore[attr-defined]
        _, samples = await scrape(url)
        assert value(samples, name, environment=spec.name) == 1
        # Another client registers it again: one call more, so the metric counts calls.
        async with ControllerClient(server.address, server.security) as other:  # type: ignore[attr-defined]
            assert await other.register(spec) == keys[0]
        _, samples = await scrape(url)
        assert value(samples, name, environment=spec.name) == 2


async def test_a_failed_registration_is_retried_by_the_next_call() -> None:
    async with running_controller() as (_, client):
        good = tasks.child.environment_spec()
        bad = dataclasses.replace(good, name="not a valid name!")
        outcomes = await asyncio.gather(
            *(client.register(bad) for _ in range(50)),  # type: ignore[attr-defined]
            return_exceptions=True,
        )
        assert all(isinstance(o, PolicyError) for o in outcomes), outcomes
        assert "invalid environment" in str(outcomes[0]) and "name" in str(outcomes[0])
        with pytest.raises(PolicyError):
            await client.register(bad)  # type: ignore[attr-defined]
        assert await client.register(good)  # type: ignore[attr-defined]


# ------------------------------------------------------------ the first connection (issue 28)


def _refusing_port() -> socket.socket:
    """A bound, unlistened socket: its port is held, and a connection to it is refused."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    return held


def _black_hole() -> tuple[socket.socket, socket.socket]:
    """A port whose connections hang, as at a host that drops them: a listener with a
    backlog of one, filled by a connection nobody accepts (further SYNs are dropped)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname(), timeout=5)
    return listener, filler


async def test_nothing_listening_fails_in_about_a_second_saying_so() -> None:
    with _refusing_port() as held:
        port = held.getsockname()[1]
        async with ControllerClient(f"dns:///127.0.0.1:{port}") as client:
            started = time.monotonic()
            with pytest.raises(ControllerUnavailableError) as raised:
                await client.wait_ready(timeout=10)
            took = time.monotonic() - started
    assert str(raised.value).startswith(
        f"nothing listens on 127.0.0.1:{port} (connection refused): is the controller running?"
    )
    assert REFUSED_GRACE <= took < REFUSED_GRACE + 3, took  # not the 10 s bound


async def test_a_host_that_does_not_answer_keeps_its_bound() -> None:
    listener, filler = _black_hole()
    with listener, filler:
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        assert await tcp_failure(parse_address(address), 0.5) == (
            "connecting timed out: is the host up, and the port open to this machine?"
        )
        async with ControllerClient(address) as client:
            started = time.monotonic()
            with pytest.raises(ControllerUnavailableError) as raised:
                await client.wait_ready(timeout=2.5)
            took = time.monotonic() - started
    assert str(raised.value) == (
        f"no controller answered at {address} within 2.5 s (connecting timed out: is the "
        f"host up, and the port open to this machine?)"
    )
    assert 2.5 <= took < 5, took


async def test_a_restarted_controller_is_waited_for_though_it_refuses_meanwhile() -> None:
    """Only a new client's first connection fails fast: while its controller restarts,
    connections are refused, and the client keeps waiting for it, then sends again."""
    security = Security(token="first-connection-test")
    first = ControllerServer(ControllerConfig(security=security))
    await first.start()
    events: list[str] = []
    try:
        client = ControllerClient(f"dns:///{first.address}", security, on_event=events.append)
        async with client:
            await client.wait_ready()
            assert (await (await submit(client, tasks.child, 1))).unwrap() == 2
            await first.close()
            where = parse_address(client.address)
            assert await tcp_failure(where, 1.0) == CONNECTION_REFUSED
            pending = asyncio.ensure_future(_run(client, tasks.child, 2))
            await eventually(lambda: client.reconnecting, what="the client to wait")
            await asyncio.sleep(REFUSED_GRACE + 0.5)  # down for longer than a new client waits
            assert await tcp_failure(where, 1.0) == CONNECTION_REFUSED
            assert not pending.done() and client.reconnecting
            second = ControllerServer(ControllerConfig(port=where.port, security=security))
            await second.start()
            try:
                result = await asyncio.wait_for(pending, 60)
            finally:
                await second.close()
    finally:
        await first.close()
    assert result == 3
    assert events[0].startswith(f"lost the controller at {client.address}")
    assert events[-1].startswith(f"the controller at {client.address} is back")


async def _run(client: ControllerClient, task: object, *args: object) -> object:
    return (await (await submit(client, task, *args))).unwrap()  # type: ignore[attr-defined]


async def test_an_ipv6_controller_is_reached_in_flytes_form() -> None:
    async with running_controller(host="::1") as (server, _):
        address = f"dns:///[::1]:{server.port}"  # type: ignore[attr-defined]
        async with ControllerClient(address, server.security) as client:  # type: ignore[attr-defined]
            await client.wait_ready(timeout=10)
            assert client.address == f"[::1]:{server.port}"  # type: ignore[attr-defined]
            assert (await (await submit(client, tasks.child, 41))).unwrap() == 42
