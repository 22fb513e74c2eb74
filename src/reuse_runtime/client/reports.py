"""A replica's reports sent from a plain thread, for when its event loop is blocked."""

from __future__ import annotations

import threading

import grpc

from reuse_runtime import model
from reuse_runtime.client.channel import call_metadata
from reuse_runtime.security import Security
from reuse_runtime.wire import stubs


class ReportSender:
    """Sends a replica's report from a plain thread, over a blocking channel of its own.

    The replica's watchdog uses it while the event loop is blocked (the Connect
    stream lives on that loop), so ``status`` shows the blocked loop as it
    happens. Thread-safe; a failed send is dropped (the next heartbeat follows).
    """

    def __init__(self, address: str, security: Security) -> None:
        self._address = address
        self._security = security
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None

    def send(self, report: model.ReplicaReport, timeout: float = 2.0) -> bool:
        """Send ``report``; returns whether the controller knew the replica."""
        with self._lock:
            if self._channel is None:
                if self._security.tls is not None:
                    credentials = grpc.ssl_channel_credentials(
                        root_certificates=self._security.tls.ca,
                        private_key=self._security.tls.key,
                        certificate_chain=self._security.tls.cert,
                    )
                    self._channel = grpc.secure_channel(self._address, credentials)
                else:
                    self._channel = grpc.insecure_channel(self._address)
            try:
                return stubs.send_report(
                    self._channel, report, call_metadata(self._security), timeout
                )
            except grpc.RpcError:
                return False

    def close(self) -> None:
        with self._lock:
            channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()
