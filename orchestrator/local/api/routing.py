"""Requests, responses and routing: the interface between the HTTP listener
(:mod:`orchestrator.local.server.listener`) and the API handlers.

Handlers never see HTTP: they get a :class:`Request` (query and body parameters, typed
getters that answer Databricks' 400s) and return a dict (JSON) or a :class:`Response`, and
raise :class:`~orchestrator.local.state.api_error.ApiError` for Databricks-style errors. The
:class:`Router` keys API routes by method and the path after ``/api/<version>/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from orchestrator.local.api.json_body import INT64_MAX, INT64_MIN, parse_json_body
from orchestrator.local.state.api_error import ApiError, bad_request

__all__ = [
    "API_PATH",
    "MAX_BODY_BYTES",
    "Handler",
    "Request",
    "Response",
    "Router",
    "endpoint_of",
]

MAX_BODY_BYTES = 64 * 1024 * 1024
#: an integer as a query string or form field spells it (at most 20 digits: int64 and a sign)
_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")
#: the Files API's routes end in a file's path, percent-encoded (``fs/files/Volumes/a%20b.csv``):
#: any character a URL path may hold; every other route is names only
API_PATH = re.compile(
    r"^/api/(?P<version>\d+\.\d+)/"
    r"(?P<route>fs/(?:files|directories)/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*|[A-Za-z0-9_/-]+)$"
)

_FILE_ROUTES = ("fs/files/", "fs/directories/")


def endpoint_of(route: str) -> str:
    """The endpoint a route belongs to, for request counts and faults: a Files API route
    without its file's path (``fs/files/{path}``), so counts stay one per endpoint."""
    for prefix in _FILE_ROUTES:
        if route.startswith(prefix):
            return prefix + "{path}"
    return route


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
            data = parse_json_body(self.body)
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
        if isinstance(value, str) and not _INTEGER.fullmatch(value.strip()):
            raise bad_request(f"Invalid value for {name}: {value[:40]!r} is not an integer")
        if not isinstance(value, int | str):
            raise bad_request(f"Invalid value for {name}: expected an integer")
        number = int(value)
        if not INT64_MIN <= number <= INT64_MAX:
            # ids and counts are int64 on the service: a larger one cannot name anything
            raise bad_request(f"Invalid value for {name}: {str(value)[:40]} is out of range")
        return number

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
        # "replace": a lone surrogate kept by an older workspace's state shows as "?", the
        # page is still served
        return cls(status, text.encode("utf-8", "replace"), "text/html; charset=utf-8")


Handler = Callable[[Request], "Response | Mapping[str, Any] | None"]


class Router:
    """Routes keyed by method and the path after ``/api/<version>/``; versions checked.

    A route either is a whole path (``api``) or ends in object ids (``api_prefix``: every
    path under the prefix, which the handler reads from ``Request.route``)."""

    def __init__(self) -> None:
        self._api: dict[tuple[str, str], tuple[frozenset[str], Handler]] = {}
        self._prefixes: dict[tuple[str, str], tuple[frozenset[str], Handler]] = {}
        self._plain: list[tuple[str, re.Pattern[str], Callable[..., Response], bool]] = []

    def api(self, method: str, route: str, versions: tuple[str, ...], handler: Handler) -> None:
        self._api[(method, route)] = (frozenset(versions), handler)

    def api_prefix(
        self, method: str, prefix: str, versions: tuple[str, ...], handler: Handler
    ) -> None:
        """``handler`` answers every route that starts with ``prefix`` (which ends in ``/``)."""
        self._prefixes[(method, prefix)] = (frozenset(versions), handler)

    def _entry(self, method: str, route: str) -> tuple[frozenset[str], Handler] | None:
        entry = self._api.get((method, route))
        if entry is None:
            for (m, prefix), found in self._prefixes.items():
                if m == method and route.startswith(prefix):
                    return found
        return entry

    def _known(self, route: str) -> bool:
        return any(r == route for (_, r) in self._api) or any(
            route.startswith(prefix) for (_, prefix) in self._prefixes
        )

    def plain(
        self, method: str, pattern: str, handler: Callable[..., Response], *, public: bool = False
    ) -> None:
        """A non-API route; named groups of ``pattern`` are passed as keyword arguments.

        ``public`` routes are served without the bearer token (the read-only pages)."""
        self._plain.append((method, re.compile(pattern), handler, public))

    def api_routes(self) -> list[tuple[str, str, frozenset[str]]]:
        """Every API route: method, route (a prefix route ends in ``/``) and its versions."""
        found = [(m, r, entry[0]) for (m, r), entry in self._api.items()]
        return found + [(m, p, entry[0]) for (m, p), entry in self._prefixes.items()]

    def plain_routes(self) -> list[tuple[str, str]]:
        """Every other route: method and the pattern of its paths."""
        return [(m, pattern.pattern) for m, pattern, _, _ in self._plain]

    def find_api(self, method: str, version: str, route: str) -> Handler:
        entry = self._entry(method, route)
        if entry is None:
            if self._known(route):
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
