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
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import shutil
import threading
from typing import Any

from orchestrator.files import atomic_writer
from orchestrator.local.api.routing import Request, Response, Router
from orchestrator.local.state import notebook_format as notebooks
from orchestrator.local.state.api_error import ApiError, already_exists, bad_request, not_found
from orchestrator.local.state.limits import base64_size, check_import_size, normalize_path
from orchestrator.local.state.store import ObjectRow, Store, now_ms

__all__ = ["WorkspaceApi"]

_LANGUAGES = ("PYTHON", "R", "SQL", "SCALA")
_EXTENSIONS = {"PYTHON": "py", "R": "r", "SQL": "sql", "SCALA": "scala"}
_HEADERS = {
    "PYTHON": "# Databricks notebook source\n",
    "R": "# Databricks notebook source\n",
    "SQL": "-- Databricks notebook source\n",
    "SCALA": "// Databricks notebook source\n",
}


class WorkspaceApi:
    def __init__(self, store: Store, *, protected: tuple[str, ...] = ()) -> None:
        self.store = store
        #: folders that cannot be deleted: ``/Users``, ``/Shared``, the principals' homes
        self.protected = frozenset(protected)
        self._lock = threading.RLock()

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
        current = ""
        for part in [p for p in path.split("/") if p]:
            current += "/" + part
            row = self.store.get_object(current)
            if row is None:
                self.store.local_path(current).mkdir(parents=True, exist_ok=True)
                self.store.put_object(self._new_row(current, "DIRECTORY", None, None))
            elif row.object_type != "DIRECTORY":
                raise already_exists(f"Path ({current}) already exists and is not a directory.")

    # --- endpoints -----------------------------------------------------------------------
    def mkdirs(self, req: Request) -> dict[str, Any]:
        path = normalize_path(req.required_text("path"))
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
        parent = posixpath.dirname(target)
        with self._lock:
            parent_row = self.store.get_object(parent)
            if parent_row is None or parent_row.object_type != "DIRECTORY":
                raise not_found(f"The parent folder ({parent}) does not exist.")
            existing = self.store.get_object(target)
            if existing is not None:
                if existing.object_type == "DIRECTORY":
                    raise already_exists(f"Path ({target}) already exists and is a folder.")
                if not overwrite:
                    raise already_exists(f"Path ({target}) already exists.")
            # the temporary file outside the tree: a kernel listing the folder never sees it
            with atomic_writer(self.store.local_path(target), tmp_dir=self.store.tmp_root) as out:
                out.write(data)
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
            return path, "NOTEBOOK", lang, _with_header(content, lang)
        if fmt == "AUTO":
            family = notebooks.looks_like_source(content)
            if family is None:
                return path, "FILE", None, content
            ext_lang = notebooks.language_from_extension(path)
            lang = language or ext_lang or family
            target = posixpath.splitext(path)[0] if ext_lang else path
            return target, "NOTEBOOK", lang, content
        raise bad_request(f"Unsupported import format: {fmt}")

    def export(self, req: Request) -> Response | dict[str, Any]:
        path = normalize_path(req.required_text("path"))
        fmt = (req.text("format") or "SOURCE").upper()
        row = self._require(path)
        data = b""
        if row.object_type == "DIRECTORY":
            raise bad_request(f"Exporting the folder {path} is not supported: export its items")
        raw = self.store.local_path(path).read_bytes()
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
                nb = notebooks.parse_source(raw.decode("utf-8"), lang)  # type: ignore[arg-type]
                data, file_type = notebooks.to_ipynb(nb, name=name), "ipynb"
            elif fmt == "HTML":
                nb = notebooks.parse_source(raw.decode("utf-8"), lang)  # type: ignore[arg-type]
                data, file_type = notebooks.export_html(nb, title=name).encode(), "html"
            else:
                raise bad_request(f"Unsupported export format: {fmt}")
        if req.flag("direct_download"):
            return Response(200, data, "application/octet-stream")
        return {"content": base64.b64encode(data).decode(), "file_type": file_type}

    def list(self, req: Request) -> dict[str, Any]:
        path = normalize_path(req.required_text("path"))
        row = self._require(path)
        if row.object_type != "DIRECTORY":
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
            local = self.store.local_path(path)
            if row.object_type == "DIRECTORY":
                if self.store.children(path) and not recursive:
                    raise ApiError(400, "DIRECTORY_NOT_EMPTY", f"Folder ({path}) is not empty.")
                shutil.rmtree(local, ignore_errors=True)
            else:
                local.unlink(missing_ok=True)
            self.store.delete_tree(path)
        return {}


def _with_header(content: bytes, language: str) -> bytes:
    if notebooks.looks_like_source(content) is not None:
        return content
    return _HEADERS[language].encode() + content
