"""Where a failed task failed, through the APIs a real workspace answers.

A task runs the user's notebook itself, so its ``runs/export`` holds the user's cells and its
``runs/get-output`` the error and trace. A notebook that called ``dbutils.notebook.run`` shows,
under the calling cell, a link to the child's ephemeral run ("Notebook job #N"); the child's
failure reaches the caller only as ``WorkflowException: ... FAILED: Workload failed, see run
output for details``. So :func:`trace_failure` follows that link: ``runs/get`` of the child
names its notebook, its ``runs/export`` and ``runs/get-output`` hold its failing cell and error,
and so on down, at most :data:`MAX_DEPTH` runs deep. What it finds is the innermost notebook
that failed, the cell as the notebook UI numbers it, the exception and the user's frames.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.adapters.databricks import platform_failure
from orchestrator.errors import InfrastructureError
from orchestrator.masking import masker
from orchestrator.results.outcomes import SOURCE_LINES, FailurePoint, user_frames
from orchestrator.results.run_export import NotebookRun, read_notebook
from orchestrator.results.text_cleaning import clean_output

if TYPE_CHECKING:
    from orchestrator.adapters.databricks import TaskOutput
    from orchestrator.ports import BuildWorkspace

__all__ = ["MAX_DEPTH", "Traced", "trace_failure"]

log = logging.getLogger(__name__)

MAX_DEPTH = 5


@dataclass(frozen=True)
class Traced:
    """What the collect step learned of a failed task."""

    failure: FailurePoint | None
    output: str  # what the failing notebook printed up to its failing cell
    platform: str | None = None  # a child run the platform ended (Databricks down, lost driver)


def shown_path(path: str | None, build_folder: str) -> str:
    """A notebook's path as the user knows it: relative to the build folder when inside it."""
    if not path:
        return "(notebook)"
    prefix = build_folder.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path


def _head(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip()]
    return "\n".join(lines[:SOURCE_LINES])


def _first(views: list[str]) -> NotebookRun | None:
    for page in views:
        notebook = read_notebook(page)
        if notebook is not None:
            return notebook
    return None


def trace_failure(
    workspace: BuildWorkspace,
    *,
    notebook_path: str | None,
    run_url: str | None,
    views: list[str],
    output: TaskOutput,
    build_folder: str,
) -> Traced:
    """The innermost failing notebook of a failed task (see the module docstring)."""
    notebook = _first(views)
    path, url, error_output = notebook_path, run_url, output
    through: list[str] = []
    platform: str | None = None
    for _ in range(MAX_DEPTH):
        cell = notebook.failing_cell if notebook is not None else None
        child = _failed_child(workspace, cell.children) if cell is not None else None
        if child is None:
            break
        through.append(shown_path(path, build_folder))
        notebook, path, url, error_output = child.notebook, child.path, child.url, child.output
        platform = platform or child.platform
    cell = notebook.failing_cell if notebook is not None else None
    trace = cell.error_trace if cell is not None and cell.error_trace else ""
    trace = trace or clean_output(error_output.error_trace or "")
    error = (cell.error_summary if cell is not None else "") or clean_output(error_output.error)
    if not (notebook or error or trace):
        return Traced(None, "", platform)
    secrets = masker()
    point = FailurePoint(
        notebook=shown_path(path, build_folder),
        cell=cell.number if cell is not None else None,
        cell_source=secrets.mask(_head(cell.source)) if cell is not None else "",
        error=secrets.mask(error.strip()),
        trace=secrets.mask(
            user_frames(
                trace,
                cell=cell.number if cell else None,
                cells=[c.source for c in notebook.cells] if notebook is not None else (),
            )
        ),
        run_url=url,
        through=tuple(through),
    )
    printed = secrets.mask(notebook.output()) if notebook is not None else ""
    return Traced(point, printed, platform)


@dataclass(frozen=True)
class _Child:
    notebook: NotebookRun | None
    path: str | None
    url: str | None
    output: TaskOutput
    platform: str | None  # why the platform ended it, when it did


def _failed_child(workspace: BuildWorkspace, children: tuple[object, ...]) -> _Child | None:
    """The last child run of a cell that did not succeed, read through the API."""
    for child in reversed(children):
        run_id = getattr(child, "run_id", None)
        if not isinstance(run_id, int):
            continue
        try:
            run = workspace.get_run(run_id)
            if run.end.result == "SUCCESS":
                continue
            views = workspace.export_views(run_id)
            output = workspace.task_output(run_id)
        except InfrastructureError as exc:  # the caller's failure is still reported
            log.debug("cannot follow child run %s: %s", run_id, exc)
            return None
        path = next((t.notebook_path for t in run.tasks if t.notebook_path), None)
        path = path or (posixpath.normpath(run.run_name) if run.run_name.startswith("/") else None)
        notebook = _first([masker().mask(v) for v in views])
        return _Child(notebook, path, run.run_page_url, output, platform_failure(run))
    return None
