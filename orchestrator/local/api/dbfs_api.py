"""DBFS API 2.0 of the local workspace: put, create/add-block/close, read, get-status, list,
mkdirs, delete and move, over the store's ``dbfs_root`` (the folder notebooks see as ``dbfs:/``
and ``/dbfs``).

Limits and error codes follow the service's documentation:

- ``put`` takes inline base64 ``contents`` of at most 1 MB (``MAX_BLOCK_SIZE_EXCEEDED``
  otherwise) or a multipart form upload (the legacy ``databricks fs cp`` sends a ``file`` part);
  a file's parent folders are created as needed.
- ``create`` returns a ``handle``; ``add-block`` appends at most 1 MB of base64 ``data``;
  ``close`` makes the file visible. Handles idle for 10 minutes expire
  (``RESOURCE_DOES_NOT_EXIST``, as an unknown handle): a sweep drops them and their temporary
  files, and a starting workspace deletes those a previous one left.
- ``read`` returns base64 ``data`` and ``bytes_read`` from ``offset`` for ``length`` bytes
  (default 0.5 MB, at most 1 MB: ``MAX_READ_SIZE_EXCEEDED``); a folder or a negative offset or
  length is ``INVALID_PARAMETER_VALUE``.
- An existing path without ``overwrite`` is ``RESOURCE_ALREADY_EXISTS``, a missing one
  ``RESOURCE_DOES_NOT_EXIST``; deleting a non-empty folder without ``recursive`` is
  ``IO_ERROR``; deleting a path that does not exist succeeds, as on the service.

Paths are absolute DBFS paths (``/mnt/x``; ``dbfs:/mnt/x`` is accepted too) of at most 1,024
bytes (``state/limits.py``). Every write goes through a temporary file outside the tree and is
renamed into place, so a reader (a notebook, a ``read``) never sees half a file. The tree is
reached through real folders only (``state/confined.py``): a symbolic link a notebook planted
is listed and deleted as itself, and never followed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import logging
import os
import stat
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from orchestrator.local.api.routing import Request, Router
from orchestrator.local.state.api_error import ApiError, already_exists, bad_request, not_found
from orchestrator.local.state.confined import Tree, names, purge
from orchestrator.local.state.limits import MAX_DBFS_PATH_BYTES, check_path
from orchestrator.local.state.store import Store

__all__ = [
    "HANDLE_IDLE_SECONDS",
    "MAX_BLOCK_BYTES",
    "MAX_OPEN_HANDLES",
    "MAX_READ_BYTES",
    "DbfsApi",
]

MAX_BLOCK_BYTES = 1024 * 1024  # inline put contents and each add-block
MAX_READ_BYTES = 1024 * 1024
DEFAULT_READ_BYTES = 512 * 1024
HANDLE_IDLE_SECONDS = 600.0
#: open create handles at once (a guess: the service documents none); more is 429
MAX_OPEN_HANDLES = 1000
#: the temporary files of handles and puts, in the state dir's tmp folder
TEMP_PREFIX = "dbfs-"
log = logging.getLogger(__name__)
_FORM_FIELDS = ("path", "overwrite", "contents")


@dataclass
class _Stream:
    """An open ``create`` handle: bytes go to a temporary file until ``close``."""

    path: str
    overwrite: bool
    temp: Path
    touched: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False  # closed or expired: no block may be added


class DbfsApi:
    def __init__(self, store: Store, *, handle_idle_seconds: float = HANDLE_IDLE_SECONDS) -> None:
        self.tree = store.dbfs_tree
        self.tmp_root = store.tmp_root
        self.handle_idle_seconds = handle_idle_seconds
        self._lock = threading.RLock()  # structure: mkdirs, rename into place, delete, move
        self._streams: dict[int, _Stream] = {}
        self._handles = itertools.count(1)

    def register(self, router: Router) -> None:
        v = ("2.0",)
        router.api("POST", "dbfs/put", v, self.put)
        router.api("POST", "dbfs/create", v, self.create)
        router.api("POST", "dbfs/add-block", v, self.add_block)
        router.api("POST", "dbfs/close", v, self.close)
        router.api("GET", "dbfs/read", v, self.read)
        router.api("GET", "dbfs/get-status", v, self.get_status)
        router.api("GET", "dbfs/list", v, self.list)
        router.api("POST", "dbfs/mkdirs", v, self.mkdirs)
        router.api("POST", "dbfs/delete", v, self.delete)
        router.api("POST", "dbfs/move", v, self.move)

    # --- paths ---------------------------------------------------------------------------
    def _path(self, req: Request, name: str = "path") -> str:
        return normalize_dbfs_path(req.required_text(name), field=name)

    def _info(self, path: str, found: os.stat_result) -> dict[str, Any]:
        # a link (planted by a notebook) is shown as what it is, a file, and never followed
        is_dir = stat.S_ISDIR(found.st_mode)
        return {
            "path": path,
            "is_dir": is_dir,
            "file_size": 0 if is_dir else found.st_size,
            "modification_time": int(found.st_mtime * 1000),
        }

    def _make_parents(self, path: str) -> None:
        """Create the folders above ``path``; a file in the way is RESOURCE_ALREADY_EXISTS."""
        parts = names(path)[:-1]
        try:
            self.tree.makedirs(parts)
        except (NotADirectoryError, FileExistsError):
            where = _in_the_way(self.tree, parts)
            raise already_exists(
                f"A file or directory already exists at the input path {where}."
            ) from None

    def _place(self, temp: Path, path: str, *, overwrite: bool) -> None:
        """Rename a finished temporary file to ``path`` (the only way a file appears)."""
        if path == "/":
            raise bad_request("Cannot write to the DBFS root")
        with self._lock:
            found = self.tree.lstat(names(path))
            if found is not None and (stat.S_ISDIR(found.st_mode) or not overwrite):
                raise already_exists(
                    f"A file or directory already exists at the input path {path}."
                )
            self._make_parents(path)
            self.tree.place(temp, names(path))

    def _temp(self) -> Path:
        fd, name = tempfile.mkstemp(dir=self.tmp_root, prefix=TEMP_PREFIX)
        os.close(fd)
        return Path(name)

    def _exists(self, path: str) -> os.stat_result | None:
        return self.tree.lstat(names(path))

    # --- put -----------------------------------------------------------------------------
    def put(self, req: Request) -> dict[str, Any]:
        ctype = req.headers.get("Content-Type", "") or ""
        if ctype.lower().startswith("multipart/form-data"):
            form = parse_form(ctype, req.body)
            path = normalize_dbfs_path(_form_text(form, "path"), field="path")
            overwrite = _form_text(form, "overwrite", "false").lower() in ("true", "1")
            data = _form_file(form)
        else:
            path = self._path(req)
            overwrite = req.flag("overwrite")
            data = self._inline_contents(req)
        if path == "/":
            raise bad_request("Cannot write to the DBFS root")
        if self._exists(path) is not None and not overwrite:  # fail before writing anything
            raise already_exists(f"A file or directory already exists at the input path {path}.")
        temp = self._temp()
        try:
            temp.write_bytes(data)
            self._place(temp, path, overwrite=overwrite)
        finally:
            temp.unlink(missing_ok=True)
        return {}

    def _inline_contents(self, req: Request) -> bytes:
        raw = req.get("contents")
        if raw is None:
            return b""
        if not isinstance(raw, str):
            raise bad_request("Invalid contents: expected a base64 string")
        if len(raw) > _base64_length(MAX_BLOCK_BYTES):
            raise _too_large("contents")
        data = _decode(raw, "contents")
        if len(data) > MAX_BLOCK_BYTES:
            raise _too_large("contents")
        return data

    # --- streaming upload ----------------------------------------------------------------
    def create(self, req: Request) -> dict[str, Any]:
        path = self._path(req)
        overwrite = req.flag("overwrite")
        if path == "/":
            raise bad_request("Cannot write to the DBFS root")
        found = self._exists(path)
        if found is not None and (stat.S_ISDIR(found.st_mode) or not overwrite):
            raise already_exists(f"A file or directory already exists at the input path {path}.")
        self.expire()
        with self._lock:
            if len(self._streams) >= MAX_OPEN_HANDLES:
                raise ApiError(
                    429,
                    "RESOURCE_EXHAUSTED",
                    f"At most {MAX_OPEN_HANDLES} DBFS handles can be open at once: close some",
                )
            handle = next(self._handles)
            self._streams[handle] = _Stream(path, overwrite, self._temp(), time.monotonic())
        return {"handle": handle}

    def _stream(self, req: Request) -> tuple[int, _Stream]:
        handle = req.required_int("handle")
        self.expire()
        with self._lock:
            stream = self._streams.get(handle)
        if stream is None:
            raise not_found(f"Handle {handle} does not exist or has expired.")
        return handle, stream

    def add_block(self, req: Request) -> dict[str, Any]:
        raw = req.required_text("data")
        if len(raw) > _base64_length(MAX_BLOCK_BYTES):
            raise _too_large("data")
        data = _decode(raw, "data")
        if len(data) > MAX_BLOCK_BYTES:
            raise _too_large("data")
        _, stream = self._stream(req)
        with stream.lock:
            if stream.closed:
                raise not_found("The handle has expired.")
            with stream.temp.open("ab") as handle:
                handle.write(data)
            stream.touched = time.monotonic()
        return {}

    def close(self, req: Request) -> dict[str, Any]:
        handle, stream = self._stream(req)
        with self._lock:
            self._streams.pop(handle, None)
        with stream.lock:
            stream.closed = True
            try:
                self._place(stream.temp, stream.path, overwrite=stream.overwrite)
            finally:
                stream.temp.unlink(missing_ok=True)
        return {}

    def expire(self) -> int:
        """Drop the handles idle for longer than ``handle_idle_seconds``, with their
        temporary files; how many. Called on every handle request and periodically by the
        workspace (``sweep_handles``), so an abandoned upload's bytes never stay behind."""
        now = time.monotonic()
        with self._lock:
            stale = [
                h for h, s in self._streams.items() if now - s.touched > self.handle_idle_seconds
            ]
            streams = [self._streams.pop(h) for h in stale]
        for stream in streams:
            with stream.lock:
                stream.closed = True
                stream.temp.unlink(missing_ok=True)
        return len(streams)

    def sweep_handles(self, stop: threading.Event) -> None:
        """Expire idle handles until ``stop`` is set (the workspace's thread)."""
        interval = max(0.05, min(60.0, self.handle_idle_seconds / 4))
        while not stop.wait(interval):
            try:
                self.expire()
            except Exception:  # a failed pass must not end the thread: the next one retries
                log.exception("expiring DBFS handles failed")

    def remove_abandoned(self) -> int:
        """Delete the temporary files of handles a previous server left open (at start, when
        no handle of this server exists yet); how many."""
        removed = 0
        for entry in self.tmp_root.glob(TEMP_PREFIX + "*"):
            with self._lock:
                if any(s.temp == entry for s in self._streams.values()):
                    continue
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed += 1
        return removed

    # --- reading -------------------------------------------------------------------------
    def read(self, req: Request) -> dict[str, Any]:
        path = self._path(req)
        offset = req.integer("offset", default=0)
        length = req.integer("length", default=DEFAULT_READ_BYTES)
        assert offset is not None and length is not None
        if offset < 0 or length < 0:
            raise bad_request("The offset and length of a read must not be negative")
        if length > MAX_READ_BYTES:
            raise ApiError(
                400,
                "MAX_READ_SIZE_EXCEEDED",
                f"Cannot read more than {MAX_READ_BYTES} bytes at once (asked for {length})",
            )
        if self.tree.is_dir(names(path)):
            raise bad_request(f"The path {path} is a directory")
        try:
            with self.tree.open_file(names(path)) as fd:
                found = os.fstat(fd)
                if stat.S_ISDIR(found.st_mode):  # made a folder meanwhile
                    raise bad_request(f"The path {path} is a directory")
                data = os.pread(fd, length, offset) if offset < found.st_size else b""
        except (FileNotFoundError, NotADirectoryError):
            raise not_found(f"No file or directory exists on path {path}.") from None
        return {"bytes_read": len(data), "data": base64.b64encode(data).decode()}

    def get_status(self, req: Request) -> dict[str, Any]:
        path = self._path(req)
        found = self._exists(path)
        if found is None:
            raise not_found(f"No file or directory exists on path {path}.")
        return self._info(path, found)

    def list(self, req: Request) -> dict[str, Any]:
        path = self._path(req)
        found = self._exists(path)
        if found is None:
            raise not_found(f"No file or directory exists on path {path}.")
        if not stat.S_ISDIR(found.st_mode):
            return {"files": [self._info(path, found)]}
        base = path.rstrip("/")
        try:
            entries = self.tree.entries(names(path))
        except (FileNotFoundError, NotADirectoryError):
            raise not_found(f"No file or directory exists on path {path}.") from None
        files = [self._info(f"{base}/{name}", status) for name, status in entries]
        return {"files": files} if files else {}

    # --- structure -----------------------------------------------------------------------
    def mkdirs(self, req: Request) -> dict[str, Any]:
        path = self._path(req)
        with self._lock:
            self._make_parents(path + "/x")
        return {}

    def delete(self, req: Request) -> dict[str, Any]:
        path = self._path(req)
        recursive = req.flag("recursive")
        if path == "/":
            raise bad_request("The DBFS root can't be deleted")
        parts = names(path)
        with self._lock:
            found = self.tree.lstat(parts)
            if found is None:
                return {}  # a path that does not exist: the service answers success too
            if stat.S_ISDIR(found.st_mode) and self.tree.entries(parts) and not recursive:
                raise ApiError(
                    400, "IO_ERROR", f"The directory {path} is not empty (use recursive)"
                )
            # a link is removed itself, never what it points to
            _, doomed = self.tree.detach(parts)
        purge(doomed)  # a large folder's files go after the lock: other requests go on
        return {}

    def move(self, req: Request) -> dict[str, Any]:
        source = self._path(req, "source_path")
        target = self._path(req, "destination_path")
        if source == "/" or target == "/":
            raise bad_request("The DBFS root can't be moved or replaced")
        if target == source or target.startswith(source.rstrip("/") + "/"):
            raise bad_request(f"Cannot move {source} into itself ({target})")
        with self._lock:
            if self._exists(source) is None:
                raise not_found(f"No file or directory exists on path {source}.")
            if self._exists(target) is not None:
                raise already_exists(
                    f"A file or directory already exists at the input path {target}."
                )
            self._make_parents(target)
            self.tree.move(names(source), names(target))
        return {}


def _in_the_way(tree: Tree, parts: tuple[str, ...]) -> str:
    """The first path of ``parts`` that is not a folder (for the message)."""
    for depth in range(1, len(parts) + 1):
        found = tree.lstat(parts[:depth])
        if found is None or not stat.S_ISDIR(found.st_mode):
            return "/" + "/".join(parts[:depth])
    return "/" + "/".join(parts)


def normalize_dbfs_path(raw: str, *, field: str = "path") -> str:
    """An absolute DBFS path without scheme, trailing slash or dot segments."""
    text = raw[len("dbfs:") :] if raw.startswith("dbfs:") else raw
    if not text.startswith("/"):
        raise bad_request(f"Invalid {field}: '{raw[:200]}' is not an absolute DBFS path")
    check_path(text, field=field, max_bytes=MAX_DBFS_PATH_BYTES)
    if any(ord(ch) < 32 for ch in text):
        raise bad_request(f"Invalid {field}: contains control characters")
    parts = [p for p in text.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise bad_request(f"Invalid {field}: '{raw[:200]}' contains '.' or '..' segments")
    return "/" + "/".join(parts)


def parse_form(content_type: str, body: bytes) -> dict[str, bytes]:
    """The parts of a ``multipart/form-data`` body by form name, byte for byte.

    Binary file parts are kept exactly (no line-ending or nested-multipart interpretation,
    whatever the part's own Content-Type says: the legacy CLI labels its file part
    ``multipart/form-data``).
    """
    header = Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ApiError(400, "MALFORMED_REQUEST", "A multipart body needs a boundary")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    segments = (b"\r\n" + body).split(delimiter)
    parts: dict[str, bytes] = {}
    closed = False
    for segment in segments[1:]:
        if segment.startswith(b"--"):
            closed = True
            break
        head, sep, content = segment.partition(b"\r\n\r\n")
        if not sep:
            raise ApiError(400, "MALFORMED_REQUEST", "Malformed multipart body")
        part = Message()
        for line in head.decode("latin-1").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                part[name.strip()] = value.strip()
        field_name = part.get_param("name", header="content-disposition")
        if isinstance(field_name, str):
            parts[field_name] = content
    if not closed:
        raise ApiError(400, "MALFORMED_REQUEST", "Malformed multipart body: no closing boundary")
    return parts


def _form_text(form: dict[str, bytes], name: str, default: str | None = None) -> str:
    value = form.get(name)
    if value is None:
        if default is None:
            raise bad_request(f"Missing required field: {name}")
        return default
    return value.decode("utf-8", "replace")


def _form_file(form: dict[str, bytes]) -> bytes:
    """The posted file, whatever its form name (``contents`` if present)."""
    if "contents" in form:
        return form["contents"]
    uploads = [name for name in form if name not in _FORM_FIELDS]
    if len(uploads) != 1:
        raise bad_request("A multipart put needs exactly one file part")
    return form[uploads[0]]


def _base64_length(size: int) -> int:
    return 4 * ((size + 2) // 3)


def _decode(raw: str, name: str) -> bytes:
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"Invalid {name}: not valid base64") from None


def _too_large(name: str) -> ApiError:
    return ApiError(
        400,
        "MAX_BLOCK_SIZE_EXCEEDED",
        f"The {name} of one request is limited to {MAX_BLOCK_BYTES} bytes (1 MB); "
        "use create, add-block and close for larger files",
    )
