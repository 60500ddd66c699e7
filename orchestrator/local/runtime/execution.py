"""The values exchanged with the notebook runtime: what to run and what came out of it.

The run scheduler builds an :class:`ExecutionRequest` per task run and gets a
:class:`NotebookResult` back from :func:`orchestrator.local.runtime.execute_notebook`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from orchestrator.local.state.notebook_format import Language

__all__ = [
    "ExecutionRequest",
    "NotebookResolver",
    "NotebookResult",
    "NotebookSource",
    "RunStatus",
]

RunStatus = Literal["SUCCESS", "FAILED", "TIMEDOUT", "CANCELED"]


@dataclass(frozen=True)
class NotebookSource:
    """A workspace notebook and where its SOURCE text lives on disk."""

    workspace_path: str
    file: Path
    language: Language


NotebookResolver = Callable[[str], NotebookSource]
"""Absolute workspace path to its source; raises ``NotebookNotFound`` (a ``LookupError``)."""


@dataclass(frozen=True)
class ExecutionRequest:
    """One notebook task run.

    ``scratch_dir`` is an empty directory the runtime owns for this run (control files, the
    ``%pip`` target, the executed notebook). ``timeout_seconds`` of ``None`` or ``0`` means none.
    ``environment`` adds variables to the kernel's environment (e.g. ``ORCH_RUN_ID``,
    ``ORCH_JOB_ID``, ``ORCH_TASK_VALUES`` for the shims); the runtime's own ``ORCH_*`` win.
    """

    notebook: NotebookSource
    parameters: Mapping[str, str]
    workspace_root: Path
    dbfs_root: Path
    scratch_dir: Path
    state_db: Path
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    timeout_seconds: float | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    #: the task's ``libraries`` (Jobs API shape), installed before the first cell
    libraries: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class NotebookResult:
    """How a notebook run ended.

    ``error`` is one line (``"ZeroDivisionError: division by zero"``), ``failed_cell`` the
    1-based index of the top-level cell that failed (or was running at a timeout or cancel),
    ``error_trace`` the traceback text without ANSI codes, ``logs`` the run's stdout/stderr
    (truncated), ``executed_notebook`` an ``.ipynb`` with all outputs, always written.
    """

    status: RunStatus
    exit_value: str | None
    error: str | None
    error_trace: str | None
    failed_cell: int | None
    logs: str
    executed_notebook: Path
