"""Task execution for the scheduler: a notebook task runs in a Jupyter kernel on this machine.

Adapts :class:`~orchestrator.local.scheduler.TaskSpec` to the notebook runtime
(:mod:`orchestrator.local.runtime`), which is imported lazily because it needs the
``orchestrator[local]`` extra.
"""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import Any

from orchestrator.local.errors import ApiError
from orchestrator.local.retention import EXECUTED_NOTEBOOK, keep_executed
from orchestrator.local.scheduler import TaskOutcome, TaskSpec
from orchestrator.local.store import Store
from orchestrator.local.workspace_api import normalize_path

__all__ = ["NotebookTaskExecutor", "export_executed_html"]

log = logging.getLogger(__name__)
MAX_LOG_CHARS = 1_000_000


class NotebookTaskExecutor:
    """Runs notebook tasks; a task's scratch folder is deleted when it ends (its executed
    notebooks are kept beside ``output.json``) unless ``keep_scratch``."""

    def __init__(self, store: Store, *, keep_scratch: bool = False) -> None:
        self.store = store
        self.keep_scratch = keep_scratch

    def secrets(self) -> dict[str, dict[str, str]]:
        scopes: dict[str, dict[str, str]] = {}
        for scope, key, value, _ in self.store.secret_rows():
            bucket = scopes.setdefault(scope, {})
            if key is not None and value is not None:
                bucket[key] = value
        return scopes

    def __call__(self, spec: TaskSpec, cancel: threading.Event) -> TaskOutcome:
        notebook_task = spec.task.get("notebook_task")
        if not isinstance(notebook_task, dict):
            kinds = sorted(k for k in spec.task if k.endswith("_task"))
            return TaskOutcome(
                "FAILED",
                f"Task type {', '.join(kinds) or 'unknown'} is not supported by the local "
                "workspace: only notebook_task runs here.",
                {"error": "Unsupported task type"},
            )
        if str(notebook_task.get("source", "WORKSPACE")).upper() != "WORKSPACE":
            message = "Notebook tasks from git sources are not supported by the local workspace."
            return TaskOutcome("FAILED", message, {"error": message})

        from orchestrator.local.runtime.executor import ExecutionRequest, execute_notebook
        from orchestrator.local.runtime.resolver import NotebookNotFound, make_sqlite_resolver

        resolver = make_sqlite_resolver(self.store.db_path, self.store.workspace_root)
        try:
            path = normalize_path(
                str(notebook_task.get("notebook_path", "")), field="notebook_path"
            )
            source = resolver(path)
        except (NotebookNotFound, ApiError) as exc:
            message = f"Notebook not found: {notebook_task.get('notebook_path')} ({exc})"
            return TaskOutcome("FAILED", message, {"error": message})
        scratch = self.store.runs_root / str(spec.task_run_id) / "scratch"
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir(parents=True)
        request = ExecutionRequest(
            notebook=source,
            parameters=spec.parameters,
            workspace_root=self.store.workspace_root,
            dbfs_root=self.store.dbfs_root,
            scratch_dir=scratch,
            state_db=self.store.db_path,
            secrets=self.secrets(),
            timeout_seconds=spec.timeout_seconds,
            environment={
                "ORCH_RUN_ID": str(spec.run_id),
                "ORCH_TASK_RUN_ID": str(spec.task_run_id),
                "ORCH_CLUSTER_ID": str(spec.task.get("existing_cluster_id") or ""),
            },
        )
        try:
            result = execute_notebook(request, resolver=resolver, cancel=cancel)
        finally:
            executed = (
                scratch / EXECUTED_NOTEBOOK
                if self.keep_scratch
                else keep_executed(scratch, scratch.parent)
            )
        logs = result.logs or ""
        output: dict[str, Any] = {
            "logs": logs[:MAX_LOG_CHARS],
            "logs_truncated": len(logs) > MAX_LOG_CHARS,
            "_executed_notebook": str(executed),
        }
        if result.exit_value is not None:
            output["notebook_output"] = {"result": result.exit_value, "truncated": False}
        else:
            output["notebook_output"] = {}
        message = ""
        if result.status == "FAILED":
            error = result.error or "Notebook failed"
            if result.failed_cell and not error.startswith("cell ") and "[cell " not in error:
                error = f"{error} (cell {result.failed_cell})"
            output["error"] = error
            if result.error_trace:
                output["error_trace"] = result.error_trace
            message = output["error"]
        elif result.status == "TIMEDOUT":
            output["error"] = "Notebook run timed out"
            message = output["error"]
        elif result.status == "CANCELED":
            message = "Run cancelled"
        return TaskOutcome(result.status, message, output)


def export_executed_html(executed_notebook: str, title: str) -> str:
    """HTML of an executed notebook (runs/export), by the runtime's exporter."""
    from orchestrator.local.notebooks import export_html

    data = Path(executed_notebook).read_bytes()
    return export_html(data, title=title)
