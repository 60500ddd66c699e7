"""Task execution for the scheduler: a notebook task runs in a Jupyter kernel on this machine.

Adapts :class:`~orchestrator.local.jobs.scheduler.TaskSpec` to the notebook runtime
(:mod:`orchestrator.local.runtime`), which is imported lazily because it needs the
``orchestrator[local]`` extra.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.local.jobs.task_execution import TaskOutcome, TaskSpec
from orchestrator.local.state.api_error import ApiError
from orchestrator.local.state.limits import normalize_path
from orchestrator.local.state.retention import keep_executed
from orchestrator.local.state.store import Store

__all__ = ["NotebookTaskExecutor", "export_executed_html"]

if TYPE_CHECKING:
    from collections.abc import Collection

    from orchestrator.local.runtime.pool import KernelPool

log = logging.getLogger(__name__)
MAX_LOG_CHARS = 1_000_000


class NotebookTaskExecutor:
    """Runs notebook tasks; a task's scratch folder is deleted when it ends (its executed
    notebooks are kept beside ``output.json``) unless ``keep_scratch``.

    Kernels come from a warm pool of up to ``pool_size`` idle kernels per language
    (:mod:`orchestrator.local.runtime.pool`); :meth:`warm` starts filling it ahead of the first
    run (the workspace calls it when a cluster is used), ``pool_size=0`` turns it off.
    """

    def __init__(self, store: Store, *, keep_scratch: bool = False, pool_size: int = 0) -> None:
        self.store = store
        self.keep_scratch = keep_scratch
        self._pool_size = pool_size
        self._pool: KernelPool | None = None
        self._pool_lock = threading.Lock()
        self._closed = False
        self._exporter_warmed = False

    def _kernel_pool(self) -> KernelPool | None:
        with self._pool_lock:
            if self._pool is None and self._pool_size > 0 and not self._closed:
                try:
                    from orchestrator.local.runtime.pool import KernelPool
                except ImportError:  # no orchestrator[local]: tasks fail with the install hint
                    self._pool_size = 0
                    return None
                root = self.store.state_dir / "kernels" / str(os.getpid())
                shutil.rmtree(root.parent, ignore_errors=True)  # a killed workspace's leftovers
                self._pool = KernelPool(
                    root=root, state_dir=self.store.state_dir, size=self._pool_size
                )
            return self._pool

    def warm(self, languages: Collection[str] | None = None, *, spark: bool = False) -> None:
        """Start the kernel pool filling, with kernels of ``languages`` only when given, and
        its Spark zygote when a coming run uses ``spark`` (idempotent, returns at once)."""
        pool = self._kernel_pool()
        if pool is not None:
            pool.warm(languages, spark=spark)

    def _warm_exporter(self) -> None:
        """Load the notebook exporter in the background, once: when the first task starts
        (its export is asked for when the run ends), not with the pool, as the import and
        first rendering take 1.3-1.6 CPU-s that a build's start-up would lose to them."""
        with self._pool_lock:
            if self._exporter_warmed:
                return
            self._exporter_warmed = True
        threading.Thread(target=_warm_exporter, name="warm-exporter", daemon=True).start()

    def close(self) -> None:
        """Kill the pool's idle kernels (the workspace is stopping)."""
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

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

        self._warm_exporter()
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
            libraries=_libraries(spec.task.get("libraries")),
            environment={
                "ORCH_RUN_ID": str(spec.run_id),
                "ORCH_TASK_RUN_ID": str(spec.task_run_id),
                "ORCH_CLUSTER_ID": str(spec.task.get("existing_cluster_id") or ""),
            },
        )
        try:
            result = execute_notebook(
                request, resolver=resolver, cancel=cancel, kernels=self._kernel_pool()
            )
        finally:
            if not self.keep_scratch:
                keep_executed(scratch, scratch.parent)
        logs = result.logs or ""
        output: dict[str, Any] = {
            "logs": logs[:MAX_LOG_CHARS],
            "logs_truncated": len(logs) > MAX_LOG_CHARS,
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


def _libraries(value: Any) -> tuple[Any, ...]:
    """The task's ``libraries`` as given (the runtime rejects what it cannot install)."""
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list) else (value,)


def _warm_exporter() -> None:
    try:
        from orchestrator.local.state.notebook_format import warm_exporter

        warm_exporter()
    except Exception:  # no nbconvert: the export reports it when asked
        log.debug("cannot warm the notebook exporter", exc_info=True)


def export_executed_html(executed_notebook: Path, title: str) -> str:
    """HTML of an executed notebook (runs/export), by the runtime's exporter."""
    from orchestrator.local.state.notebook_format import export_html

    data = Path(executed_notebook).read_bytes()
    return export_html(data, title=title)
