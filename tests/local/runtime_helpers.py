"""Helpers for the notebook runtime tests: a workspace on disk, requests, process checks.

The ``runtime`` fixture (tests/local/conftest.py) is a :class:`Workspace` made here.
The workspace mirrors what the store keeps: notebook SOURCE files under ``workspace_root``
and an ``objects`` table in a sqlite database, so child notebooks resolve as in the server.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import psutil

from orchestrator.local.runtime.execution import ExecutionRequest, NotebookResult, NotebookSource
from orchestrator.local.runtime.executor import execute_notebook
from orchestrator.local.runtime.resolver import make_sqlite_resolver
from orchestrator.local.state.notebook_format import Language

HEADERS: dict[Language, str] = {
    "PYTHON": "# Databricks notebook source",
    "R": "# Databricks notebook source",
    "SQL": "-- Databricks notebook source",
    "SCALA": "// Databricks notebook source",
}
SEPARATORS: dict[Language, str] = {
    language: f"\n\n{header.split()[0]} COMMAND ----------\n\n"
    for language, header in HEADERS.items()
}


def source(*cells: str, language: Language = "PYTHON") -> str:
    """Databricks SOURCE text with ``cells`` (raw cell texts, MAGIC lines included)."""
    return HEADERS[language] + "\n" + SEPARATORS[language].join(cells) + "\n"


class Workspace:
    """A workspace folder, DBFS folder and store database for one test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.workspace_root = root / "workspace"
        self.dbfs_root = root / "dbfs"
        self.state_db = root / "state.db"
        self.workspace_root.mkdir()
        self.dbfs_root.mkdir()
        with sqlite3.connect(self.state_db) as db:
            db.execute(
                "CREATE TABLE objects (path TEXT PRIMARY KEY, object_type TEXT, language TEXT)"
            )
        self.resolver = make_sqlite_resolver(self.state_db, self.workspace_root)
        self._runs = 0

    def add(self, path: str, text: str, language: Language = "PYTHON") -> NotebookSource:
        file = self.workspace_root / path.lstrip("/")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8")
        with sqlite3.connect(self.state_db) as db:
            db.execute("INSERT OR REPLACE INTO objects VALUES (?, 'NOTEBOOK', ?)", (path, language))
        return NotebookSource(path, file, language)

    def request(
        self,
        path: str,
        *,
        parameters: Mapping[str, str] | None = None,
        timeout: float | None = None,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
    ) -> ExecutionRequest:
        self._runs += 1
        scratch = self.root / f"scratch-{self._runs}"
        scratch.mkdir()
        return ExecutionRequest(
            notebook=self.resolver(path),
            parameters=dict(parameters or {}),
            workspace_root=self.workspace_root,
            dbfs_root=self.dbfs_root,
            scratch_dir=scratch,
            state_db=self.state_db,
            secrets=dict(secrets or {}),
            timeout_seconds=timeout,
        )

    def run(
        self, path: str, *, cancel: threading.Event | None = None, **kwargs: object
    ) -> NotebookResult:
        request = self.request(path, **kwargs)  # type: ignore[arg-type]
        return execute_notebook(request, resolver=self.resolver, cancel=cancel or threading.Event())


def gone(pid: int) -> bool:
    """The process does not exist any more (or is a zombie nobody reaped yet)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _command_line(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def is_kernel(proc: psutil.Process) -> bool:
    """A kernel process: started as one (its command line), or forked by a kernel zygote
    (it shows the zygote's command line, and its parent is the zygote)."""
    line = _command_line(proc)
    if "ipykernel_launcher" in line or "IRkernel" in line:
        return True
    if "zygote_main.py" not in line:
        return False
    try:
        parent = proc.parent()
    except psutil.Error:
        return False
    return parent is not None and "zygote_main.py" in _command_line(parent)


def kernel_pids(root: psutil.Process | None = None) -> set[int]:
    """The kernels among the descendants of ``root`` (this process)."""
    procs = (root or psutil.Process()).children(recursive=True)
    return {proc.pid for proc in procs if is_kernel(proc)}


def assert_all_gone(pids: list[int], *, within: float = 10.0) -> None:
    """Every process in ``pids`` is gone (or a zombie), within a bound generous enough for a
    loaded machine: a kill that works ends them in tenths of a second (bench/cancel.py)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(gone(pid) for pid in pids):
            return
        time.sleep(0.05)
    alive = [pid for pid in pids if not gone(pid)]
    assert not alive, f"processes still alive: {alive}"


def wait_for_file(path: Path, *, within: float = 30.0) -> str:
    """The content of ``path`` once it exists and is not empty."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists() and (text := path.read_text().strip()):
            return text
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear within {within} s")


def read_pids(*files: Path) -> list[int]:
    return [int(wait_for_file(file)) for file in files]


def tiny_wheel(directory: Path) -> Path:
    """A wheel of ``orch-tiny-pkg`` 0.1 (``import orch_tiny_pkg; orch_tiny_pkg.VALUE``)."""
    import base64
    import hashlib
    import zipfile

    files = {
        "orch_tiny_pkg/__init__.py": "VALUE = 'tiny works'\n",
        "orch_tiny_pkg-0.1.dist-info/METADATA": (
            "Metadata-Version: 2.1\nName: orch-tiny-pkg\nVersion: 0.1\n"
        ),
        "orch_tiny_pkg-0.1.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append("orch_tiny_pkg-0.1.dist-info/RECORD,,")
    files["orch_tiny_pkg-0.1.dist-info/RECORD"] = "\n".join(record) + "\n"
    wheel = directory / "orch_tiny_pkg-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel
