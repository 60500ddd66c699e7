"""What a Git folder's files are in the workspace, and where a notebook of one lives on disk.

As on Databricks, a file of a Git folder whose extension is a notebook language's (``.py``,
``.r``/``.R``, ``.sql``, ``.scala``) and whose first line is that language's notebook header
(``# Databricks notebook source``...) is a notebook, listed under its name without the
extension; every other file is a workspace file, listed as it is named. On disk (the mirror) a
Git folder is the repository's work tree, so its notebooks keep their extension there:
:func:`notebook_file` finds the file of a notebook from the path the workspace names it by.

The snapshot of a ``git_source`` run lives in the mirror too, under
``/Repos/.internal/<10 hex digits>_commits/<commit>``, the path Databricks runs such tasks
from (so ``os.getcwd()`` in a task reads ``/Workspace/Repos/.internal/...`` there as well); no
workspace object is made for it: :func:`snapshot_root_of` recognises its paths.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestrator.local.state.notebook_format import (
    HEADER_TEXT,
    Language,
    comment_prefix,
    language_from_extension,
)

__all__ = [
    "SNAPSHOT_ROOT",
    "TreeEntry",
    "find_notebook",
    "notebook_file",
    "notebook_language",
    "snapshot_path",
    "snapshot_root_of",
    "walk_tree",
]

SNAPSHOT_ROOT = "/Repos/.internal"
_SNAPSHOT = re.compile(r"/Repos/\.internal/[0-9a-f]{10}_commits/[0-9a-f]{40}")
#: the file extensions of each language's source notebooks (``.R`` is R's usual spelling)
_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "PYTHON": (".py",),
    "R": (".r", ".R"),
    "SQL": (".sql",),
    "SCALA": (".scala",),
}


@dataclass(frozen=True)
class TreeEntry:
    """One object of a Git folder: its path below the folder (``/``-separated, without a
    notebook's extension), type, language (notebooks) and size (files and notebooks)."""

    relative: str
    object_type: str  # DIRECTORY, NOTEBOOK, FILE
    language: Language | None
    size: int | None


def notebook_language(file: Path) -> Language | None:
    """The language of ``file`` when it is a source notebook (extension and header), else
    ``None``."""
    language = language_from_extension(file.name)
    if language is None:
        return None
    try:
        with file.open("rb") as stream:
            first = stream.readline(200)
    except OSError:
        return None
    try:
        line = first.decode("utf-8").lstrip("\ufeff").strip()
    except UnicodeDecodeError:
        return None
    return language if line == f"{comment_prefix(language)} {HEADER_TEXT}" else None


def notebook_file(base: Path, language: str | None) -> Path:
    """Where the notebook the workspace names ``base`` (a path in the mirror) is on disk:
    ``base`` itself when it is a file (a notebook imported into a plain folder), else the
    file with its language's extension (a notebook of a Git folder). ``base`` when neither
    exists (the caller reports it missing)."""
    if base.is_file():
        return base
    for extension in _EXTENSIONS.get(str(language or ""), ()):
        candidate = base.with_name(base.name + extension)
        if candidate.is_file():
            return candidate
    return base


def find_notebook(root: Path, relative: str) -> tuple[Path, Language] | None:
    """The notebook at ``relative`` (with or without its extension) under ``root``, a
    snapshot or a work tree; ``None`` when there is none."""
    clean = posixpath.normpath(relative.strip("/"))
    if clean in ("", ".") or clean == ".." or clean.startswith("../"):
        return None
    base = root.joinpath(*clean.split("/"))
    if base.is_file():
        language = notebook_language(base)
        return None if language is None else (base, language)
    for extensions in _EXTENSIONS.values():
        for extension in extensions:
            candidate = base.with_name(base.name + extension)
            found = notebook_language(candidate) if candidate.is_file() else None
            if found is not None:
                return candidate, found
    return None


def walk_tree(root: Path) -> Iterator[TreeEntry]:
    """Every object of the work tree at ``root``, parents before children, as the workspace
    lists them (no ``.git``). When a notebook's name is also a file's or a folder's, the
    notebook is left out: a path names one object."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        here = Path(folder)
        prefix = here.relative_to(root).as_posix()
        prefix = "" if prefix == "." else prefix + "/"
        taken = set(dirs) | set(files)
        for name in dirs:
            yield TreeEntry(prefix + name, "DIRECTORY", None, None)
        for name in sorted(files):
            path = here / name
            if name == ".git" or not path.is_file():
                continue
            size = path.stat().st_size
            language = notebook_language(path)
            if language is not None:
                stem = name[: name.rfind(".")]
                if stem and stem not in taken:
                    yield TreeEntry(prefix + stem, "NOTEBOOK", language, size)
                    continue
            yield TreeEntry(prefix + name, "FILE", None, size)


def snapshot_path(run_id: int, commit: str) -> str:
    """The workspace path of run ``run_id``'s snapshot of ``commit``: one per run, so two runs
    of one commit never share (or remove) each other's."""
    digest = hashlib.sha256(f"run-{run_id}".encode()).hexdigest()[:10]
    return f"{SNAPSHOT_ROOT}/{digest}_commits/{commit}"


def snapshot_root_of(path: str) -> str | None:
    """The snapshot ``path`` is in (its workspace path), when it is in one."""
    match = _SNAPSHOT.match(path)
    if match is None or (len(path) > match.end() and path[match.end()] != "/"):
        return None
    return match.group(0)
