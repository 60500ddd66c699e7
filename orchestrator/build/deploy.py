"""What a deploy sends: a folder of notebooks and files planned as workspace folders and items.

Files with a Databricks notebook header (``# Databricks notebook source``, ``-- ...``,
``// ...``) become notebooks of their extension's language, without the extension, as Databricks
itself names them; every other file becomes a workspace file. Everything is checked here, before
the first request (sizes, names); the adapter
(:meth:`~orchestrator.adapters.databricks.DatabricksWorkspace.deploy`) then creates the folders and
imports the items in parallel.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from pathlib import Path

from orchestrator.adapters.databricks import DeployItem
from orchestrator.errors import UsageError

__all__ = ["MAX_IMPORT_BYTES", "DeployItem", "plan_deploy"]

MAX_IMPORT_BYTES = 10 * 1024 * 1024
_HEADERS = {
    b"# Databricks notebook source": "#",
    b"-- Databricks notebook source": "--",
    b"// Databricks notebook source": "//",
}
_LANGUAGES = {".py": "PYTHON", ".r": "R", ".sql": "SQL", ".scala": "SCALA"}
_SKIPPED_PARTS = ("__pycache__", ".git", ".ipynb_checkpoints", ".pytest_cache")


def _notebook_language(path: Path) -> str | None:
    language = _LANGUAGES.get(path.suffix.lower())
    if language is None:
        return None
    with path.open("rb") as handle:
        first = handle.readline().strip()
    return language if first in _HEADERS else None


def plan_deploy(
    local: Path, target: str, *, exclude: Iterable[Path] = ()
) -> tuple[list[str], list[DeployItem]]:
    """Folders to create and items to import; UsageError for anything that can't be sent."""
    if not local.is_dir():
        raise UsageError(f"{local}: the notebooks folder does not exist")
    excluded = [p.resolve() for p in exclude]
    items: list[DeployItem] = []
    folders: set[str] = {target}
    problems: list[str] = []
    for path in sorted(local.rglob("*")):
        rel = path.relative_to(local)
        if any(part in _SKIPPED_PARTS for part in rel.parts):
            continue
        resolved = path.resolve()
        if any(resolved == e or e in resolved.parents for e in excluded):
            continue
        remote = posixpath.join(target, rel.as_posix())
        if path.is_dir():
            folders.add(remote)
            continue
        size = path.stat().st_size
        if size > MAX_IMPORT_BYTES:
            problems.append(
                f"{path}: {size} bytes is over the workspace import limit of "
                f"{MAX_IMPORT_BYTES} bytes (10 MB); move it to the test data"
            )
            continue
        language = _notebook_language(path)
        if language is not None:
            items.append(
                DeployItem(path, posixpath.splitext(remote)[0], "NOTEBOOK", language, size)
            )
        else:
            items.append(DeployItem(path, remote, "FILE", None, size))
    seen: dict[str, Path] = {}
    for item in items:
        if item.target in seen or item.target in folders:
            other = seen.get(item.target, "a folder")
            problems.append(f"{item.source}: deploys to {item.target}, as {other} does")
        seen[item.target] = item.source
    if problems:
        raise UsageError("; ".join(problems))
    parents = {posixpath.dirname(i.target) for i in items} | folders
    # only leaves: mkdirs creates the parents
    leaves = sorted(f for f in parents if not any(o.startswith(f + "/") for o in parents))
    return leaves, items
