"""Deploying a folder of notebooks and files to a Databricks workspace folder, and removing it.

Files with a Databricks notebook header (``# Databricks notebook source``, ``-- ...``,
``// ...``) become notebooks of their extension's language, without the extension, as Databricks
itself names them; every other file becomes a workspace file. Everything is checked before the
first request (sizes, names), folders are created first, then files are imported in parallel with
bounded concurrency through ``workspace.import_`` (JSON), which the SDK retries on 429/503; its
multipart ``upload`` is not retried.
"""

from __future__ import annotations

import base64
import logging
import posixpath
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import InfrastructureError, UsageError

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

__all__ = ["MAX_IMPORT_BYTES", "DeployItem", "delete_folder", "deploy", "plan_deploy"]

log = logging.getLogger(__name__)

MAX_IMPORT_BYTES = 10 * 1024 * 1024
_HEADERS = {
    b"# Databricks notebook source": "#",
    b"-- Databricks notebook source": "--",
    b"// Databricks notebook source": "//",
}
_LANGUAGES = {".py": "PYTHON", ".r": "R", ".sql": "SQL", ".scala": "SCALA"}
_SKIPPED_PARTS = ("__pycache__", ".git", ".ipynb_checkpoints", ".pytest_cache")


@dataclass(frozen=True)
class DeployItem:
    source: Path
    target: str  # absolute workspace path
    kind: str  # NOTEBOOK or FILE
    language: str | None
    size: int


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


def deploy(
    client: WorkspaceClient,
    local: Path,
    target: str,
    *,
    concurrency: int = 16,
    exclude: Iterable[Path] = (),
    progress: Callable[[int, int], None] | None = None,
) -> list[DeployItem]:
    """Copy ``local`` into the workspace folder ``target``; returns what was deployed."""
    from databricks.sdk.errors.base import DatabricksError
    from databricks.sdk.service.workspace import ImportFormat, Language

    folders, items = plan_deploy(local, target, exclude=exclude)
    workers = max(1, concurrency)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mkdirs") as pool:
        # leaf folders only, so no two calls create the same parent: one round trip in all
        try:
            list(pool.map(client.workspace.mkdirs, folders))
        except DatabricksError as exc:
            raise InfrastructureError(f"workspace mkdirs {target}: {exc}") from exc

    def send(item: DeployItem) -> DeployItem:
        content = base64.b64encode(item.source.read_bytes()).decode()
        if item.kind == "NOTEBOOK":
            assert item.language is not None
            client.workspace.import_(
                item.target,
                content=content,
                format=ImportFormat.SOURCE,
                language=Language(item.language),
                overwrite=True,
            )
        else:
            client.workspace.import_(
                item.target, content=content, format=ImportFormat.AUTO, overwrite=True
            )
        return item

    done = 0
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="deploy") as pool:
        futures = [pool.submit(send, item) for item in items]
        try:
            for future in as_completed(futures):
                future.result()
                done += 1
                if progress is not None:
                    progress(done, len(items))
        except DatabricksError as exc:
            for f in futures:
                f.cancel()
            raise InfrastructureError(f"workspace import into {target}: {exc}") from exc
    return items


def delete_folder(client: WorkspaceClient, path: str) -> bool:
    """Remove a workspace folder recursively; False when it was already gone."""
    from databricks.sdk.errors import NotFound
    from databricks.sdk.errors.base import DatabricksError

    try:
        client.workspace.delete(path, recursive=True)
    except NotFound:
        return False
    except DatabricksError as exc:
        raise InfrastructureError(f"workspace delete {path}: {exc}") from exc
    return True
