"""The values exchanged with the notebook runtime: what to run and what came out of it.

The run scheduler builds an :class:`ExecutionRequest` per task run and gets a
:class:`NotebookResult` back from :func:`orchestrator.local.runtime.execute_notebook`.

A ``dbutils.notebook.run`` child is a run of its own, as on Databricks (an ephemeral
``WORKFLOW_RUN`` with its own run id and page). Recording it needs the store and the run
ids, which belong to the jobs engine, a room the runtime may not import: the jobs engine
hands the runtime a :class:`ChildRunRecorder` in ``ExecutionRequest.child_runs`` instead,
and the runtime calls it when a child starts and when it ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from orchestrator.local.state.notebook_format import Language

__all__ = [
    "ChildRefused",
    "ChildRun",
    "ChildRunRecorder",
    "ExecutionRequest",
    "NotebookResolver",
    "NotebookResult",
    "NotebookSource",
    "RunStatus",
]

RunStatus = Literal["SUCCESS", "FAILED", "TIMEDOUT", "CANCELED"]


@dataclass(frozen=True)
class NotebookSource:
    """A workspace notebook and where its SOURCE text lives on disk; ``repo_root`` is the root
    of the Git folder (or ``git_source`` snapshot) it is in, which goes on ``sys.path`` after
    the notebook's own folder, as on Databricks Runtime 11.3 and above."""

    workspace_path: str
    file: Path
    language: Language
    repo_root: Path | None = None


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
    #: the ``spec.dependencies`` of the serverless environment the task's ``environment_key``
    #: names (requirements-file lines), installed with the libraries
    dependencies: tuple[Any, ...] = ()
    #: records ``dbutils.notebook.run`` children as runs of their own (``None``: the children
    #: run unrecorded, in the run's control folder; only the runtime's own tests do that)
    child_runs: ChildRunRecorder | None = None


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


@dataclass(frozen=True)
class ChildRun:
    """A child run as recorded when it starts: its ids, its page, the folder it runs in (its
    ``scratch_dir``) and the environment variables that name it to its kernel
    (``ORCH_RUN_ID``, ``ORCH_TASK_RUN_ID``), laid over its parent's."""

    run_id: int
    task_run_id: int
    run_page_url: str
    scratch_dir: Path
    environment: Mapping[str, str] = field(default_factory=dict)


class ChildRefused(Exception):
    """A recorder's refusal to start a child (its cluster has no execution context left):
    the child's ``dbutils.notebook.run`` fails with this message and no run is made."""


class ChildRunRecorder(Protocol):
    """Records ``dbutils.notebook.run`` children as runs (``WORKFLOW_RUN``, one task run).

    ``start`` is called before the child's kernel starts, with the notebook's absolute
    workspace path, its arguments, its parent's environment and the event that stops it (the
    recorder sets it to cancel the run, ``runs/cancel``); the run is RUNNING from then on.
    ``finish`` is called once with how the child ended, whatever happened; the recorder keeps
    the child's executed notebook and output and ends the run with its result.
    """

    def start(
        self,
        *,
        notebook_path: str,
        parameters: Mapping[str, str],
        parent_environment: Mapping[str, str],
        cancel: threading.Event,
    ) -> ChildRun: ...

    def finish(self, child: ChildRun, result: NotebookResult) -> None: ...
