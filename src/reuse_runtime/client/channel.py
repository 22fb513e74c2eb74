"""Channels to a worker or controller, call credentials, and what a failed call means.

:func:`rpc_failure` is the one place a failed call becomes the error a caller sees;
:func:`tcp_failure` says why a channel does not connect.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import grpc

from reuse_runtime.address import Address
from reuse_runtime.aio import wait_within
from reuse_runtime.errors import AuthError, ControllerUnavailableError, ReuseRuntimeError
from reuse_runtime.security import Security
from reuse_runtime.wire import stubs
from reuse_runtime.wire.batching import MAX_MESSAGE_BYTES

Metadata = stubs.Metadata


def open_channel(
    address: str,
    security: Security,
    extra: Sequence[tuple[str, int | str]] = (),
    *,
    keepalive_timeout: float = 5.0,
) -> grpc.aio.Channel:
    """A channel to ``address``; ``extra``: more gRPC channel arguments. A peer silent
    for ``keepalive_timeout`` seconds (no answer to a keepalive ping, nothing sent
    acknowledged) is dropped."""
    options: list[tuple[str, int | str]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 10_000),
        ("grpc.keepalive_timeout_ms", round(keepalive_timeout * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # A restarted controller is found within a couple of seconds.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2_000),
        # What gRPC takes for the time one connection attempt may last: a TLS handshake
        # over a slow link fits (200 ms did not, at 50 ms of round trip), and an attempt
        # into a partition gives up soon, so the next one finds the network healed.
        ("grpc.min_reconnect_backoff_ms", 5_000),
        *extra,
    ]
    if security.tls is not None:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=security.tls.ca,
            private_key=security.tls.key,
            certificate_chain=security.tls.cert,
        )
        return grpc.aio.secure_channel(address, credentials, options=options)
    return grpc.aio.insecure_channel(address, options=options)


def call_metadata(security: Security) -> Metadata:
    return (("authorization", f"Bearer {security.token}"),) if security.token else ()


async def check_health(address: str, security: Security, timeout: float = 5.0) -> str:
    """The standard gRPC health status of a worker or controller, e.g. ``"SERVING"``.

    Health checks need no token, so this works wherever the port is reachable.
    """
    async with open_channel(address, security) as channel:
        return await stubs.health_status(channel, timeout)


#: What :func:`tcp_failure` says when the host is up and nothing listens on the port.
CONNECTION_REFUSED = "connection refused"


async def tcp_failure(address: Address, timeout: float) -> str:
    """Why a TCP connection to ``address`` does not open within ``timeout``; "" if one does.

    gRPC only says a channel is not ready; this says why, from the kernel: the name
    does not resolve, the connection times out (no such host, or a firewall drops
    it), or :data:`CONNECTION_REFUSED`: every address the name resolves to answered
    that nothing listens on the port. A connection that opens is closed at once,
    with nothing sent on it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        found = await wait_within(
            loop.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM), timeout
        )
    except socket.gaierror as exc:
        return f"the name {address.host} does not resolve: {exc.strerror}"
    except (OSError, asyncio.TimeoutError):
        return f"the name {address.host} did not resolve within {timeout:g} s"
    why = f"the name {address.host} resolves to no address"
    for family, _, _, _, sockaddr in found:
        try:
            transport, _ = await wait_within(
                loop.create_connection(
                    asyncio.Protocol, str(sockaddr[0]), address.port, family=family
                ),
                max(0.0, deadline - loop.time()),
            )
        except ConnectionRefusedError:
            why = CONNECTION_REFUSED
            continue
        except asyncio.TimeoutError:
            return "connecting timed out: is the host up, and the port open to this machine?"
        except OSError as exc:
            return exc.strerror or str(exc)
        transport.close()
        return ""
    return why


def describe_rpc_error(exc: BaseException, target: str) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{target}: {exc.code().name}: {exc.details()}"
    return f"{target}: {type(exc).__name__}: {exc}"


def refused(exc: BaseException) -> bool:
    """Whether the server refused our credentials (no retry can help)."""
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() is grpc.StatusCode.UNAUTHENTICATED


def failed_by_server(error: BaseException | None) -> bool:
    """Whether a stream broke with a status of the server's own, not a lost connection."""
    return isinstance(error, grpc.aio.AioRpcError) and error.code() not in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
    )


def rpc_failure(exc: BaseException, target: str) -> ReuseRuntimeError:
    """The error a caller sees for a failed call to ``target`` ("controller at ADDR").

    The one place that turns a refused token into :class:`AuthError`.
    """
    if isinstance(exc, ReuseRuntimeError):
        return exc
    if refused(exc):
        assert isinstance(exc, grpc.aio.AioRpcError)
        sent = not (exc.details() or "").startswith("missing")
        return AuthError(
            f"the {target} refused the token ({'it does not match' if sent else 'none was sent'})"
            f": set REUSE_RUNTIME_TOKEN (or --token, or token in the config file) to that "
            f"server's token"
        )
    return ControllerUnavailableError(describe_rpc_error(exc, target))
