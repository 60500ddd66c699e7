"""A fault-injecting HTTP proxy in front of Azurite: real 500/503 responses, dropped connections
and slow responses on the wire, decided per request by a test's ``plan`` function.

``plan(method, path, n)`` (``n`` counts requests from 1) returns None to forward the request,
``"503"``/``"500"`` to answer with that status without forwarding (no side effect), ``"drop"`` to
close the connection without an answer (no side effect), ``"drop-after"`` to forward and then
close without relaying the answer (the side effect happened, the client does not know), or
``"slow"`` to wait ``slow_seconds`` before forwarding.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Plan = Callable[[str, str, int], str | None]
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}
_ERROR = (
    '<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>'
    "<Message>injected by the test proxy</Message></Error>"
)


class FaultProxy:
    def __init__(self, upstream_port: int, plan: Plan, *, slow_seconds: float = 2.0) -> None:
        self.upstream_port = upstream_port
        self.plan = plan
        self.slow_seconds = slow_seconds
        self.injected: dict[str, int] = {}
        self.requests = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    proxy.requests += 1
                    n = proxy.requests
                fault = proxy.plan(self.command, self.path, n)
                if fault is not None:
                    with proxy._lock:
                        proxy.injected[fault] = proxy.injected.get(fault, 0) + 1
                if fault in ("503", "500"):
                    data = _ERROR.encode()
                    self.send_response(int(fault))
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if fault == "drop":
                    self.close_connection = True
                    return
                if fault == "slow":
                    time.sleep(proxy.slow_seconds)
                status, headers, data = proxy._forward(self.command, self.path, self.headers, body)
                if fault == "drop-after":
                    self.close_connection = True
                    return
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]

    def _forward(
        self, method: str, path: str, headers: object, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        try:
            items = [(k, v) for k, v in headers.items() if k.lower() not in _HOP]  # type: ignore[attr-defined]
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in items:
                conn.putheader(name, value)
            conn.endheaders(body or None)
            response = conn.getresponse()
            data = response.read()
            return response.status, response.getheaders(), data
        finally:
            conn.close()


@contextmanager
def fault_proxy(
    upstream_port: int, plan: Plan, *, slow_seconds: float = 2.0
) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream_port, plan, slow_seconds=slow_seconds)
    thread = threading.Thread(target=proxy.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()
