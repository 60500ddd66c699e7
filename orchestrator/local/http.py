"""HTTP plumbing of the local workspace: requests, responses, routing, auth and faults.

Built on the standard library's ``ThreadingHTTPServer`` (one thread per connection, keep-alive),
with Nagle's algorithm off and each response written in a single ``write`` so that a request
costs well under a millisecond on loopback. Handlers never see HTTP: they get a
:class:`Request` and return a dict (JSON) or a :class:`Response`, and raise
:class:`~orchestrator.local.errors.ApiError` for Databricks-style errors.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from orchestrator.local.errors import ApiError, bad_request
from orchestrator.local.faults import Faults

__all__ = ["Request", "Response", "Router", "serve_http"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024
_API_PATH = re.compile(r"^/api/(?P<version>\d+\.\d+)/(?P<route>[A-Za-z0-9_/-]+)$")


@dataclass
class Request:
    method: str
    path: str
    version: str | None
    route: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    _params: dict[str, Any] | None = field(default=None, repr=False)
    _files: dict[str, bytes] | None = field(default=None, repr=False)

    # --- body and parameters -------------------------------------------------------------
    def _parse(self) -> None:
        params: dict[str, Any] = {k: v[-1] for k, v in self.query.items()}
        files: dict[str, bytes] = {}
        ctype = self.headers.get("Content-Type", "") or ""
        if self.body and ctype.lower().startswith("multipart/form-data"):
            files = _parse_multipart(ctype, self.body)
            for name, value in list(files.items()):
                if name != "content":
                    params[name] = value.decode("utf-8", "replace")
        elif self.body.strip():
            try:
                data = json.loads(self.body)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ApiError(
                    400,
                    "MALFORMED_REQUEST",
                    f"Invalid JSON given in the body of the request: {exc}",
                ) from None
            if not isinstance(data, dict):
                raise ApiError(400, "MALFORMED_REQUEST", "The request body must be a JSON object")
            params.update(data)
        self._params, self._files = params, files

    @property
    def params(self) -> dict[str, Any]:
        if self._params is None:
            self._parse()
        assert self._params is not None
        return self._params

    @property
    def files(self) -> dict[str, bytes]:
        if self._files is None:
            self._parse()
        assert self._files is not None
        return self._files

    def get(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def text(self, name: str, *, required: bool = False, default: str | None = None) -> str | None:
        value = self.params.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"Missing required field: {name}")
            return default
        if not isinstance(value, str):
            raise bad_request(f"Invalid value for {name}: expected a string")
        return value

    def required_text(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None
        return value

    def integer(
        self, name: str, *, required: bool = False, default: int | None = None
    ) -> int | None:
        value = self.params.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"Missing required field: {name}")
            return default
        if isinstance(value, bool):
            raise bad_request(f"Invalid value for {name}: expected an integer")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f"Invalid value for {name}: {value!r} is not an integer") from None

    def required_int(self, name: str) -> int:
        value = self.integer(name, required=True)
        assert value is not None
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.params.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise bad_request(f"Invalid value for {name}: {value!r} is not a boolean")

    def obj(self, name: str) -> dict[str, Any]:
        value = self.params.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise bad_request(f"Invalid value for {name}: expected an object")
        return value


@dataclass(frozen=True)
class Response:
    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(
        cls, data: Any, status: int = 200, headers: tuple[tuple[str, str], ...] = ()
    ) -> Response:
        return cls(status, json.dumps(data, separators=(",", ":")).encode(), headers=headers)

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode("utf-8"), "text/html; charset=utf-8")


Handler = Callable[[Request], "Response | Mapping[str, Any] | None"]


class Router:
    """Routes keyed by method and the path after ``/api/<version>/``; versions checked."""

    def __init__(self) -> None:
        self._api: dict[tuple[str, str], tuple[frozenset[str], Handler]] = {}
        self._plain: list[tuple[str, re.Pattern[str], Callable[..., Response], bool]] = []

    def api(self, method: str, route: str, versions: tuple[str, ...], handler: Handler) -> None:
        self._api[(method, route)] = (frozenset(versions), handler)

    def plain(
        self, method: str, pattern: str, handler: Callable[..., Response], *, public: bool = False
    ) -> None:
        """A non-API route; named groups of ``pattern`` are passed as keyword arguments.

        ``public`` routes are served without the bearer token (the read-only pages)."""
        self._plain.append((method, re.compile(pattern), handler, public))

    def find_api(self, method: str, version: str, route: str) -> Handler:
        entry = self._api.get((method, route))
        if entry is None:
            if any(r == route for (_, r) in self._api):
                raise ApiError(405, "METHOD_NOT_ALLOWED", f"{method} is not supported for {route}")
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} /{route}'")
        versions, handler = entry
        if version not in versions:
            raise ApiError(
                404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} /api/{version}/{route}'"
            )
        return handler

    def find_plain(self, method: str, path: str) -> tuple[Callable[..., Response], dict[str, str]]:
        found = self.match_plain(method, path)
        if found is None:
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No page at {path}")
        return found[0], found[1]

    def match_plain(
        self, method: str, path: str
    ) -> tuple[Callable[..., Response], dict[str, str], bool] | None:
        """The handler, its keyword arguments and whether it is public; None when no route."""
        for m, pattern, handler, public in self._plain:
            match = pattern.fullmatch(path)
            if match and m == method:
                return handler, match.groupdict(), public
        return None


def _parse_multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(header + body)
    if not message.is_multipart():
        raise ApiError(400, "MALFORMED_REQUEST", "Malformed multipart body")
    parts: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = payload
    return parts


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
        match = _API_PATH.match(path)
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
