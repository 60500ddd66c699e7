"""Workspace path to notebook source, read from the workspace store's sqlite database.

The store (owned by the server) keeps one row per object in ``objects(path, object_type,
language, ...)`` and the content of a notebook at ``workspace_root + path`` on disk. This module
only reads that database, through a fresh read-only connection per lookup, so it is safe from
any thread or process (``child.py`` uses it in a child notebook's process).
"""

from __future__ import annotations

import contextlib
import posixpath
import sqlite3
from typing import TYPE_CHECKING

from orchestrator.local.runtime.execution import NotebookResolver, NotebookSource
from orchestrator.local.state.notebook_format import LANGUAGES

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["NotebookNotFound", "make_sqlite_resolver", "workspace_file"]


class NotebookNotFound(LookupError):
    """No notebook at that workspace path."""


def workspace_file(workspace_root: Path, workspace_path: str) -> Path:
    """Where the object at the absolute ``workspace_path`` lives under ``workspace_root``."""
    relative = posixpath.normpath(workspace_path).lstrip("/")
    if relative.startswith("..") or relative == ".":
        raise NotebookNotFound(workspace_path)
    return workspace_root / relative


def make_sqlite_resolver(state_db: Path, workspace_root: Path) -> NotebookResolver:
    """A resolver that looks notebooks up in the store's ``objects`` table."""
    uri = f"{state_db.resolve().as_uri()}?mode=ro"

    def resolve(workspace_path: str) -> NotebookSource:
        path = posixpath.normpath(workspace_path)
        if not path.startswith("/"):
            raise NotebookNotFound(f"not an absolute workspace path: {workspace_path}")
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as connection:
            row = connection.execute(
                "SELECT object_type, language FROM objects WHERE path = ?", (path,)
            ).fetchone()
        if row is None or row[0] != "NOTEBOOK":
            raise NotebookNotFound(f"notebook not found: {path}")
        language = str(row[1] or "").upper()
        if language not in LANGUAGES:
            raise NotebookNotFound(f"notebook {path} has an unknown language {row[1]!r}")
        return NotebookSource(
            workspace_path=path,
            file=workspace_file(workspace_root, path),
            language=language,
        )

    return resolve
