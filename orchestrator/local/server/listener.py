"""The HTTP listener of the local workspace: sockets, framing, authentication, faults, dispatch.

Built on the standard library's ``ThreadingHTTPServer`` (one thread per connection, keep-alive),
with Nagle's algorithm off and each response written in a single ``write`` so that a request
costs well under a millisecond on loopback. It turns bytes into a
:class:`~orchestrator.local.api.routing.Request`, checks the bearer token, applies injected
faults and hands the request to the handler the :class:`~orchestrator.local.api.routing.Router`
finds; handlers never see HTTP.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from orchestrator.local.api.routing import API_PATH, MAX_BODY_BYTES, Request, Response, Router
from orchestrator.local.server.faults import Faults
from orchestrator.local.state.api_error import ApiError

__all__ = ["serve_http"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _App:
    router: Router
    token: str
    faults: Faults
    public_paths: tuple[str, ...]


def _reason(status: int) -> str:
    return BaseHTTPRequestHandler.responses.get(status, ("Unknown",))[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "orchestrator-local"
    app: _App  # set on the subclass made by serve_http

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    raise ApiError(413, "REQUEST_TOO_LARGE", "Request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ApiError(413, "REQUEST_TOO_LARGE", "Request body too large")
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        app = self.app
        split = urlsplit(self.path)
        path = split.path
        try:
            body = self._read_body()
        except ApiError as err:
            self.close_connection = True
            self._send(Response.json(err.body(), err.status))
            return
        match = API_PATH.match(path)
        endpoint = f"{method} {match['route']}" if match else f"{method} {path}"
        app.faults.count(endpoint if match else f"{method} {path}")
        try:
            if match:
                response = self._api(method, match["version"], match["route"], split.query, body)
            else:
                response = self._plain(method, path, split.query, body)
        except ApiError as err:
            response = Response.json(err.body(), err.status)
        except Exception:
            log.exception("internal error handling %s %s", method, path)
            response = Response.json(
                {
                    "error_code": "INTERNAL_ERROR",
                    "message": "Internal error in the local workspace",
                },
                500,
            )
        if response is not None:
            self._send(response)

    def _authorize(self) -> None:
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.app.token.encode()
        ):
            raise ApiError(401, "UNAUTHENTICATED", "Invalid access token.")

    def _api(
        self, method: str, version: str, route: str, query: str, body: bytes
    ) -> Response | None:
        app = self.app
        self._authorize()
        settings = app.faults.settings
        if settings.latency_ms:
            time.sleep(settings.latency_ms / 1000.0)
        decision = app.faults.decide(f"{method} {route}")
        if decision.kind == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if decision.kind in ("429", "429-retry-after", "rate-limit"):
            headers = (
                (("Retry-After", str(decision.retry_after)),)
                if decision.retry_after is not None
                else ()
            )
            return Response.json(
                {
                    "error_code": "REQUEST_LIMIT_EXCEEDED",
                    "message": "Too many requests (injected).",
                },
                429,
                headers,
            )
        if decision.kind == "503":
            return Response.json(
                {
                    "error_code": "TEMPORARILY_UNAVAILABLE",
                    "message": "Service unavailable (injected).",
                },
                503,
            )
        handler = app.router.find_api(method, version, route)
        request = Request(method, self.path, version, route, parse_qs(query), self.headers, body)
        result = handler(request)
        if isinstance(result, Response):
            return result
        return Response.json(dict(result) if result is not None else {})

    def _plain(self, method: str, path: str, query: str, body: bytes) -> Response:
        found = self.app.router.match_plain(method, path)
        public = found is not None and found[2]
        if not public and not any(path.startswith(p) for p in self.app.public_paths):
            self._authorize()
        if found is None:
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No page at {path}")
        handler, kwargs, _ = found
        request = Request(method, self.path, None, path, parse_qs(query), self.headers, body)
        return handler(request, **kwargs)

    def _send(self, response: Response) -> None:
        lines = [f"HTTP/1.1 {response.status} {_reason(response.status)}"]
        lines.append(f"Content-Type: {response.content_type}")
        lines.append(f"Content-Length: {len(response.body)}")
        for name, value in response.headers:
            lines.append(f"{name}: {value}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + response.body)
        except OSError:
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def serve_http(
    *,
    host: str,
    port: int,
    router: Router,
    token: str,
    faults: Faults,
    public_paths: tuple[str, ...] = (),
) -> tuple[_Server, threading.Thread]:
    """Bind and start serving in a daemon thread; returns the server and its thread."""
    handler = type("Handler", (_Handler,), {"app": _App(router, token, faults, public_paths)})
    server = _Server((host, port), handler)
    thread = threading.Thread(
        target=server.serve_forever,
        # how soon shutdown() is noticed (a stopping build waits for it); 20 wake-ups a second
        kwargs={"poll_interval": 0.05},
        name="local-workspace-http",
        daemon=True,
    )
    thread.start()
    return server, thread
