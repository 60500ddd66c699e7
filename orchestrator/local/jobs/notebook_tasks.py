"""Task execution for the scheduler: a notebook task runs in a Jupyter kernel on this machine.

Adapts :class:`~orchestrator.local.jobs.scheduler.TaskSpec` to the notebook runtime
(:mod:`orchestrator.local.runtime`), which is imported lazily because it needs the
``orchestrator[local]`` extra, and turns how a notebook ended into what ``runs/get-output``
returns for a notebook task (:func:`notebook_outcome`).

It also records ``dbutils.notebook.run`` children as runs of their own
(:class:`ChildRunRecords`): the runtime may not import this room, so each
``ExecutionRequest`` carries the recorder (the runtime's ``ChildRunRecorder`` protocol), and
the runtime calls it when a child starts and when it ends.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from orchestrator.files import write_json_atomically
from orchestrator.local.jobs import run_documents
from orchestrator.local.jobs.execution_contexts import ExecutionContexts
from orchestrator.local.jobs.mlflow_context import mlflow_run_context
from orchestrator.local.jobs.run_state import finish, set_state
from orchestrator.local.jobs.task_execution import TaskOutcome, TaskSpec, masked
from orchestrator.local.state.api_error import ApiError
from orchestrator.local.state.limits import normalize_path
from orchestrator.local.state.records import DEFAULT_USER_NAME, RunRecord
from orchestrator.local.state.redaction import IMAGE_TYPES, redact_json, secret_values
from orchestrator.local.state.retention import executed_notebook, keep_executed
from orchestrator.local.state.store import Store, now_ms

__all__ = [
    "ChildRunRecords",
    "NotebookTaskExecutor",
    "export_executed_html",
    "notebook_outcome",
]

if TYPE_CHECKING:
    from collections.abc import Collection

    from orchestrator.local.runtime.execution import ChildRun, NotebookResult
    from orchestrator.local.runtime.pool import KernelPool

log = logging.getLogger(__name__)
RunUrl = Callable[[int | None, int], str]


class NotebookTaskExecutor:
    """Runs notebook tasks; a task's scratch folder is deleted when it ends (its executed
    notebooks are kept beside ``output.json``) unless ``keep_scratch``.

    Kernels come from a warm pool of up to ``pool_size`` idle kernels per language
    (:mod:`orchestrator.local.runtime.pool`); :meth:`warm` starts filling it ahead of the first
    run (the workspace calls it when a cluster is used), ``pool_size=0`` turns it off.
    """

    def __init__(
        self,
        store: Store,
        *,
        keep_scratch: bool = False,
        pool_size: int = 0,
        user_name: str = DEFAULT_USER_NAME,
        run_url: RunUrl | None = None,
        contexts: ExecutionContexts | None = None,
    ) -> None:
        self.store = store
        self.keep_scratch = keep_scratch
        #: the ``dbutils.notebook.run`` children of every task become runs here; the
        #: workspace gives it the run pages' URLs once it listens (``bind_run_pages``)
        self.child_runs = ChildRunRecords(
            store,
            run_url=run_url or (lambda _job, run_id: f"/runs/{run_id}"),
            creator=user_name,
            keep_scratch=keep_scratch,
            contexts=contexts or ExecutionContexts(),
        )
        self._pool_size = pool_size
        self._pool: KernelPool | None = None
        self._pool_lock = threading.Lock()
        self._closed = False
        self._exporter_warmed = False
        #: a cluster id -> its ``spark_env_vars`` (set by the workspace: the cluster's engine
        #: configuration reaches its tasks' kernels)
        self.cluster_environment: Callable[[str], Mapping[str, str]] = lambda _cluster: {}
        #: what every task's kernel is given by the workspace it runs in, set once it listens:
        #: its host and token (what a Databricks notebook's MLflow and SDK clients find in the
        #: notebook's context) and MLflow's tracking URI ``databricks``
        self.workspace_environment: Mapping[str, str] = {}

    def _notebook_id(self, workspace_path: str) -> int | None:
        """The notebook's object id, when it is in the workspace tree (a ``git_source``
        snapshot's notebook is not)."""
        row = self.store.get_object(workspace_path) if workspace_path.startswith("/") else None
        return row.object_id if row is not None else None

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

    def bind_run_pages(self, run_url: RunUrl) -> None:
        """The run pages' URLs, known once the workspace listens (child runs link to them)."""
        self.child_runs.run_url = run_url

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
        """Run a task of a type :mod:`.task_types` lets through: a notebook, or a Python file or
        wheel entry point as a one-cell notebook (:mod:`.python_tasks`)."""
        if "spark_python_task" in spec.task or "python_wheel_task" in spec.task:
            return self._run(spec, cancel, notebook_task=None)
        notebook_task = spec.task.get("notebook_task")
        if not isinstance(notebook_task, dict):
            kinds = sorted(k for k in spec.task if k.endswith("_task"))
            return TaskOutcome(
                "FAILED",
                f"Task type {', '.join(kinds) or 'unknown'} is not supported by the local "
                "workspace.",
                {"error": "Unsupported task type"},
            )
        if notebook_task.get("source") == "GIT":  # GitSourceTasks gives them their snapshot
            message = "A notebook task from Git runs from its run's snapshot, and it has none."
            return TaskOutcome("FAILED", message, {"error": message})
        return self._run(spec, cancel, notebook_task=notebook_task)

    def _run(
        self, spec: TaskSpec, cancel: threading.Event, *, notebook_task: dict[str, Any] | None
    ) -> TaskOutcome:
        self._warm_exporter()
        from orchestrator.local.runtime.executor import ExecutionRequest, execute_notebook
        from orchestrator.local.runtime.resolver import NotebookNotFound, make_sqlite_resolver

        resolver = make_sqlite_resolver(self.store.db_path, self.store.workspace_root)
        scratch = self.store.runs_root / str(spec.task_run_id) / "scratch"
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir(parents=True)
        if notebook_task is None:
            from orchestrator.local.jobs.python_tasks import python_task_source

            source = python_task_source(
                spec.task,
                spec.parameters,
                scratch=scratch,
                workspace_root=self.store.workspace_root,
                dbfs_root=self.store.dbfs_root,
            )
        else:
            try:
                path = normalize_path(
                    str(notebook_task.get("notebook_path", "")), field="notebook_path"
                )
                source = resolver(path)
            except (NotebookNotFound, ApiError) as exc:
                message = f"Notebook not found: {notebook_task.get('notebook_path')} ({exc})"
                return TaskOutcome("FAILED", message, {"error": message})
        cluster_id = str(spec.task.get("existing_cluster_id") or "")
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
            dependencies=tuple(
                cast("dict[str, Any]", spec.task).get(run_documents.ENVIRONMENT_DEPENDENCIES) or ()
            ),
            environment={
                **self.workspace_environment,
                **_notebook_experiment(notebook_task, source.workspace_path),
                # the tags MLflow's notebook, job and cluster contexts give a run on
                # Databricks: a run's MLflow runs are found by its task run
                # (``mlflow.databricks.jobRunID``)
                "MLFLOW_RUN_CONTEXT": json.dumps(
                    mlflow_run_context(
                        task_run_id=spec.task_run_id,
                        job_id=spec.job_id,
                        notebook_path=source.workspace_path if notebook_task else None,
                        notebook_id=self._notebook_id(source.workspace_path),
                        workspace_url=self.workspace_environment.get("DATABRICKS_HOST"),
                        cluster_id=cluster_id,
                    )
                ),
                **self.cluster_environment(cluster_id),
                "ORCH_RUN_ID": str(spec.run_id),
                "ORCH_TASK_RUN_ID": str(spec.task_run_id),
                "ORCH_CLUSTER_ID": cluster_id,
            },
            child_runs=self.child_runs,
        )
        try:
            result = execute_notebook(
                request, resolver=resolver, cancel=cancel, kernels=self._kernel_pool()
            )
        finally:
            if not self.keep_scratch:
                keep_executed(scratch, scratch.parent)
            mask_executed(self.store, spec.task_run_id)
        outcome = notebook_outcome(result)
        if notebook_task is None:  # a Python task's output is its logs, never notebook_output
            output = {k: v for k, v in outcome.output.items() if k != "notebook_output"}
            output["logs"] = result.logs
            output["logs_truncated"] = False
            return TaskOutcome(outcome.result_state, outcome.state_message, output)
        return outcome


def notebook_outcome(result: NotebookResult) -> TaskOutcome:
    """How a notebook task ended, as the Jobs API shows it: its result state and message, and
    the output ``runs/get-output`` returns: ``notebook_output`` (``result`` only when
    ``dbutils.notebook.exit`` was called) and, when the notebook failed, ``error``
    (``"<ExceptionType>: <message>"``) and ``error_trace``. Never ``logs``: the Jobs API does
    not return them for notebook tasks."""
    output: dict[str, Any] = {"notebook_output": {}}
    if result.exit_value is not None:
        output["notebook_output"] = {"result": result.exit_value, "truncated": False}
    message = ""
    if result.status == "FAILED":
        output["error"] = message = result.error or "Notebook failed"
        if result.error_trace:
            output["error_trace"] = result.error_trace
    elif result.status == "TIMEDOUT":
        output["error"] = message = "Notebook run timed out"
    elif result.status == "CANCELED":
        message = "Run cancelled"
    return TaskOutcome(result.status, message, output)


class ChildRunRecords:
    """The jobs engine's recorder of ``dbutils.notebook.run`` children (the runtime's
    ``ChildRunRecorder``): each child is an ephemeral notebook run, ``run_type``
    ``WORKFLOW_RUN``, with one task run, its own ids and run page, RUNNING from its start and
    TERMINATED with its result. Its folder is its task run's (``runs/<task run id>/``): the
    child runs there, and its executed notebook and ``output.json`` stay there, so
    ``runs/get``, ``runs/get-output`` and ``runs/export`` answer for it as for any run."""

    def __init__(
        self,
        store: Store,
        *,
        run_url: RunUrl,
        creator: str,
        keep_scratch: bool,
        contexts: ExecutionContexts,
    ) -> None:
        self.store = store
        self.run_url = run_url
        #: a child takes an execution context on its parent's cluster while it runs
        self.contexts = contexts
        self.creator = creator
        self.keep_scratch = keep_scratch
        self._lock = threading.Lock()
        self._running: dict[int, tuple[RunRecord, threading.Event]] = {}
        #: the cluster each running child holds a context on
        self._clusters: dict[int, str | None] = {}

    def cancel(self, run_id: int) -> bool:
        """Stop a running child (``runs/cancel`` of its run); False when none runs as
        ``run_id``. It ends CANCELED, and its caller's ``dbutils.notebook.run`` raises."""
        with self._lock:
            running = self._running.get(run_id)
        if running is None:
            return False
        running[1].set()
        return True

    def start(
        self,
        *,
        notebook_path: str,
        parameters: Mapping[str, str],
        parent_environment: Mapping[str, str],
        cancel: threading.Event,
    ) -> ChildRun:
        from orchestrator.local.runtime.execution import ChildRefused, ChildRun

        name = posixpath.basename(notebook_path) or "notebook"
        task: dict[str, Any] = {
            "task_key": _task_key(name),
            "notebook_task": {
                "notebook_path": notebook_path,
                "source": "WORKSPACE",
                "base_parameters": dict(parameters),
            },
        }
        cluster = parent_environment.get("ORCH_CLUSTER_ID")
        if cluster:
            task["existing_cluster_id"] = cluster
        new = run_documents.new_run(
            {"tasks": [task]},
            job_id=None,
            run_name=name,
            run_type="WORKFLOW_RUN",
            notebook_params={},
            job_params={},
            only=None,
            next_id=lambda: self.store.next_id("run"),
            run_url=self.run_url,
            creator=self.creator,
        )
        doc = new.doc
        (task_run,) = doc["tasks"]
        task_run["start_time"] = doc["start_time"] = now_ms()
        set_state(doc, "RUNNING", None, "In run")
        set_state(task_run, "RUNNING", None, "In run")
        run_id, task_run_id = int(doc["run_id"]), int(task_run["run_id"])
        if not self.contexts.open(cluster or None):  # no run is made: the notebook never starts
            raise ChildRefused(self.contexts.refusal)
        with self._lock:
            self._clusters[run_id] = cluster or None
        scratch = self.store.runs_root / str(task_run_id) / "scratch"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        with self._lock:
            self.store.add_task_run(task_run_id, run_id)
            self.store.save_run(doc, active=True)
            self._running[run_id] = (doc, cancel)
        return ChildRun(
            run_id=run_id,
            task_run_id=task_run_id,
            run_page_url=str(doc["run_page_url"]),
            scratch_dir=scratch,
            environment={"ORCH_RUN_ID": str(run_id), "ORCH_TASK_RUN_ID": str(task_run_id)},
        )

    def finish(self, child: ChildRun, result: NotebookResult) -> None:
        with self._lock:
            cluster = self._clusters.pop(child.run_id, None)
        self.contexts.close(cluster)
        if not self.keep_scratch:
            keep_executed(child.scratch_dir, child.scratch_dir.parent)
        mask_executed(self.store, child.task_run_id)
        outcome = masked(notebook_outcome(result), secret_values(self.store))
        try:
            write_json_atomically(
                child.scratch_dir.parent / "output.json", outcome.output, mode=0o644
            )
        except OSError:
            log.exception("cannot write the output of child run %s", child.run_id)
        with self._lock:
            running = self._running.pop(child.run_id, None)
            if running is None:
                return
            doc = running[0]
            (task_run,) = doc["tasks"]
            finish(task_run, outcome.result_state, outcome.state_message)
            message = {
                "FAILED": "Workload failed, see run output for details",
                "TIMEDOUT": "Run timed out.",
                "CANCELED": "Run cancelled.",
            }.get(outcome.result_state, "")
            finish(doc, outcome.result_state, message)
            for record in (doc, task_run):
                record["execution_duration"] = record["run_duration"]
            self.store.save_run(doc, active=False)


def mask_executed(store: Store, task_run_id: int) -> None:
    """Mask the secret values in a task run's executed notebook, where the runtime wrote the
    outputs the kernel does not redact ("Notebook exited: ...", tracebacks, HTML); images are
    left whole (``state/redaction.py``). A failure leaves the notebook as it was."""
    secrets = secret_values(store)
    path = executed_notebook(store, task_run_id)
    if not secrets or path is None:
        return
    try:
        data = json.loads(path.read_bytes())
        clean = redact_json(data, secrets, keep=IMAGE_TYPES)
        if clean != data:
            write_json_atomically(path, clean, mode=0o644)
    except (OSError, ValueError):
        log.exception("cannot mask the secrets in the executed notebook of run %s", task_run_id)


def _task_key(name: str) -> str:
    """A task key from a notebook's name (letters, digits, ``-`` and ``_``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:100] or "notebook"


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


def export_executed_html(executed_notebook: Path, notebook_path: str, task_run_id: int) -> str:
    """A task run's executed notebook as ``runs/export`` returns it: Databricks' page, with
    the notebook model and nbconvert's rendering (``state/notebook_model.py``)."""
    from orchestrator.local.state.notebook_model import export_page

    data = Path(executed_notebook).read_bytes()
    return export_page(data, notebook_path=notebook_path, orig_id=task_run_id)


def _notebook_experiment(notebook_task: object, workspace_path: str) -> dict[str, str]:
    """A notebook's experiment, named by its path: MLflow logs there when no experiment is
    set, as in a Databricks notebook (the client makes it at first use). Python file and
    wheel tasks have no notebook, so no notebook experiment."""
    if notebook_task is None or not workspace_path.startswith("/"):
        return {}
    return {"MLFLOW_EXPERIMENT_NAME": workspace_path}
