"""Files API of the local workspace: the files and directories of Unity Catalog volumes.

Databricks serves volumes (``/Volumes/<catalog>/<schema>/<volume>/...``) through
``/api/2.0/fs/files{path}`` (``PUT`` upload, ``GET`` download, ``HEAD`` metadata, ``DELETE``)
and ``/api/2.0/fs/directories{path}`` (``PUT`` create, ``GET`` list, ``HEAD`` exists,
``DELETE`` an empty one), databricks-sdk's ``w.files``. Here a volume is a folder of the DBFS
root, ``dbfs/Volumes/<catalog>/<schema>/<volume>/``, the folder notebooks read as ``/Volumes``
(Python's ``open``, ``dbutils.fs``, Spark, R's file functions) and the DBFS API as
``dbfs:/Volumes/...``. There is no Unity Catalog: a volume exists when its folder does (made
by ``local.dbfs``, ``dbutils.fs.mkdirs`` or DBFS ``mkdirs``), and a path in a volume that does
not exist is 404, as on the service.

Shapes follow databricks-sdk's ``files.py``: an upload's body is the file's bytes
(``overwrite``, true by default, in the query); a download's body is the file, with
``Content-Type: application/octet-stream``, ``Content-Length``, ``Last-Modified`` and one
``Range: bytes=a-b`` honoured (206); metadata is those headers without a body; a listing is
``{"contents": [DirectoryEntry...], "next_page_token": ...}`` with at most ``page_size``
(default and at most 1,000) entries by name. Success without content is 204.

Guessed, as the reference gives no answer: the error codes and messages (404 ``NOT_FOUND``,
409 ``ALREADY_EXISTS`` for an existing file without ``overwrite``, 400
``INVALID_PARAMETER_VALUE`` for a path outside a volume, 400 ``DIRECTORY_NOT_EMPTY``), that an
upload makes the folders above the file, and the page token (the last name, base64). An
upload is at most the server's 64 MiB body (the service takes 5 GiB). The tree is reached
through real folders only (``state/confined.py``); writes go through a temporary file.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import os
import re
import stat
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from orchestrator.local.api.routing import Handler, Request, Response, Router
from orchestrator.local.state.api_error import ApiError, bad_request
from orchestrator.local.state.limits import MAX_DBFS_PATH_BYTES, check_path
from orchestrator.local.state.store import Store

__all__ = ["MAX_PAGE_SIZE", "FilesApi"]

MAX_PAGE_SIZE = 1000
_FILES = "fs/files"
_DIRECTORIES = "fs/directories"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_TEMP_PREFIX = "files-"
#: ``/Volumes`` and the catalog, schema and volume names before a path inside a volume
_VOLUME_DEPTH = 4


def _not_found(path: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"The file or directory {path[:300]} does not exist.")


class FilesApi:
    def __init__(self, store: Store) -> None:
        #: who answers for ``/Models/...`` (Unity Catalog's model files, served with MLflow's
        #: registry: ``api/mlflow_uc_registry.py``); without one they are not in a volume (400)
        self.models: Handler | None = None
        self.tree = store.dbfs_tree
        self.tmp_root = store.tmp_root
        self._lock = threading.Lock()  # structure: folders made, files placed, deletes

    def register(self, router: Router) -> None:
        v = ("2.0",)
        routes: list[tuple[str, str, Handler]] = [
            ("PUT", _FILES, self.upload),
            ("GET", _FILES, self.download),
            ("HEAD", _FILES, self.metadata),
            ("DELETE", _FILES, self.delete),
            ("PUT", _DIRECTORIES, self.create_directory),
            ("GET", _DIRECTORIES, self.list_directory),
            ("HEAD", _DIRECTORIES, self.directory_metadata),
            ("DELETE", _DIRECTORIES, self.delete_directory),
        ]
        for method, kind, handler in routes:
            router.api_prefix(method, f"{kind}/", v, self._or_models(kind, handler))

    def _or_models(self, kind: str, handler: Handler) -> Handler:
        """``handler``, but for the model files of Unity Catalog's registry (``/Models/...``)."""

        def handle(req: Request) -> Response | Mapping[str, Any] | None:
            if self.models is not None and req.route.startswith(f"{kind}/Models/"):
                return self.models(req)
            return handler(req)

        return handle

    # --- paths ---------------------------------------------------------------------------
    def _target(self, req: Request, kind: str) -> tuple[str, tuple[str, ...]]:
        """The request's path (``/Volumes/...``) and its names; 400 for a path that is not
        in a volume, 404 when its volume does not exist."""
        raw = req.route[len(kind) :]
        try:
            path = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise bad_request("The path is not valid UTF-8") from None
        if any(ord(ch) < 32 for ch in path):
            raise bad_request("The path contains control characters")
        parts = tuple(p for p in path.split("/") if p)
        if not path.startswith("/") or any(p in (".", "..") for p in parts):
            raise bad_request(f"Invalid path {path[:300]!r}: expected an absolute path")
        check_path(path, field="path", max_bytes=MAX_DBFS_PATH_BYTES)
        if len(parts) < _VOLUME_DEPTH or parts[0] != "Volumes":
            raise bad_request(
                f"Invalid path {path[:300]!r}: the local workspace's Files API serves "
                "Unity Catalog volumes, /Volumes/<catalog>/<schema>/<volume>/..."
            )
        if not self.tree.is_dir(parts[:_VOLUME_DEPTH]):
            catalog, schema, volume = parts[1:_VOLUME_DEPTH]
            raise ApiError(
                404, "NOT_FOUND", f"Volume '{catalog}.{schema}.{volume}' does not exist."
            )
        return "/" + "/".join(parts), parts

    def _status(self, parts: tuple[str, ...]) -> os.stat_result | None:
        return self.tree.lstat(parts)

    # --- files ---------------------------------------------------------------------------
    def upload(self, req: Request) -> Response:
        path, parts = self._target(req, _FILES)
        if len(parts) == _VOLUME_DEPTH:
            raise bad_request(f"{path} is a volume, not a file")
        overwrite = _query_flag(req, "overwrite", default=True)
        found = self._status(parts)
        if found is not None and stat.S_ISDIR(found.st_mode):
            raise ApiError(409, "ALREADY_EXISTS", f"A directory already exists at {path}.")
        if found is not None and not overwrite:
            raise ApiError(409, "ALREADY_EXISTS", f"The file {path} already exists.")
        fd, name = tempfile.mkstemp(dir=self.tmp_root, prefix=_TEMP_PREFIX)
        temp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(req.body)
            with self._lock:
                again = self._status(parts)
                if again is not None and not overwrite:  # made meanwhile
                    raise ApiError(409, "ALREADY_EXISTS", f"The file {path} already exists.")
                try:
                    self.tree.place(temp, parts, make_parents=True)
                except (NotADirectoryError, FileExistsError, IsADirectoryError):
                    raise ApiError(
                        409, "ALREADY_EXISTS", f"A file is in the way of {path}."
                    ) from None
        finally:
            temp.unlink(missing_ok=True)
        return Response(204, b"")

    def _read(
        self, req: Request, span: Callable[[int], tuple[int, int] | None]
    ) -> tuple[bytes, os.stat_result, tuple[int, int] | None]:
        """The file's bytes (those of ``span(size)`` when it gives a range, none when it gives
        an empty one), its status and the range read."""
        path, parts = self._target(req, _FILES)
        found = self._status(parts)
        if found is None or not stat.S_ISREG(found.st_mode):
            raise _not_found(path)
        try:
            with self.tree.open_file(parts) as fd:
                status = os.fstat(fd)
                if not stat.S_ISREG(status.st_mode):  # replaced meanwhile
                    raise _not_found(path)
                wanted = span(status.st_size)
                start, end = wanted if wanted is not None else (0, status.st_size - 1)
                data = _pread_all(fd, end - start + 1, start) if end >= start else b""
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise _not_found(path) from None
        return data, status, wanted

    def download(self, req: Request) -> Response:
        wanted = req.headers.get("Range")
        data, status, span = self._read(req, lambda size: _range(wanted, size) if wanted else None)
        since = req.headers.get("If-Unmodified-Since")
        if since:
            try:
                limit = email.utils.parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError):
                limit = None
            if limit is not None and int(status.st_mtime) > limit:
                raise ApiError(412, "PRECONDITION_FAILED", "The file was modified since then.")
        headers = [("Last-Modified", _http_date(status.st_mtime))]
        if span is not None:
            start, end = span
            headers.append(("Content-Range", f"bytes {start}-{end}/{status.st_size}"))
            return Response(206, data, "application/octet-stream", tuple(headers))
        return Response(200, data, "application/octet-stream", tuple(headers))

    def metadata(self, req: Request) -> Response:
        # the headers of the download, without reading the file (HEAD sends no body)
        _, status, _ = self._read(req, lambda size: (0, -1))
        headers = (
            ("Content-Length", str(status.st_size)),
            ("Last-Modified", _http_date(status.st_mtime)),
        )
        return Response(200, b"", "application/octet-stream", headers)

    def delete(self, req: Request) -> Response:
        path, parts = self._target(req, _FILES)
        with self._lock:
            found = self._status(parts)
            if found is None or stat.S_ISDIR(found.st_mode):
                raise _not_found(path)
            self.tree.remove(parts)
        return Response(204, b"")

    # --- directories ---------------------------------------------------------------------
    def create_directory(self, req: Request) -> Response:
        path, parts = self._target(req, _DIRECTORIES)
        with self._lock:
            try:
                self.tree.makedirs(parts)
            except (NotADirectoryError, FileExistsError):
                raise ApiError(
                    409, "ALREADY_EXISTS", f"A file is in the way of the directory {path}."
                ) from None
        return Response(204, b"")

    def _directory(self, req: Request) -> tuple[str, tuple[str, ...]]:
        path, parts = self._target(req, _DIRECTORIES)
        if not self.tree.is_dir(parts):
            raise _not_found(path)
        return path, parts

    def list_directory(self, req: Request) -> dict[str, Any]:
        path, parts = self._directory(req)
        size = _query_int(req, "page_size", default=MAX_PAGE_SIZE)
        if size < 1:
            raise bad_request("page_size must be positive")
        size = min(size, MAX_PAGE_SIZE)
        after = _page_token(req)
        try:
            entries = self.tree.entries(parts)
        except (FileNotFoundError, NotADirectoryError):
            raise _not_found(path) from None
        if after is not None:
            entries = [entry for entry in entries if entry[0] > after]
        page, rest = entries[:size], entries[size:]
        base = path.rstrip("/")
        contents = [_entry(f"{base}/{name}", name, status) for name, status in page]
        body: dict[str, Any] = {"contents": contents} if contents else {}
        if rest and page:
            body["next_page_token"] = base64.urlsafe_b64encode(page[-1][0].encode()).decode()
        return body

    def directory_metadata(self, req: Request) -> Response:
        self._directory(req)
        return Response(200, b"")

    def delete_directory(self, req: Request) -> Response:
        path, parts = self._directory(req)
        if len(parts) == _VOLUME_DEPTH:
            raise bad_request(f"{path} is a volume: volumes are deleted through Unity Catalog")
        with self._lock:
            if not self.tree.is_dir(parts):
                raise _not_found(path)
            if self.tree.entries(parts):
                raise ApiError(400, "DIRECTORY_NOT_EMPTY", f"The directory {path} is not empty.")
            self.tree.remove(parts)
        return Response(204, b"")


def _entry(path: str, name: str, status: os.stat_result) -> dict[str, Any]:
    """A ``DirectoryEntry`` (a link planted by a notebook is shown as a file, not followed)."""
    entry: dict[str, Any] = {
        "path": path,
        "name": name,
        "is_directory": stat.S_ISDIR(status.st_mode),
        "last_modified": int(status.st_mtime * 1000),
    }
    if not entry["is_directory"]:
        entry["file_size"] = status.st_size
    return entry


def _query(req: Request, name: str) -> str | None:
    values = req.query.get(name)
    return values[-1] if values else None


def _query_flag(req: Request, name: str, *, default: bool) -> bool:
    # the body of an upload is the file: only the query string holds parameters
    value = _query(req, name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise bad_request(f"Invalid value for {name}: {value[:40]!r} is not a boolean")


def _query_int(req: Request, name: str, *, default: int) -> int:
    value = _query(req, name)
    if value is None or value == "":
        return default
    if not re.fullmatch(r"[+-]?[0-9]{1,18}", value.strip()):
        raise bad_request(f"Invalid value for {name}: {value[:40]!r} is not an integer")
    return int(value)


def _page_token(req: Request) -> str | None:
    token = _query(req, "page_token")
    if not token:
        return None
    try:
        return base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise bad_request("Invalid page_token") from None


def _range(header: str, size: int) -> tuple[int, int] | None:
    """The first and last byte of a ``bytes=a-b`` range within ``size``; None to send the
    whole file (another unit, several ranges, or a range past the end)."""
    match = _RANGE.fullmatch(header.strip())
    if match is None or size == 0:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # the last n bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start > end or start >= size:
        return None
    return start, end


def _pread_all(fd: int, length: int, offset: int) -> bytes:
    chunks: list[bytes] = []
    while length > 0:
        chunk = os.pread(fd, min(length, 1 << 24), offset)
        if not chunk:
            break
        chunks.append(chunk)
        length -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)
