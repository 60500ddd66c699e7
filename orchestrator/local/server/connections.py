"""Connections of the local workspace's HTTP server: how many, how long they may idle, how
long a request may take to arrive.

A hostile or broken client must not hold the server's memory or threads: the server takes
one thread per connection, so connections are bounded (:class:`ConnectionLimits`), and the
ones over the bound are answered ``503 TEMPORARILY_UNAVAILABLE`` with ``Retry-After`` and
closed at once, by the accepting thread, without a thread of their own (clients such as
databricks-sdk retry that answer). A connection that sends nothing for ``idle_seconds``
(between requests, or in the middle of one) is closed, and a request whose head and body have
not arrived ``request_seconds`` after its first byte is answered 408 and closed
(:class:`DeadlineReader`). What a connection was reading is freed with it.

The defaults mirror what stands in front of a real workspace: a load balancer that closes a
connection idle for 60 seconds (the common default of cloud load balancers; Databricks
documents no number, so this is a guess, noted in docs/local-workspace.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

__all__ = ["ConnectionLimits", "DeadlineReader", "LimitedServer"]


@dataclass(frozen=True)
class ConnectionLimits:
    """Bounds of the HTTP server's connections (see the module docstring)."""

    max_connections: int = 128
    idle_seconds: float = 60.0
    request_seconds: float = 300.0


class DeadlineReader(io.RawIOBase):
    """A socket read with an idle timeout per wait and, once a request's first byte has come,
    a deadline for the whole request (:meth:`expect_request`, :meth:`request_read`).

    A read past the deadline, or one that waits ``idle_seconds`` for a byte, raises
    :class:`TimeoutError`, which the handler answers (408) or the standard library's
    ``handle_one_request`` turns into closing the connection."""

    def __init__(self, sock: socket.socket, limits: ConnectionLimits) -> None:
        super().__init__()
        self._sock = sock
        self._limits = limits
        self._deadline: float | None = None
        self._armed = False

    def readable(self) -> bool:
        return True

    def expect_request(self) -> None:
        """A new request may come: the deadline starts with its first byte."""
        self._deadline, self._armed = None, True

    def request_read(self) -> None:
        """The request has been read whole: no deadline while it is handled."""
        self._deadline, self._armed = None, False

    def readinto(self, buffer: Any) -> int:
        wait = self._limits.idle_seconds
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request did not arrive in time")
            wait = min(wait, left)
        self._sock.settimeout(wait)
        count = self._sock.recv_into(buffer)
        if count and self._armed:
            self._deadline = time.monotonic() + self._limits.request_seconds
            self._armed = False
        return count


class LimitedServer(ThreadingHTTPServer):
    """A threading HTTP server that serves at most ``limits.max_connections`` connections at
    once and refuses the others politely (set ``limits`` before serving)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    limits = ConnectionLimits()

    def server_activate(self) -> None:
        super().server_activate()
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        self.refused = 0  # connections answered 503 because the server was full

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            _refuse(request)
            return
        try:
            super().process_request(request, client_address)  # starts the connection's thread
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


_REFUSAL = json.dumps(
    {
        "error_code": "TEMPORARILY_UNAVAILABLE",
        "message": "The local workspace is serving as many connections as it allows; retry.",
    }
).encode()


def _refuse(sock: socket.socket) -> None:
    """Answer 503 and close, without blocking the accepting thread: what the client already
    sent is read first (a close with unread data would reset the connection before the client
    reads the answer)."""
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(_REFUSAL)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    ).encode()
    with contextlib.suppress(OSError):
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            sock.recv(65536)
        sock.send(head + _REFUSAL)
        sock.shutdown(socket.SHUT_WR)
    with contextlib.suppress(OSError):
        sock.close()
