"""What a repo holds, for ``orchestrator init``: notebooks (the Databricks source header, or
``.ipynb``), test runner notebooks among them, pytest and testthat folders, data and model
folders. Reads files only; tool folders, hidden folders and the orchestrator's outputs are
skipped."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Findings", "Notebook", "scan"]

_HEADERS = (b"# Databricks notebook source", b"-- Databricks notebook source")
_HEADERS_ANY = (*_HEADERS, b"// Databricks notebook source")
_LANGUAGES = {".py": "python", ".r": "r", ".sql": "sql", ".scala": "scala", ".ipynb": "python"}
_SKIPPED = frozenset(
    {"__pycache__", "node_modules", "venv", "env", "site-packages", "test-results", "artifacts"}
)
#: a notebook that runs a test framework is a test runner
_RUNNER = re.compile(
    rb"pytest\.main\(|unittest\.main\(|testthat::|test_dir\(|test_file\(|test_check\(|"
    rb"run_tests\("
)
_PYTEST_FILE = re.compile(r"(test_.*|.*_test)\.py$")
_TESTTHAT_FILE = re.compile(r"test[-_].*\.[rR]$")
_DATA_NAMES = frozenset({"data", "test_data", "testdata", "fixtures"})
_MODEL_NAMES = frozenset({"models", "model"})


@dataclass(frozen=True)
class Notebook:
    path: Path  # relative to the repo root
    language: str
    runner: bool

    @property
    def workspace_name(self) -> str:
        """The path relative to the deployed root, as the workspace names it (no extension)."""
        return self.path.with_suffix("").as_posix()


@dataclass
class Findings:
    notebooks: list[Notebook] = field(default_factory=list)
    pytest: list[Path] = field(default_factory=list)
    testthat: list[Path] = field(default_factory=list)
    data: list[Path] = field(default_factory=list)
    models: list[Path] = field(default_factory=list)
    #: packages at the repo's root that its notebooks or tests import (``from pkg import``):
    #: they need the root on ``sys.path``, which a Git folder or a Git source gives
    root_imports: list[str] = field(default_factory=list)
    #: DBFS folders the notebooks read whose files are in the repo: DBFS path -> repo folder
    dbfs_seeds: dict[str, Path] = field(default_factory=dict)

    @property
    def runners(self) -> list[Notebook]:
        return [n for n in self.notebooks if n.runner]


def _notebook(path: Path, root: Path) -> Notebook | None:
    suffix = path.suffix.lower()
    if suffix not in _LANGUAGES:
        return None
    try:
        head = path.read_bytes()[:1_000_000]
    except OSError:
        return None
    if suffix == ".ipynb":
        language = "python"
    elif head.split(b"\n", 1)[0].strip() in _HEADERS_ANY:
        language = _LANGUAGES[suffix]
    else:
        return None
    runner = bool(_RUNNER.search(head))
    return Notebook(path.relative_to(root), language, runner)


def scan(root: Path) -> Findings:
    """Walk ``root`` (hidden and tool folders skipped) and sort what it holds."""
    found = Findings()
    pytest_dirs: set[Path] = set()
    testthat_dirs: set[Path] = set()
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED)
        rel = here.relative_to(root)
        for name in dirs:
            lowered = name.lower()
            if lowered in _DATA_NAMES:
                found.data.append(rel / name)
            elif lowered in _MODEL_NAMES:
                found.models.append(rel / name)
        for name in sorted(files):
            path = here / name
            notebook = _notebook(path, root)
            if notebook is not None:
                found.notebooks.append(notebook)
            elif _PYTEST_FILE.fullmatch(name) or name == "conftest.py":
                pytest_dirs.add(rel)
            elif _TESTTHAT_FILE.fullmatch(name):
                testthat_dirs.add(rel)
    found.pytest = _tops(pytest_dirs)
    found.testthat = _tops(testthat_dirs)
    found.root_imports = _root_imports(root, found)
    found.dbfs_seeds = _dbfs_seeds(root, found)
    return found


#: ``/dbfs/x/y.csv``, ``dbfs:/x/y.csv`` and a Unity Catalog volume's ``/Volumes/c/s/v/y.csv``
_DBFS_PATH = re.compile(r"""(?:/dbfs|dbfs:)(/[\w.\-/]+\.\w+)|(?<![\w/])(/Volumes/[\w.\-/]+\.\w+)""")


def _dbfs_seeds(root: Path, found: Findings) -> dict[str, Path]:
    """DBFS files the notebooks name (``/dbfs/x/y.csv``, ``dbfs:/x/y.csv``, a volume's
    ``/Volumes/c/s/v/y.csv``) that the repo holds (a file of that name): the DBFS folder -> the
    repo folder it comes from."""
    seeds: dict[str, Path] = {}
    for notebook in found.notebooks:
        try:
            text = (root / notebook.path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for match in _DBFS_PATH.finditer(text):
            wanted = Path(match.group(1) or match.group(2))
            here = next((p for p in sorted(root.rglob(wanted.name)) if p.is_file()), None)
            if here is not None and not any(part.startswith(".") for part in here.parts):
                seeds.setdefault(wanted.parent.as_posix(), here.parent.relative_to(root))
    return seeds


def _root_imports(root: Path, found: Findings) -> list[str]:
    """The root's Python packages (folders with ``__init__.py``) that a notebook or a test
    file below another folder imports."""
    packages = sorted(
        d.name for d in root.iterdir() if d.is_dir() and (d / "__init__.py").is_file()
    )
    if not packages:
        return []
    sources = [root / n.path for n in found.notebooks if n.language == "python"]
    for folder in found.pytest:
        sources += sorted((root / folder).rglob("*.py"))
    pattern = re.compile(
        rf"^\s*(?:from|import)\s+({'|'.join(map(re.escape, packages))})\b", re.MULTILINE
    )
    used: set[str] = set()
    for path in sources:
        if path.parent == root:
            continue  # beside the package: its own folder is on sys.path anyway
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        used.update(m.group(1) for m in pattern.finditer(text))
    return sorted(used)


def _tops(folders: set[Path]) -> list[Path]:
    """The outermost folders of a set (``tests`` for ``tests`` and ``tests/unit``)."""
    return sorted(f for f in folders if not any(o in f.parents for o in folders))
