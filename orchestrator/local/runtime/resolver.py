"""Workspace path to notebook source, read from the workspace store's sqlite database.

The store (owned by the server) keeps one row per object in ``objects(path, object_type,
language, ...)`` and the content of a notebook at ``workspace_root + path`` on disk. This module
only reads that database, through a fresh read-only connection per lookup, so it is safe from
any thread or process (``child.py`` uses it in a child notebook's process).

Git folders (a ``REPO`` object and the objects below it) keep their notebooks with their
extension on disk (``nb.py`` for the notebook ``nb``), and a ``git_source`` run's snapshot
(``/Repos/.internal/<id>_commits/<commit>``) has no objects at all: its notebooks are found on
disk. A notebook in either carries its root as ``repo_root`` (see
:mod:`orchestrator.local.state.git_tree`).
"""

from __future__ import annotations

import contextlib
import posixpath
import sqlite3
from typing import TYPE_CHECKING

from orchestrator.local.runtime.execution import NotebookResolver, NotebookSource
from orchestrator.local.state.git_tree import find_notebook, notebook_file, snapshot_root_of
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
        snapshot = snapshot_root_of(path)
        if snapshot is not None:
            root = workspace_file(workspace_root, snapshot)
            found = find_notebook(root, path[len(snapshot) :])
            if found is None:
                raise NotebookNotFound(f"notebook not found: {path}")
            return NotebookSource(path, found[0], found[1], repo_root=root)
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as connection:
            row = connection.execute(
                "SELECT object_type, language FROM objects WHERE path = ?", (path,)
            ).fetchone()
            repo = connection.execute(  # the Git folder the notebook is in, if any
                "SELECT path FROM objects WHERE object_type = 'REPO' "
                "AND substr(?, 1, length(path) + 1) = path || '/'",
                (path,),
            ).fetchone()
        if row is None or row[0] != "NOTEBOOK":
            raise NotebookNotFound(f"notebook not found: {path}")
        language = str(row[1] or "").upper()
        if language not in LANGUAGES:
            raise NotebookNotFound(f"notebook {path} has an unknown language {row[1]!r}")
        return NotebookSource(
            workspace_path=path,
            file=notebook_file(workspace_file(workspace_root, path), language),
            language=language,
            repo_root=None if repo is None else workspace_file(workspace_root, str(repo[0])),
        )

    return resolve
