"""Workspace API 2.0 of the local workspace: mkdirs, import, export, list, get-status, delete.

Notebooks are stored as Databricks SOURCE text, whatever format they were imported in; plain
workspace files are stored byte for byte. Limits and error codes follow the service:
imports whose content is over 10 MB as base64 (``state/limits.py``) fail with
``MAX_NOTEBOOK_SIZE_EXCEEDED``, an existing path without
``overwrite`` with ``RESOURCE_ALREADY_EXISTS``, a missing parent folder with
``RESOURCE_DOES_NOT_EXIST``, a non-empty folder without ``recursive`` with
``DIRECTORY_NOT_EMPTY``. The special folders ``/Users`` and ``/Shared`` and the homes of the
workspace's principals cannot be deleted: ``DIRECTORY_PROTECTED`` "Folder <name> is
protected", what the service answers for a home whose user exists.

A Git folder (``REPO``, made by the Repos API) is a folder here: listed, imported into and
deleted like one (deleting it deletes the Git folder); its notebooks live on disk with their
extension (:mod:`orchestrator.local.state.git_tree`), and one imported into it is written so.
"""

from __future__ import annotations

import base64
import binascii
import os
import posixpath
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.local.api.routing import Request, Response, Router
from orchestrator.local.state import notebook_format as notebooks
from orchestrator.local.state.api_error import ApiError, already_exists, bad_request, not_found
from orchestrator.local.state.confined import names, purge
from orchestrator.local.state.git_folders import GitFolders, git_folder_of
from orchestrator.local.state.git_tree import notebook_file
from orchestrator.local.state.limits import (
    base64_size,
    check_import_size,
    check_path,
    normalize_path,
    workspace_path_limit,
)
from orchestrator.local.state.store import ObjectRow, Store, now_ms

__all__ = ["WorkspaceApi"]

_LANGUAGES = ("PYTHON", "R", "SQL", "SCALA")
_EXTENSIONS = {"PYTHON": "py", "R": "r", "SQL": "sql", "SCALA": "scala"}
#: the object types that hold others: folders and Git folders
_FOLDERS = ("DIRECTORY", "REPO")
_HEADERS = {
    "PYTHON": "# Databricks notebook source\n",
    "R": "# Databricks notebook source\n",
    "SQL": "-- Databricks notebook source\n",
    "SCALA": "// Databricks notebook source\n",
}


class WorkspaceApi:
    def __init__(
        self,
        store: Store,
        git_folders: GitFolders | None = None,
        *,
        protected: tuple[str, ...] = (),
    ) -> None:
        self.store = store
        #: the Git folders, whose records go with a deleted folder that holds them
        self.git_folders = git_folders
        #: folders that cannot be deleted: ``/Users``, ``/Shared``, the principals' homes
        self.protected = frozenset(protected)
        self._lock = threading.RLock()
        #: the longest path that fits the mirror under this state dir (``state/limits.py``)
        self.max_path_bytes = workspace_path_limit(store.workspace_root)

    def register(self, router: Router) -> None:
        v = ("2.0",)
        router.api("POST", "workspace/mkdirs", v, self.mkdirs)
        router.api("POST", "workspace/import", v, self.import_)
        router.api("GET", "workspace/export", v, self.export)
        router.api("GET", "workspace/list", v, self.list)
        router.api("GET", "workspace/get-status", v, self.get_status)
        router.api("POST", "workspace/delete", v, self.delete)

    # --- helpers -------------------------------------------------------------------------
    def _require(self, path: str) -> ObjectRow:
        row = self.store.get_object(path)
        if row is None:
            raise not_found(f"Path ({path}) doesn't exist.")
        return row

    def _new_row(self, path: str, kind: str, language: str | None, size: int | None) -> ObjectRow:
        stamp = now_ms()
        existing = self.store.get_object(path)
        object_id = existing.object_id if existing else self.store.next_id("object")
        created = existing.created_at if existing else stamp
        return ObjectRow(path, kind, language, object_id, created, stamp, size)

    def _mkdirs(self, path: str) -> None:
        """Make ``path`` and the folders above it: checked against the index first, then the
        mirror's folders made in one walk, then the index's rows, so a refusal (a notebook in
        the way, a link in the mirror) leaves nothing made."""
        parts = names(path)
        missing: list[str] = []
        for depth in range(1, len(parts) + 1):
            current = "/" + "/".join(parts[:depth])
            row = self.store.get_object(current)
            if row is None:
                missing.append(current)
            elif row.object_type not in _FOLDERS:
                raise already_exists(f"Path ({current}) already exists and is not a directory.")
        if not missing:
            return
        with _mirror(path):
            self.store.workspace_tree.makedirs(parts)
        for current in missing:
            self.store.put_object(self._new_row(current, "DIRECTORY", None, None))

    def _check_creatable(self, path: str) -> None:
        """A path that would not fit the mirror under the state dir is 400 before anything."""
        check_path(path, field="path", max_bytes=self.max_path_bytes)

    # --- endpoints -----------------------------------------------------------------------
    def mkdirs(self, req: Request) -> dict[str, Any]:
        path = normalize_path(req.required_text("path"))
        self._check_creatable(path)
        with self._lock:
            self._mkdirs(path)
        return {}

    def import_(self, req: Request) -> dict[str, Any]:
        path = normalize_path(req.required_text("path"))
        fmt = (req.text("format") or "SOURCE").upper()
        language = (req.text("language") or "").upper() or None
        overwrite = req.flag("overwrite")
        content = self._content(req)
        if language is not None and language not in _LANGUAGES:
            raise bad_request(f"Invalid language: {language}")
        target, kind, lang, data = self._interpret(path, fmt, language, content)
        if target == "/":
            raise bad_request("Cannot import to the root folder")
        self._check_creatable(target)
        parent = posixpath.dirname(target)
        with self._lock:
            parent_row = self.store.get_object(parent)
            if parent_row is None or parent_row.object_type not in _FOLDERS:
                raise not_found(f"The parent folder ({parent}) does not exist.")
            existing = self.store.get_object(target)
            if existing is not None:
                if existing.object_type in _FOLDERS:
                    raise already_exists(f"Path ({target}) already exists and is a folder.")
                if not overwrite:
                    raise already_exists(f"Path ({target}) already exists.")
            parts = names(target)
            if kind == "NOTEBOOK" and lang and git_folder_of(self.store, parent) is not None:
                parts = (*parts[:-1], f"{parts[-1]}.{_EXTENSIONS[lang]}")  # as in Git
            # where the object replaced is on disk, found before the new file can hide it
            old = self._disk_parts(existing) if existing is not None else parts
            # the temporary file outside the tree: a kernel listing the folder never sees it
            fd, name = tempfile.mkstemp(dir=self.store.tmp_root, prefix="import-")
            temporary = Path(name)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                with _mirror(target):
                    self.store.workspace_tree.place(temporary, parts)
            finally:
                temporary.unlink(missing_ok=True)
            if old != parts:
                with _mirror(target):
                    self.store.workspace_tree.remove(old)  # a notebook now in another file
            self.store.put_object(self._new_row(target, kind, lang, len(data)))
        return {}

    def _content(self, req: Request) -> bytes:
        """The content to import, checked against the 10 MB limit of its base64 first."""
        if "content" in req.files:
            data = req.files["content"]
            check_import_size(base64_size(len(data)))  # what the JSON request would carry
            return data
        raw = req.get("content")
        if raw is None:
            return b""
        if not isinstance(raw, str):
            raise bad_request("Invalid content: expected a base64 string")
        check_import_size(len(raw))
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("Invalid content: not valid base64") from None

    def _interpret(
        self, path: str, fmt: str, language: str | None, content: bytes
    ) -> tuple[str, str, str | None, bytes]:
        """Target path, object type, language and the bytes to store."""
        if fmt in ("RAW",):
            return path, "FILE", None, content
        if fmt == "JUPYTER" or (fmt == "AUTO" and path.endswith(".ipynb")):
            try:
                nb = notebooks.parse_ipynb(content, default_language=language or "PYTHON")  # type: ignore[arg-type]
            except notebooks.NotebookFormatError as exc:
                raise bad_request(f"Invalid Jupyter notebook: {exc}") from None
            if language:
                nb = notebooks.Notebook(language=language, cells=nb.cells)  # type: ignore[arg-type]
            target = path[: -len(".ipynb")] if path.endswith(".ipynb") else path
            return target, "NOTEBOOK", nb.language, notebooks.to_source(nb).encode()
        if fmt == "SOURCE":
            lang = language or notebooks.language_from_extension(path)
            if lang is None:
                raise bad_request("The language field is required when importing in SOURCE format")
            return path, "NOTEBOOK", lang, _with_header(_utf8_source(content), lang)
        if fmt == "AUTO":
            family = notebooks.looks_like_source(content)
            if family is None:
                return path, "FILE", None, content
            ext_lang = notebooks.language_from_extension(path)
            lang = language or ext_lang or family
            target = posixpath.splitext(path)[0] if ext_lang else path
            return target, "NOTEBOOK", lang, _utf8_source(content)
        raise bad_request(f"Unsupported import format: {fmt}")

    def export(self, req: Request) -> Response | dict[str, Any]:
        path = normalize_path(req.required_text("path"))
        fmt = (req.text("format") or "SOURCE").upper()
        row = self._require(path)
        data = b""
        if row.object_type in _FOLDERS:
            raise bad_request(f"Exporting the folder {path} is not supported: export its items")
        with _mirror(path):
            raw = self.store.workspace_tree.read_bytes(self._disk_parts(row))
        if row.object_type == "FILE":
            if fmt not in ("SOURCE", "AUTO", "RAW"):
                raise bad_request(f"A workspace file can't be exported as {fmt}")
            data, file_type = raw, posixpath.splitext(path)[1].lstrip(".")
        else:
            lang = row.language or "PYTHON"
            name = posixpath.basename(path)
            if fmt in ("SOURCE", "AUTO"):
                data, file_type = raw, _EXTENSIONS[lang]
            elif fmt == "JUPYTER":
                nb = notebooks.parse_source(_text(raw), lang)  # type: ignore[arg-type]
                data, file_type = notebooks.to_ipynb(nb, name=name), "ipynb"
            elif fmt == "HTML":
                nb = notebooks.parse_source(_text(raw), lang)  # type: ignore[arg-type]
                data, file_type = notebooks.export_html(nb, title=name).encode(), "html"
            else:
                raise bad_request(f"Unsupported export format: {fmt}")
        if req.flag("direct_download"):
            return Response(200, data, "application/octet-stream")
        return {"content": base64.b64encode(data).decode(), "file_type": file_type}

    def list(self, req: Request) -> dict[str, Any]:
        path = normalize_path(req.required_text("path"))
        row = self._require(path)
        if row.object_type not in _FOLDERS:
            return {"objects": [row.to_api()]}
        children = self.store.children(path)
        return {"objects": [c.to_api() for c in children]} if children else {}

    def get_status(self, req: Request) -> dict[str, Any]:
        path = normalize_path(req.required_text("path"))
        return self._require(path).to_api()

    def delete(self, req: Request) -> dict[str, Any]:
        path = normalize_path(req.required_text("path"))
        recursive = req.flag("recursive")
        if path == "/":
            raise bad_request("The root folder can't be deleted")
        if path in self.protected:
            name = posixpath.basename(path)
            raise ApiError(400, "DIRECTORY_PROTECTED", f"Folder {name} is protected")
        with self._lock:
            row = self._require(path)
            if row.object_type in _FOLDERS and self.store.children(path) and not recursive:
                raise ApiError(400, "DIRECTORY_NOT_EMPTY", f"Folder ({path}) is not empty.")
            with _mirror(path):
                # a link planted where the object was is removed, never followed
                _, doomed = self.store.workspace_tree.detach(self._disk_parts(row))
            if row.object_type in _FOLDERS and self.git_folders is not None:
                for repo in self.git_folders.git.repos_under(path):
                    self.git_folders.forget(repo)
            self.store.delete_tree(path)
        purge(doomed)  # a large folder's files go after the lock: other requests go on
        return {}

    def _disk_parts(self, row: ObjectRow) -> tuple[str, ...]:
        """The mirror's names of an object's content (a Git folder's notebook has its
        extension)."""
        parts = names(row.path)
        if row.object_type == "NOTEBOOK" and parts:
            on_disk = notebook_file(self.store.local_path(row.path), row.language)
            parts = (*parts[:-1], on_disk.name)
        return parts


def _utf8_source(content: bytes) -> bytes:
    """A notebook's source must be UTF-8 text: anything else is refused at import, so that
    every export of it (SOURCE, JUPYTER, HTML) is faithful."""
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(
            f"Invalid content: a notebook's source must be UTF-8 text (byte {exc.start} is not)"
        ) from None
    return content


def _text(raw: bytes) -> str:
    """A stored notebook's text (an older workspace may have kept one that is not UTF-8:
    its undecodable bytes show as U+FFFD rather than failing the export)."""
    return raw.decode("utf-8", "replace")


@contextmanager
def _mirror(path: str) -> Iterator[None]:
    """The mirror disagreeing with the index (a file where a folder should be, a missing
    file) is the state's fault, not the request's: a 400 naming it, never a 500."""
    try:
        yield
    except FileNotFoundError:
        raise not_found(f"Path ({path[:300]}) doesn't exist.") from None
    except OSError as exc:
        raise ApiError(
            400,
            "INVALID_STATE",
            f"The local copy of {path[:300]} does not match the workspace: {exc.strerror}",
        ) from None


def _with_header(content: bytes, language: str) -> bytes:
    if notebooks.looks_like_source(content) is not None:
        return content
    return _HEADERS[language].encode() + content
