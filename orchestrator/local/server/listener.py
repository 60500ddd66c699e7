"""The HTTP listener of the local workspace: sockets, framing, authentication, faults, dispatch.

Built on the standard library's ``ThreadingHTTPServer`` (one thread per connection, keep-alive),
with Nagle's algorithm off and each response written in a single ``write`` so that a request
costs well under a millisecond on loopback. It turns bytes into a
:class:`~orchestrator.local.api.routing.Request`, checks the bearer token, applies injected
faults and hands the request to the handler the :class:`~orchestrator.local.api.routing.Router`
finds; handlers never see HTTP.

A request is checked in the order that costs a hostile client the most and the server the
least: the ``Host`` header (421, ``host_check.py``), the body's framing from the headers alone
(400/413, ``framing.py``), the token (401), and only then is the body read, with the
connection's idle and total timeouts (408, ``connections.py``). An answer given before the
body was read closes the connection. Every error the server gives, the standard library's
own (414, 431, 501...) included, is Databricks' JSON error body.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import logging
import socket
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from orchestrator.local.api.routing import (
    API_PATH,
    MAX_BODY_BYTES,
    Request,
    Response,
    Router,
    endpoint_of,
)
from orchestrator.local.server.connections import ConnectionLimits, DeadlineReader, LimitedServer
from orchestrator.local.server.faults import Faults
from orchestrator.local.server.framing import BodyFraming, ClientGone, framing_of, read_body
from orchestrator.local.server.host_check import allowed_host, host_names
from orchestrator.local.state.api_error import ApiError

__all__ = ["serve_http"]

log = logging.getLogger(__name__)

#: error codes of the server's own HTTP errors (Databricks' where it has one)
_HTTP_ERROR_CODES = {400: "BAD_REQUEST", 404: "ENDPOINT_NOT_FOUND", 413: "REQUEST_TOO_LARGE"}


@dataclass(frozen=True)
class _App:
    router: Router
    token: str
    faults: Faults
    public_paths: tuple[str, ...]
    hosts: frozenset[str]
    limits: ConnectionLimits


def _reason(status: int) -> str:
    return BaseHTTPRequestHandler.responses.get(status, ("Unknown",))[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "orchestrator-local"
    app: _App  # set on the subclass made by serve_http
    _reader: DeadlineReader

    def setup(self) -> None:
        super().setup()
        # every read of the request goes through the idle timeout and the request's deadline
        self._reader = DeadlineReader(self.connection, self.app.limits)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        self._reader.expect_request()
        super().handle_one_request()

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue`` is answered once the token has been checked (``_body``),
        so a refused client never sends its body."""
        return True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own errors (a bad request line, 414, 431, 501...) as
        Databricks' JSON body, the connection then closed."""
        self.close_connection = True
        status = HTTPStatus(code) if code in HTTPStatus._value2member_map_ else None
        error_code = _HTTP_ERROR_CODES.get(code) or (status.name if status else "BAD_REQUEST")
        text = message or (status.phrase if status else "Bad request")
        self._send(Response.json({"error_code": error_code, "message": text}, code))

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

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def _dispatch(self, method: str) -> None:
        app = self.app
        self._unread = None
        split = urlsplit(self.path)
        path = split.path
        try:
            if not allowed_host(self.headers, app.hosts):
                raise ApiError(
                    421,
                    "MISDIRECTED_REQUEST",
                    "This server answers only for the address it listens on and localhost.",
                )
            framing = framing_of(self.headers, limit=MAX_BODY_BYTES)
        except ApiError as err:
            self.close_connection = True
            self._send(Response.json(err.body(), err.status), head=method == "HEAD")
            return
        match = API_PATH.match(path)
        endpoint = f"{method} {endpoint_of(match['route'])}" if match else f"{method} {path}"
        app.faults.count(endpoint)
        try:
            if match:
                response = self._api(method, match["version"], match["route"], split, framing)
            else:
                response = self._plain(method, path, split.query, framing)
        except ApiError as err:
            response = Response.json(err.body(), err.status)
        except _BodyUnread:
            return
        except Exception:
            log.exception("internal error handling %s %s", method, path)
            response = Response.json(
                {
                    "error_code": "INTERNAL_ERROR",
                    "message": "Internal error in the local workspace",
                },
                500,
            )
        if self._unread is not None and self._unread.has_body:
            self.close_connection = True  # answered before the body was read: it is not
        if response is not None:
            self._send(response, head=method == "HEAD")

    # --- the request's parts -------------------------------------------------------------
    _unread: BodyFraming | None = None

    def _body(self, framing: BodyFraming) -> bytes:
        """The body, read now that the request may have it (408/400/413 close the
        connection; a client that went away gets no answer)."""
        self._unread = framing
        if not framing.has_body:
            self._unread = None
            self._reader.request_read()
            return b""
        if (self.headers.get("Expect") or "").lower() == "100-continue":
            with contextlib.suppress(OSError):
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            body = read_body(self.rfile, framing, limit=MAX_BODY_BYTES)
        except TimeoutError:
            self.close_connection = True
            message = "The request body did not arrive in time"
            raise ApiError(408, "REQUEST_TIMEOUT", message) from None
        except ClientGone:
            self.close_connection = True
            raise _BodyUnread from None
        self._unread = None
        self._reader.request_read()
        return body

    def _authorize(self) -> None:
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode("utf-8", "surrogateescape"), self.app.token.encode()
        ):
            raise ApiError(401, "UNAUTHENTICATED", "Invalid access token.")

    def _api(
        self, method: str, version: str, route: str, split: Any, framing: BodyFraming
    ) -> Response | None:
        app = self.app
        self._unread = framing
        self._authorize()
        body = self._body(framing)
        settings = app.faults.settings
        if settings.latency_ms:
            time.sleep(settings.latency_ms / 1000.0)
        decision = app.faults.decide(f"{method} {endpoint_of(route)}")
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
        request = Request(
            method, self.path, version, route, parse_qs(split.query), self.headers, body
        )
        result = handler(request)
        if isinstance(result, Response):
            return result
        return Response.json(dict(result) if result is not None else {})

    def _plain(self, method: str, path: str, query: str, framing: BodyFraming) -> Response:
        self._unread = framing
        # a page answers HEAD as it answers GET, without the body (_send)
        found = self.app.router.match_plain("GET" if method == "HEAD" else method, path)
        public = found is not None and found[2]
        if not public and not any(path.startswith(p) for p in self.app.public_paths):
            self._authorize()
        body = self._body(framing)
        if found is None:
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No page at {path[:200]}")
        handler, kwargs, _ = found
        request = Request(method, self.path, None, path, parse_qs(query), self.headers, body)
        return handler(request, **kwargs)

    def _send(self, response: Response, *, head: bool = False) -> None:
        lines = [f"HTTP/1.1 {response.status} {_reason(response.status)}"]
        lines.append(f"Content-Type: {response.content_type}")
        if not any(name.lower() == "content-length" for name, _ in response.headers):
            # a HEAD answer may give the length of the body it does not send
            lines.append(f"Content-Length: {len(response.body)}")
        for name, value in response.headers:
            lines.append(f"{name}: {value}")
        if self.close_connection:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not head:  # a HEAD answer has the headers of the GET one, and no body
            data += response.body
        try:
            self.connection.settimeout(self.app.limits.idle_seconds)  # a client that never reads
            self.wfile.write(data)
        except OSError:
            self.close_connection = True


class _BodyUnread(Exception):
    """The client went away before its body arrived: nothing to answer."""


def serve_http(
    *,
    host: str,
    port: int,
    router: Router,
    token: str,
    faults: Faults,
    public_paths: tuple[str, ...] = (),
    limits: ConnectionLimits | None = None,
) -> tuple[LimitedServer, threading.Thread]:
    """Bind and start serving in a daemon thread; returns the server and its thread."""
    limits = limits or ConnectionLimits()
    app = _App(router, token, faults, public_paths, host_names(host), limits)
    handler = type("Handler", (_Handler,), {"app": app})
    server = type("Server", (LimitedServer,), {"limits": limits})((host, port), handler)
    thread = threading.Thread(
        target=server.serve_forever,
        # how soon shutdown() is noticed (a stopping build waits for it); 20 wake-ups a second
        kwargs={"poll_interval": 0.05},
        name="local-workspace-http",
        daemon=True,
    )
    thread.start()
    return server, thread
