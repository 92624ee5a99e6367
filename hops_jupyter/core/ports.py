"""Free TCP ports for the processes the core starts (brokers, TensorFlow cluster members)."""

from __future__ import annotations

import contextlib
import socket


def free_ports(count: int = 1, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports the OS reports free on `host` ("" for every interface). All
    sockets stay bound until every port is chosen, so one call never returns a port twice."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
