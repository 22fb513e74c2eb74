"""A delaying Ethernet switch for test networks: ``python switch.py --delay-ms D PORT...``.

This kernel has no ``netem``, so latency between test hosts is made here: a learning
switch over raw ``AF_PACKET`` sockets on the switch's ends of the hosts' cables,
which holds every frame ``D`` ms before sending it on (in order). A round trip
between two hosts therefore takes ``2 * D`` ms more than on a plain bridge. It runs
in the switch's namespace until killed, and prints ``switching`` once its ports are
open. Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import select
import socket
import time
from collections import deque

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23  # Linux 4.20+: outgoing frames are not looped back to us
BUFFER = 8 * 2**20


def _open(port: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
    # Older kernels loop our own frames back: they are skipped by their packet type.
    with contextlib.suppress(OSError):
        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.bind((port, 0))
    sock.setblocking(False)
    return sock


def serve(ports: list[str], delay: float) -> None:
    sockets = {port: _open(port) for port in ports}
    by_fd = {sock.fileno(): port for port, sock in sockets.items()}
    poller = select.epoll()
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    where: dict[bytes, str] = {}  # learnt: MAC address -> port
    # With one delay for every frame, frames leave in the order they came: a FIFO.
    held: deque[tuple[float, bytes, str]] = deque()
    print("switching", ", ".join(ports), flush=True)
    while True:
        timeout = max(0.0, held[0][0] - time.monotonic()) if held else -1
        for fd, _ in poller.poll(timeout):
            port = by_fd[fd]
            sock = sockets[port]
            now = time.monotonic()
            while True:
                try:
                    frame, address = sock.recvfrom(65536)
                except BlockingIOError:
                    break
                if address[2] == PACKET_OUTGOING or len(frame) < 14:
                    continue
                where[frame[6:12]] = port
                held.append((now + delay, frame, port))
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, frame, came_from = held.popleft()
            destination = frame[0:6]
            if destination[0] & 1 or destination not in where:  # broadcast, multicast, unknown
                out = [p for p in ports if p != came_from]
            else:
                out = [where[destination]] if where[destination] != came_from else []
            for port in out:
                try:  # noqa: SIM105 (the hot loop: no context manager per frame)
                    sockets[port].send(frame)
                except OSError:
                    pass  # a full queue or a port that is down drops the frame, as a switch does


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("ports", nargs="+")
    args = parser.parse_args()
    serve(args.ports, args.delay_ms / 1000.0)


if __name__ == "__main__":
    main()
