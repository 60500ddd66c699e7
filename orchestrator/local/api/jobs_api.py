"""Jobs API (2.0, 2.1 and 2.2) of the local workspace: jobs, runs, repairs, outputs and exports.

Endpoints translate requests into store and scheduler calls. ``run-now`` and ``runs/submit``
honour ``idempotency_token`` under one lock, so a retried request never starts a second run.
Settings are checked whole before a job or run is made: fields (``jobs/run_documents.py``),
task types (``jobs/task_types.py``: what cannot run here is refused now, not at run time) and
the compute they name (``jobs/compute_refs.py``: pools and policies must exist).
``runs/repair`` re-runs a run's failed tasks (``jobs/repair.py``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from orchestrator.files import atomic_writer
from orchestrator.local.api.paging import page
from orchestrator.local.api.routing import Request, Router
from orchestrator.local.jobs import run_documents as runs
from orchestrator.local.jobs.compute_refs import check_compute, check_environments
from orchestrator.local.jobs.control_tasks import resolve_operands
from orchestrator.local.jobs.repair import history_of, plan_repair, set_history
from orchestrator.local.jobs.run_state import set_state
from orchestrator.local.jobs.scheduler import Scheduler
from orchestrator.local.jobs.task_types import check_task_types
from orchestrator.local.state.api_error import ApiError, bad_request, invalid_state, not_found
from orchestrator.local.state.documents import Documents
from orchestrator.local.state.notebook_model import HTML_VERSION_META
from orchestrator.local.state.records import (
    DEFAULT_USER_NAME,
    JobRecord,
    JobSettings,
    ResultState,
    RunRecord,
    TaskRunRecord,
)
from orchestrator.local.state.redaction import redact_json, secret_values
from orchestrator.local.state.retention import delete_run_files, executed_notebook
from orchestrator.local.state.store import Store, now_ms

__all__ = ["MAX_OUTPUT_BYTES", "JobsApi"]

MAX_OUTPUT_BYTES = 5 * 1024 * 1024
log = logging.getLogger(__name__)

_VERSIONS = ("2.0", "2.1", "2.2")
_LIST_FIELDS_HIDDEN = ("tasks", "job_clusters", "parameters", "environments")
#: runs/list's run_type: run-now, runs/submit, dbutils.notebook.run
_RUN_TYPES = ("JOB_RUN", "SUBMIT_RUN", "WORKFLOW_RUN")


class JobsApi:
    def __init__(
        self,
        store: Store,
        scheduler: Scheduler,
        *,
        base_url: str,
        export_html: Any,
        user_name: str = DEFAULT_USER_NAME,
        documents: Documents | None = None,
    ) -> None:
        self.store = store
        #: pools and policies that jobs' clusters name (None: not checked)
        self.documents = documents
        #: called with a job's id once it is deleted (its permissions go with it)
        self.on_job_deleted: Callable[[int], None] = lambda _job_id: None
        self.scheduler = scheduler
        self.base_url = base_url
        #: the workspace's one user: every job's and run's creator, and the jobs' run_as
        self.user_name = user_name
        #: stops a running ``dbutils.notebook.run`` child by its run id (runs/cancel), given
        #: by the workspace when its tasks run notebooks; False when no such child runs
        self.cancel_child: Callable[[int], bool] = lambda _run_id: False
        #: Callable[[Path, str, int], str]: executed notebook, notebook path, task run id -> page
        self._export_html = export_html
        self._lock = threading.Lock()
        #: one export at a time (the exporter is one anyway), each rendered once
        self._export_lock = threading.Lock()

    def register(self, router: Router) -> None:
        for method, route, handler in (
            ("POST", "jobs/create", self.create),
            ("GET", "jobs/get", self.get),
            ("GET", "jobs/list", self.list),
            ("POST", "jobs/reset", self.reset),
            ("POST", "jobs/update", self.update),
            ("POST", "jobs/delete", self.delete),
            ("POST", "jobs/run-now", self.run_now),
            ("POST", "jobs/runs/submit", self.submit),
            ("GET", "jobs/runs/get", self.runs_get),
            ("GET", "jobs/runs/list", self.runs_list),
            ("POST", "jobs/runs/cancel", self.runs_cancel),
            ("POST", "jobs/runs/cancel-all", self.runs_cancel_all),
            ("POST", "jobs/runs/delete", self.runs_delete),
            ("POST", "jobs/runs/repair", self.runs_repair),
            ("GET", "jobs/runs/get-output", self.runs_get_output),
            ("GET", "jobs/runs/export", self.runs_export),
        ):
            router.api(method, route, _VERSIONS, handler)

    # --- jobs ----------------------------------------------------------------------------
    def _job(self, job_id: int) -> JobRecord:
        job = self.store.get_job(job_id)
        if job is None:
            raise not_found(f"Job {job_id} does not exist.")
        return job

    def _validated(self, settings: dict[str, Any], *, require_tasks: bool = False) -> JobSettings:
        """Settings checked whole: fields, task types, the compute they name."""
        checked = runs.validate_settings(settings, require_tasks=require_tasks)
        tasks = runs.normalize_tasks(checked)
        check_task_types(tasks, git_source=bool(dict(checked).get("git_source")))
        check_environments(checked, tasks)
        if self.documents is not None:
            check_compute(checked, tasks, self.documents)
        for task in tasks:
            run_job = task.get("run_job_task")
            if isinstance(run_job, dict) and self.store.get_job(int(run_job["job_id"])) is None:
                raise bad_request(
                    f"Task {task.get('task_key')}: run_job_task names job {run_job['job_id']}, "
                    "which does not exist"
                )
        return checked

    def create(self, req: Request) -> dict[str, Any]:
        settings = {k: v for k, v in req.params.items() if k not in ("access_control_list",)}
        settings.setdefault("name", "Untitled")
        settings.setdefault("max_concurrent_runs", 1)
        checked = self._validated(settings)
        with self._lock:  # ids appear in the listing in the order they were given out
            job_id = self.store.next_id("job")
            self.store.insert_job(job_id, now_ms(), self.user_name, checked)
        return {"job_id": job_id}

    def get(self, req: Request) -> dict[str, Any]:
        job = self._job(req.required_int("job_id"))
        return {**job, "run_as_user_name": self.user_name}

    def list(self, req: Request) -> dict[str, Any]:
        name = req.text("name")
        expand = req.flag("expand_tasks")
        jobs: list[dict[str, Any]] = [dict(j) for j in self.store.list_jobs()]
        if name is not None:
            jobs = [j for j in jobs if str(j["settings"].get("name", "")).lower() == name.lower()]
        shown, out = page(req, jobs, max_limit=100)
        if not expand:
            shown = [
                {
                    **job,
                    "settings": {
                        k: v for k, v in job["settings"].items() if k not in _LIST_FIELDS_HIDDEN
                    },
                }
                for job in shown
            ]
        if shown:
            out["jobs"] = shown
        return out

    def reset(self, req: Request) -> dict[str, Any]:
        job_id = req.required_int("job_id")
        settings = req.obj("new_settings")
        if not settings:
            raise bad_request("Missing required field: new_settings")
        self._job(job_id)
        settings.setdefault("name", "Untitled")
        settings.setdefault("max_concurrent_runs", 1)
        self.store.update_job(job_id, self._validated(settings))
        return {}

    def update(self, req: Request) -> dict[str, Any]:
        job_id = req.required_int("job_id")
        changes = req.obj("new_settings")
        remove = req.get("fields_to_remove") or []
        if not isinstance(remove, list) or not all(isinstance(f, str) for f in remove):
            raise bad_request("fields_to_remove must be a list of field names")
        settings: dict[str, Any] = dict(self._job(job_id)["settings"])
        for key, value in changes.items():
            if key in ("tasks", "job_clusters") and req.version != "2.0":
                ident = "task_key" if key == "tasks" else "job_cluster_key"
                if not isinstance(value, list) or not all(
                    isinstance(item, dict) and isinstance(item.get(ident), str) for item in value
                ):
                    raise bad_request(f"Invalid {key}: expected a list of objects with {ident}")
                merged = {item[ident]: item for item in settings.get(key, []) if ident in item}
                for item in value:
                    merged[item[ident]] = item
                settings[key] = list(merged.values())
            else:
                settings[key] = value
        for field in remove:
            if field.startswith("tasks/"):
                key = field.split("/", 1)[1]
                settings["tasks"] = [t for t in settings.get("tasks", []) if t["task_key"] != key]
            else:
                settings.pop(field, None)
        self.store.update_job(job_id, self._validated(settings))
        return {}

    def delete(self, req: Request) -> dict[str, Any]:
        job_id = req.required_int("job_id")
        if not self.store.delete_job(job_id):
            raise not_found(f"Job {job_id} does not exist.")
        self.on_job_deleted(job_id)
        return {}

    # --- starting runs -------------------------------------------------------------------
    def run_now(self, req: Request) -> dict[str, Any]:
        job_id = req.required_int("job_id")
        token = req.text("idempotency_token")
        notebook_params = req.obj("notebook_params")
        overrides = req.obj("job_parameters")
        only = req.get("only")
        if only is not None and (
            not isinstance(only, list) or not all(isinstance(k, str) for k in only)
        ):
            raise bad_request("only must be a list of task keys")
        with self._lock:
            if (
                token
                and (existing := self.store.run_by_token(_token_key("job", token))) is not None
            ):
                return {"run_id": existing, "number_in_job": existing}
            doc = self._start_job_run(
                job_id, notebook_params, overrides, only=only, token=token, trigger="ONE_TIME"
            )
        return {"run_id": doc["run_id"], "number_in_job": doc["number_in_job"]}

    def trigger_run(self, job_id: int, job_parameters: Mapping[str, str]) -> int:
        """Start a run of a job for a ``run_job_task`` (trigger ``RUN_JOB_TASK``)."""
        with self._lock:
            doc = self._start_job_run(
                job_id, {}, dict(job_parameters), only=None, token=None, trigger="RUN_JOB_TASK"
            )
        return int(doc["run_id"])

    def _start_job_run(
        self,
        job_id: int,
        notebook_params: dict[str, Any],
        overrides: dict[str, Any],
        *,
        only: Sequence[str] | None,
        token: str | None,
        trigger: str,
    ) -> RunRecord:
        """A run of a job, made and handed to the scheduler (under the API's lock)."""
        job = self._job(job_id)
        settings = job["settings"]
        job_params = runs.job_parameter_values(settings, overrides)
        new = self._new_run(
            settings,
            job_id=job_id,
            run_name=str(settings.get("name", "")),
            run_type="JOB_RUN",
            notebook_params=notebook_params,
            job_params=job_params,
            only=only,
        )
        doc = new.doc
        overriding: dict[str, Any] = {}
        if notebook_params:
            overriding["notebook_params"] = notebook_params
        if overrides:
            overriding["job_parameters"] = overrides
        if overriding:
            doc["overriding_parameters"] = overriding
        if settings.get("parameters"):
            defaults = {p["name"]: p.get("default", "") for p in settings["parameters"]}
            doc["job_parameters"] = [
                {"name": k, "default": defaults.get(k, ""), "value": v}
                for k, v in job_params.items()
            ]
        doc["trigger"] = trigger
        self.scheduler.submit(
            doc,
            job_settings=settings,
            token=_token_key("job", token) if token else None,
            timeout_seconds=new.timeout_seconds,
            task_parameters=new.task_parameters,
        )
        return doc

    def submit(self, req: Request) -> dict[str, Any]:
        token = req.text("idempotency_token")
        settings = self._validated(
            {k: v for k, v in req.params.items() if k not in ("access_control_list",)},
            require_tasks=True,
        )
        with self._lock:
            if (
                token
                and (existing := self.store.run_by_token(_token_key("submit", token))) is not None
            ):
                return {"run_id": existing}
            new = self._new_run(
                settings,
                job_id=None,
                run_name=str(settings.get("run_name") or "Untitled"),
                run_type="SUBMIT_RUN",
                notebook_params={},
                job_params={},
            )
            self.scheduler.submit(
                new.doc,
                job_settings=None,
                token=_token_key("submit", token) if token else None,
                timeout_seconds=new.timeout_seconds,
                task_parameters=new.task_parameters,
            )
        return {"run_id": new.doc["run_id"]}

    def _new_run(
        self,
        settings: JobSettings,
        *,
        job_id: int | None,
        run_name: str,
        run_type: str,
        notebook_params: dict[str, Any],
        job_params: dict[str, str],
        only: Sequence[str] | None = None,
    ) -> runs.NewRun:
        new = runs.new_run(
            settings,
            job_id=job_id,
            run_name=run_name,
            run_type=run_type,
            notebook_params=notebook_params,
            job_params=job_params,
            only=only,
            next_id=lambda: self.store.next_id("run"),
            run_url=self.run_url,
            creator=self.user_name,
        )
        resolve_operands(new.doc, job_params=job_params)
        return new

    def await_run(self, run_id: int, cancel: threading.Event) -> RunRecord | None:
        """Wait for a run to end (a ``run_job_task`` waits for its job's run); when
        ``cancel`` is set, cancel it and wait for that."""
        while not self.scheduler.wait_idle(run_id, 0.1):
            if cancel.is_set():
                self.scheduler.cancel(
                    run_id, message="The task that started this run was cancelled."
                )
                self.scheduler.wait_idle(run_id, 60)
                break
        return self.scheduler.get(run_id)

    def run_url(self, job_id: int | None, run_id: int) -> str:
        """The page of a run or task run (of a job, or one-time)."""
        if job_id is None:
            return f"{self.base_url}/runs/{run_id}"
        return f"{self.base_url}/jobs/{job_id}/runs/{run_id}"

    # --- reading runs --------------------------------------------------------------------
    def lookup(self, run_id: int) -> tuple[RunRecord, TaskRunRecord | None]:
        """The run document holding ``run_id`` and, for a task run id, that task."""
        doc = self.scheduler.get(run_id)
        if doc is not None:
            return doc, None
        parent = self.store.parent_run_id(run_id)
        if parent is not None:
            doc = self.scheduler.get(parent)
            if doc is not None:
                for task in doc.get("tasks", []):
                    if task["run_id"] == run_id:
                        return doc, task
        raise not_found(f"Run {run_id} does not exist.")

    def _task_view(self, doc: RunRecord, task: TaskRunRecord) -> dict[str, Any]:
        view = runs.public_view(doc, expand_tasks=True)
        view["tasks"] = [runs.public_view(task)]
        for key in ("run_id", "state", "status", "start_time", "end_time", "run_page_url"):
            view[key] = task.get(key)
        return view

    def runs_get(self, req: Request) -> dict[str, Any]:
        doc, task = self.lookup(req.required_int("run_id"))
        if task is not None:
            return self._task_view(doc, task)
        view = runs.public_view(doc)
        if req.flag("include_history") and history_of(doc):
            view["repair_history"] = self._history(doc)
        return view

    def _history(self, doc: RunRecord) -> Sequence[dict[str, Any]]:
        """The run's repair history, its last repair's end and state those of the run once
        the run has ended."""
        history = history_of(doc)
        if history and not self.scheduler.is_active(int(doc["run_id"])):
            last = history[-1]
            if last.get("type") == "REPAIR" and not last.get("end_time"):
                last["end_time"] = doc.get("end_time", 0)
                last["state"] = dict(doc["state"])
                last["status"] = dict(doc["status"])
        return history

    # --- repairs -------------------------------------------------------------------------
    def runs_repair(self, req: Request) -> dict[str, Any]:
        run_id = req.required_int("run_id")
        with self._lock:
            doc, task = self.lookup(run_id)
            if task is not None:
                raise bad_request("Repair the job run, not one of its task runs")
            plan = plan_repair(doc, req.params, active=self.scheduler.is_active(run_id))
            notebook_params = {
                **(doc.get("overriding_parameters") or {}).get("notebook_params", {}),
                **req.obj("notebook_params"),
            }
            job_params = {
                str(p["name"]): str(p.get("value", p.get("default", "")))
                for p in doc.get("job_parameters", [])
            }
            job_params.update({str(k): str(v) for k, v in req.obj("job_parameters").items()})
            job = self.store.get_job(int(doc["job_id"]))
            timeout = (job["settings"] if job else {}).get("timeout_seconds")
            doc = self._repaired(doc, plan.rerun, notebook_params, job_params)
            done_before: dict[str, ResultState] = {
                str(t["task_key"]): t["state"].get("result_state", "FAILED")
                for t in doc["tasks"]
                if t["task_key"] not in plan.rerun
            }
            parameters = {
                str(t["task_key"]): self._parameters(doc, t, notebook_params, job_params)
                for t in doc["tasks"]
                if t["task_key"] in plan.rerun
            }
            self.scheduler.repair(
                doc,
                done_before=done_before,
                timeout_seconds=float(timeout) if timeout else None,
                task_parameters=parameters,
            )
            repair_id = history_of(doc)[-1]["id"]
        return {"repair_id": repair_id}

    def _repaired(
        self,
        doc: RunRecord,
        rerun: Sequence[str],
        notebook_params: dict[str, Any],
        job_params: dict[str, str],
    ) -> RunRecord:
        """The run with new task runs for ``rerun`` and a new item in its repair history."""
        history = list(self._history(doc))
        if not history:
            history.append(
                {
                    "type": "ORIGINAL",
                    "id": doc["run_id"],
                    "start_time": doc.get("start_time", 0),
                    "end_time": doc.get("end_time", 0),
                    "state": dict(doc["state"]),
                    "status": dict(doc["status"]),
                    "task_run_ids": [t["run_id"] for t in doc["tasks"]],
                }
            )
        job_id = doc.get("job_id")
        new_ids: list[int] = []
        for task in doc["tasks"]:
            if task["task_key"] not in rerun:
                continue
            new_id = self.store.next_id("run")
            new_ids.append(new_id)
            task["start_time"] = task["end_time"] = task["run_duration"] = 0
            task["setup_duration"] = task["execution_duration"] = task["cleanup_duration"] = 0
            task["run_id"] = new_id
            task["run_page_url"] = self.run_url(job_id, new_id)
            set_state(task, "PENDING")
        stamp = now_ms()
        history.append(
            {
                "type": "REPAIR",
                "id": self.store.next_id("repair"),
                "start_time": stamp,
                "end_time": 0,
                "state": {"life_cycle_state": "PENDING", "state_message": ""},
                "status": {"state": "PENDING"},
                "task_run_ids": new_ids,
            }
        )
        set_history(doc, history)
        doc["end_time"] = 0
        if notebook_params or job_params:
            overriding = dict(doc.get("overriding_parameters") or {})
            if notebook_params:
                overriding["notebook_params"] = notebook_params
            doc["overriding_parameters"] = overriding
        return doc

    def _parameters(
        self,
        doc: RunRecord,
        task: TaskRunRecord,
        notebook_params: dict[str, Any],
        job_params: dict[str, str],
    ) -> dict[str, str]:
        lookup = runs.task_lookup(doc, task, job_params)
        merged = runs.task_parameters(task, notebook_params, job_params)
        return {k: runs.resolve_references(v, lookup) for k, v in merged.items()}

    def runs_list(self, req: Request) -> dict[str, Any]:
        job_id = req.integer("job_id")
        active_only = req.flag("active_only")
        completed_only = req.flag("completed_only")
        if active_only and completed_only:
            raise bad_request("active_only and completed_only can't both be true")
        run_type = req.text("run_type")
        if run_type is not None and run_type not in _RUN_TYPES:
            raise bad_request(f"Invalid run_type: {run_type}")
        docs = self.store.list_runs(job_id=job_id, active_only=active_only)
        if run_type is not None:
            docs = [d for d in docs if d.get("run_type") == run_type]
        docs = [self.scheduler.get(int(d["run_id"])) or d for d in docs]
        if completed_only:
            docs = [d for d in docs if not self.scheduler.is_active(int(d["run_id"]))]
        shown, out = page(req, docs, max_limit=1000)
        expand = req.flag("expand_tasks")
        if shown:
            out["runs"] = [runs.public_view(d, expand_tasks=expand) for d in shown]
        return out

    def runs_cancel(self, req: Request) -> dict[str, Any]:
        run_id = req.required_int("run_id")
        doc, _ = self.lookup(run_id)
        if not self.scheduler.cancel(int(doc["run_id"])):
            self.cancel_child(int(doc["run_id"]))
        return {}

    def runs_cancel_all(self, req: Request) -> dict[str, Any]:
        job_id = req.integer("job_id")
        if job_id is None and not req.flag("all_queued_runs"):
            raise bad_request("job_id is required")
        for doc in self.store.list_runs(job_id=job_id, active_only=True):
            self.scheduler.cancel(int(doc["run_id"]))
        return {}

    def runs_delete(self, req: Request) -> dict[str, Any]:
        run_id = req.required_int("run_id")
        doc, task = self.lookup(run_id)
        if task is not None:
            raise bad_request("Delete the job run, not one of its task runs")
        if self.scheduler.is_active(run_id):
            raise invalid_state(f"Run {run_id} is active and can't be deleted; cancel it first.")
        self.store.delete_run(run_id)
        delete_run_files(self.store, run_id, [int(t["run_id"]) for t in doc.get("tasks", [])])
        return {}

    def _single_task(self, run_id: int, what: str) -> tuple[RunRecord, TaskRunRecord]:
        doc, task = self.lookup(run_id)
        if task is None:
            tasks = doc.get("tasks", [])
            if len(tasks) != 1:
                raise bad_request(
                    f"Retrieving the {what} of runs with multiple tasks is not supported. "
                    "Please retrieve the output of each individual task run instead."
                )
            task = tasks[0]
        return doc, task

    def runs_get_output(self, req: Request) -> dict[str, Any]:
        doc, task = self._single_task(req.required_int("run_id"), "output")
        out: dict[str, Any] = {"metadata": self._task_view(doc, task)}
        path = self.scheduler.output_path(int(task["run_id"]))
        if path.exists():
            stored = json.loads(path.read_text(encoding="utf-8"))
            for key, value in stored.items():
                if not key.startswith("_"):
                    out[key] = value
        notebook_output = out.get("notebook_output")
        if isinstance(notebook_output, dict) and isinstance(notebook_output.get("result"), str):
            result = notebook_output["result"].encode("utf-8")
            if len(result) > MAX_OUTPUT_BYTES:
                notebook_output["result"] = result[:MAX_OUTPUT_BYTES].decode("utf-8", "ignore")
                notebook_output["truncated"] = True
        # masked when recorded; again here for a secret put since, or an older state's run
        masked: dict[str, Any] = redact_json(out, secret_values(self.store))
        return masked

    def runs_export(self, req: Request) -> dict[str, Any]:
        views = (req.text("views_to_export") or "CODE").upper()
        if views not in ("CODE", "ALL", "DASHBOARDS"):
            raise bad_request(f"Invalid views_to_export: {views}")
        _, task = self._single_task(req.required_int("run_id"), "export")
        if views == "DASHBOARDS":
            return {"views": []}
        html = self.executed_html(task)
        if html is None:
            raise ApiError(
                400, "INVALID_STATE", f"Run {task['run_id']} has no executed notebook to export."
            )
        name = str((task.get("notebook_task") or {}).get("notebook_path", "notebook")).rsplit(
            "/", 1
        )[-1]
        return {"views": [{"content": html, "name": name, "type": "NOTEBOOK"}]}

    def executed_html(self, task: TaskRunRecord) -> str | None:
        """A task run's executed notebook as HTML, rendered once and kept beside its output."""
        executed = executed_notebook(self.store, int(task["run_id"]))
        if executed is None:
            return None
        cache = self.store.runs_root / str(task["run_id"]) / "export.html"
        with self._export_lock:
            if cache.exists():
                cached = cache.read_text(encoding="utf-8")
                if HTML_VERSION_META in cached:  # else an older workspace's: render it again
                    return cached
            name = str((task.get("notebook_task") or {}).get("notebook_path", "notebook"))
            html: str = self._export_html(executed, name, int(task["run_id"]))
            with atomic_writer(cache, mode=0o644) as out:  # a cache: never seen half-written
                out.write(html.encode("utf-8"))
        return html

    def prerender(self, task: TaskRunRecord) -> None:
        """Render a task run's export as soon as the task has ended (``Scheduler.on_task_end``),
        in its thread: a build exports every task run when it collects, and a task that ends
        before the others is rendered while they still run, not after the last one. A failure
        is left for the export request to report."""
        try:
            self.executed_html(task)
        except Exception:  # runs/export renders it again and reports the error
            log.debug("cannot render the export of run %s yet", task.get("run_id"), exc_info=True)


def _token_key(kind: str, token: str) -> str:
    return f"{kind}:{token}"
