"""What a deploy sends: a folder of notebooks and files planned as workspace folders and items.

Files with a Databricks notebook header (``# Databricks notebook source``, ``-- ...``,
``// ...``) become notebooks of their extension's language, without the extension, as Databricks
itself names them; every other file becomes a workspace file (a ``.ipynb`` is imported as a
notebook by the workspace itself). What is sent is filtered (:class:`DeployRules`): the repo's
``.gitignore`` files, the ``deploy.include``/``deploy.exclude`` patterns (gitignore syntax,
with ``pathspec``), and never the orchestrator's own outputs or tool folders. Everything is
checked here, before the first request (sizes, names, an empty deploy); the adapter
(:meth:`~orchestrator.adapters.databricks.DatabricksWorkspace.deploy`) then creates the folders and
imports the items in parallel.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pathspec

from orchestrator.adapters.databricks import DeployItem
from orchestrator.errors import UsageError

__all__ = [
    "MAX_IMPORT_BYTES",
    "DeployItem",
    "DeployRules",
    "encoded_size",
    "kernel_languages",
    "plan_deploy",
    "uses_spark",
]

#: ``workspace/import`` takes base64 content of at most 10 MB (the Workspace API reference:
#: "The base64-encoded content. This has a limit of 10 MB", MAX_NOTEBOOK_SIZE_EXCEEDED beyond);
#: a posted file is the same content, and no documented route lifts the limit
MAX_IMPORT_BYTES = 10 * 1024 * 1024


def encoded_size(size: int) -> int:
    """The size of ``size`` bytes in base64, as the import limit measures it."""
    return 4 * -(-size // 3)


_HEADERS = {
    b"# Databricks notebook source": "#",
    b"-- Databricks notebook source": "--",
    b"// Databricks notebook source": "//",
}
_LANGUAGES = {".py": "PYTHON", ".r": "R", ".sql": "SQL", ".scala": "SCALA"}
#: never deployed, wherever they are: version control, caches, virtual environments
_SKIPPED_PARTS = frozenset(
    {
        "__pycache__",
        ".git",
        ".ipynb_checkpoints",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".tox",
        ".venv",
        ".Rproj.user",
        ".orchestrator",
    }
)


@dataclass(frozen=True)
class DeployRules:
    """What of the notebooks folder is sent: ``include``/``exclude`` are gitignore patterns
    relative to it (no ``include``: everything); ``gitignore_root`` is the repo root whose
    ``.gitignore`` files (from there down) are honoured, None to ignore them; ``never`` are
    paths never sent (the orchestrator's state, results and artifacts)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    gitignore_root: Path | None = None
    never: tuple[Path, ...] = ()


class _Ignored:
    """The ``.gitignore`` files that apply, root first; the deepest matching rule wins."""

    def __init__(self, specs: list[tuple[Path, pathspec.GitIgnoreSpec]]) -> None:
        self.specs = specs

    @classmethod
    def above(cls, root: Path | None, folder: Path) -> _Ignored:
        if root is None:
            return cls([])
        chain = [folder, *folder.parents]
        dirs = [d for d in chain if d == root or root in d.parents]
        return cls([s for d in reversed(dirs) if (s := _gitignore(d)) is not None])

    def below(self, folder: Path) -> _Ignored:
        spec = _gitignore(folder)
        return self if spec is None else _Ignored([*self.specs, spec])

    def __call__(self, path: Path, is_dir: bool) -> bool:
        ignored = False
        for base, spec in self.specs:
            rel = path.relative_to(base).as_posix() + ("/" if is_dir else "")
            result = spec.check_file(rel).include
            if result is not None:
                ignored = result
        return ignored


def _gitignore(folder: Path) -> tuple[Path, pathspec.GitIgnoreSpec] | None:
    file = folder / ".gitignore"
    if not file.is_file():
        return None
    lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
    return folder, pathspec.GitIgnoreSpec.from_lines(lines)


def _walk(local: Path, rules: DeployRules) -> Iterator[Path]:
    """Every file and folder under ``local`` that the rules let through, in path order."""
    include = pathspec.GitIgnoreSpec.from_lines(rules.include) if rules.include else None
    exclude = pathspec.GitIgnoreSpec.from_lines(rules.exclude)
    never = {p.resolve() for p in rules.never}
    gitignore_root = None if rules.gitignore_root is None else rules.gitignore_root.resolve()
    stack = [(local, _Ignored.above(gitignore_root, local.resolve()))]
    while stack:
        folder, ignored = stack.pop()
        ignored = ignored.below(folder.resolve()) if folder != local else ignored
        children = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
        for entry in children:
            path = Path(entry.path)
            is_dir = entry.is_dir()
            rel = path.relative_to(local).as_posix() + ("/" if is_dir else "")
            if entry.name in _SKIPPED_PARTS or path.resolve() in never:
                continue
            if ignored(path.resolve(), is_dir) or exclude.match_file(rel):
                continue
            if is_dir:
                stack.append((path, ignored))
            elif include is None or include.match_file(rel):
                yield path


def kernel_languages(items: Iterable[DeployItem]) -> set[str]:
    """The notebook languages a build's runs need kernels of: those of the notebooks deployed
    (Python when there are none)."""
    return {item.language for item in items if item.language} or {"PYTHON"}


def uses_spark(items: Iterable[DeployItem], tasks: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a Python notebook that one of ``tasks`` (the run's, as submitted: their paths
    are the deployed notebooks') runs names ``spark``. The local workspace then readies
    kernels with Spark's client imported. The executor's test, on the whole file: a false hit
    costs an idle process; a miss (a child notebook that uses Spark) leaves the first Spark
    notebook to start them."""
    notebooks = {i.target: i for i in items if i.kind == "NOTEBOOK" and i.language == "PYTHON"}
    for task in tasks:
        notebook_task = task.get("notebook_task") or {}
        item = notebooks.get(posixpath.normpath(str(notebook_task.get("notebook_path", ""))))
        try:
            if item is not None and b"spark" in item.source.read_bytes():
                return True
        except OSError:
            continue  # the deploy reports it
    return False


def _notebook_language(path: Path) -> str | None:
    language = _LANGUAGES.get(path.suffix.lower())
    if language is None:
        return None
    with path.open("rb") as handle:
        first = handle.readline().strip()
    return language if first in _HEADERS else None


def plan_deploy(
    local: Path, target: str, *, exclude: Iterable[Path] = (), rules: DeployRules | None = None
) -> tuple[list[str], list[DeployItem]]:
    """Folders to create and items to import; UsageError for anything that can't be sent,
    and for a deploy that sends nothing."""
    if not local.is_dir():
        raise UsageError(f"{local}: the notebooks folder does not exist")
    rules = rules or DeployRules()
    rules = DeployRules(
        rules.include, rules.exclude, rules.gitignore_root, (*rules.never, *exclude)
    )
    items: list[DeployItem] = []
    problems: list[str] = []
    for path in sorted(_walk(local, rules)):
        remote = posixpath.join(target, path.relative_to(local).as_posix())
        size = path.stat().st_size
        if encoded_size(size) > MAX_IMPORT_BYTES:
            problems.append(
                f"{path}: {size} bytes is {encoded_size(size)} in base64, over the workspace "
                f"import limit of {MAX_IMPORT_BYTES} (10 MB of base64, about 7.5 MB of file); "
                "move it to the test data or exclude it (deploy.exclude, .gitignore)"
            )
            continue
        language = _notebook_language(path)
        if language is not None:
            items.append(
                DeployItem(path, posixpath.splitext(remote)[0], "NOTEBOOK", language, size)
            )
        else:
            items.append(DeployItem(path, remote, "FILE", None, size))
    if not items and not problems:
        raise UsageError(
            f"{local}: nothing to deploy (every file is excluded by deploy.include/exclude, "
            ".gitignore or the storage-only paths)"
        )
    folders = {target}
    for item in items:
        parent = posixpath.dirname(item.target)
        while parent.startswith(target + "/") and parent not in folders:
            folders.add(parent)
            parent = posixpath.dirname(parent)
    seen: dict[str, Path] = {}
    for item in items:
        if item.target in seen or item.target in folders:
            other = seen.get(item.target, "a folder")
            problems.append(f"{item.source}: deploys to {item.target}, as {other} does")
        seen[item.target] = item.source
    if problems:
        raise UsageError("; ".join(problems))
    # only leaves: mkdirs creates the parents
    leaves = sorted(f for f in folders if not any(o.startswith(f + "/") for o in folders))
    return leaves, items
