"""How a request's body is framed, and reading it within bounds.

The standard library leaves framing to the handler, and a careless one answers nothing at all
to ``Content-Length: abc`` (an exception closes the connection) or waits forever for the body
of ``Content-Length: -1``. Here the framing is decided from the headers alone, before the
token is checked and before a byte of the body is read (:func:`framing_of`): a malformed or
contradictory ``Content-Length``, both it and ``Transfer-Encoding`` (the shape of request
smuggling), or a coding other than ``chunked`` is 400 at once, a declared size over the limit
413. :func:`read_body` then reads the body in pieces into one growing buffer (large buffers
are the allocator's own mappings, returned to the system when freed), checking the chunk
syntax (a bad chunk size is 400) and the limit as it goes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from io import BufferedIOBase

from orchestrator.local.state.api_error import ApiError

__all__ = ["BodyFraming", "ClientGone", "framing_of", "read_body"]

_LENGTH = re.compile(r"[0-9]{1,19}")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_PIECE = 256 * 1024
_MAX_LINE = 8 * 1024
_MAX_TRAILERS = 100


class ClientGone(Exception):
    """The client closed the connection before sending the whole body."""


@dataclass(frozen=True)
class BodyFraming:
    """``length`` bytes follow the head, or (``chunked``) chunks until a zero-size one."""

    length: int = 0
    chunked: bool = False

    @property
    def has_body(self) -> bool:
        return self.chunked or self.length > 0


def _bad(message: str) -> ApiError:
    return ApiError(400, "BAD_REQUEST", message)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "REQUEST_TOO_LARGE", f"Request body too large (at most {limit} bytes)")


def framing_of(headers: Message, *, limit: int) -> BodyFraming:
    """The body's framing from the request's headers; 400 or 413 when it cannot be read."""
    codings = [
        coding.strip().lower()
        for value in headers.get_all("Transfer-Encoding") or []
        for coding in value.split(",")
        if coding.strip()
    ]
    lengths = [value.strip() for value in headers.get_all("Content-Length") or []]
    if codings:
        if lengths:
            raise _bad("A request may not have both Content-Length and Transfer-Encoding")
        if codings != ["chunked"]:
            raise _bad(f"Unsupported Transfer-Encoding: {', '.join(codings)[:100]}")
        return BodyFraming(chunked=True)
    if not lengths:
        return BodyFraming()
    if len(set(lengths)) != 1 or not _LENGTH.fullmatch(lengths[0]):
        raise _bad(f"Invalid Content-Length: {', '.join(lengths)[:100]}")
    length = int(lengths[0])
    if length > limit:
        raise _too_large(limit)
    return BodyFraming(length=length)


def read_body(stream: BufferedIOBase, framing: BodyFraming, *, limit: int) -> bytes:
    """The body, read as ``framing`` says. Raises :class:`ClientGone` when the connection
    ends early, ``TimeoutError`` when the stream does (see ``connections.DeadlineReader``),
    and 400/413 :class:`ApiError` for a malformed chunk or a body over ``limit``."""
    if not framing.chunked:
        body = bytearray()
        _read_exactly(stream, framing.length, body)
        return bytes(body)
    body = bytearray()
    while True:
        line = stream.readline(_MAX_LINE + 1)
        if not line:
            raise ClientGone
        if not line.endswith(b"\n"):
            raise _bad("Chunk size line too long")
        size_text = line.split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise _bad(f"Invalid chunk size: {size_text[:20]!r}")
        size = int(size_text, 16)
        if size == 0:
            _skip_trailers(stream)
            return bytes(body)
        if len(body) + size > limit:
            raise _too_large(limit)
        _read_exactly(stream, size, body)
        if stream.readline(3) not in (b"\r\n", b"\n"):
            raise _bad("A chunk does not end where its size says")


def _read_exactly(stream: BufferedIOBase, count: int, into: bytearray) -> None:
    """Append ``count`` bytes of ``stream`` to ``into``, a piece at a time."""
    piece = bytearray(min(_PIECE, count))
    view = memoryview(piece)
    left = count
    while left:
        got = stream.readinto(view[: min(left, len(piece))])
        if not got:
            raise ClientGone
        into += view[:got]
        left -= got


def _skip_trailers(stream: BufferedIOBase) -> None:
    for _ in range(_MAX_TRAILERS):
        line = stream.readline(_MAX_LINE + 1)
        if line in (b"\r\n", b"\n", b""):
            return
    raise _bad("Too many trailer lines")
