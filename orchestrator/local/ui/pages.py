"""Routes of the local Jobs UI: read-only pages with Databricks' URL shapes.

- ``/``: the index (jobs and recent runs); ``/jobs``: every job with its latest run, filtered
  by ``?tag=key:value`` (a repo's builds: ``repo:<name>``) and ``?name=``;
- ``/jobs/<job_id>``: the job's runs, one row per build, newest first, filtered by
  ``?state=active|succeeded|failed|canceled`` and ``?branch=``, paged by ``?page=`` (``limit=``);
- ``/jobs/<job_id>/runs/<run_id>``: a run (parameters, tasks, timeline), or for a task run id
  that task's executed notebook; ``/runs/<run_id>`` for one-time runs; ``.../notebook`` too.

Pages are GET only and served without a token (the server listens on loopback only); they
change nothing. This module loads documents from the store and scheduler; :mod:`.ui` renders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from orchestrator.local.api.jobs_api import JobsApi
from orchestrator.local.api.json_body import INT64_MAX
from orchestrator.local.api.routing import Request, Response, Router
from orchestrator.local.state.api_error import ApiError
from orchestrator.local.state.records import RunRecord, TaskRunRecord
from orchestrator.local.state.redaction import redact_html, secret_values
from orchestrator.local.state.retention import executed_notebook
from orchestrator.local.ui import jobs_view, run_view
from orchestrator.local.ui.jobs_view import JobFilters, JobRow, JobsFilter
from orchestrator.local.ui.notebook_view import ChildNotebook, render_notebook
from orchestrator.local.ui.shell import not_found, stylesheet
from orchestrator.local.ui.summary import (
    STATE_FILTERS,
    CountsReader,
    job_parameters,
    matches_state,
    summarize,
)
from orchestrator.local.ui.test_counts import TestCountsApi

__all__ = ["Pages"]

MAX_LIMIT = 200
RECENT_RUNS = 10


def _query(req: Request, name: str) -> str:
    values = req.query.get(name) or [""]
    return values[-1].strip()


def _object_id(text: str) -> int | None:
    """An id from a page's URL; None when it is out of the service's int64 range (no job or
    run can have it: the page is a 404, as for an id that does not exist)."""
    if len(text) > 19:  # more digits than any int64 (and never a 5,000-digit conversion)
        return None
    value = int(text)
    return value if value <= INT64_MAX else None


def _positive(text: str, default: int, maximum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        return default
    return min(max(1, value), maximum)


#: the MLflow runs a task run logged (``MlflowApi.runs_of_task``)
MlflowRuns = Callable[[int], list[dict[str, Any]]]


class Pages:
    def __init__(self, jobs: JobsApi, *, mlflow_runs: MlflowRuns | None = None) -> None:
        self.jobs = jobs
        self.mlflow_runs = mlflow_runs
        self.store = jobs.store
        self.scheduler = jobs.scheduler
        self.counts = CountsReader(jobs.store)

    def register(self, router: Router) -> None:
        routes = (
            (r"/", self.index),
            (r"/jobs/?", self.jobs_list),
            (r"/jobs/(?P<job_id>[0-9]+)/?", self.job),
            (r"/(?:jobs/(?P<job_id>[0-9]+)/)?runs/(?P<run_id>[0-9]+)/?", self.run),
            (r"/(?:jobs/(?P<job_id>[0-9]+)/)?runs/(?P<run_id>[0-9]+)/notebook", self.notebook),
            (r"/static/ui\.css", lambda req: stylesheet()),
            (r"/favicon\.ico", lambda req: Response(204, b"", "image/x-icon")),
        )
        for pattern, handler in routes:
            router.plain("GET", pattern, self._masking(handler), public=True)
        TestCountsApi(self.store).register(router)

    def _masking(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        """``handler`` whose HTML has the secret values masked (``state/redaction.py``): an
        exit value, an error, a parameter or an output recorded before the secret was put."""

        def masked(req: Request, **kwargs: str) -> Response:
            response = handler(req, **kwargs)
            if not response.content_type.startswith("text/html"):
                return response
            secrets = secret_values(self.store)
            if not secrets:
                return response
            text = redact_html(response.body.decode("utf-8", "replace"), secrets)
            return replace(response, body=text.encode("utf-8"))

        return masked

    # --- loading -------------------------------------------------------------------------
    def _fresh(self, doc: RunRecord) -> RunRecord:
        """The scheduler's live copy of an active run, else the stored document."""
        run_id = int(doc["run_id"])
        if self.scheduler.is_active(run_id):
            return self.scheduler.get(run_id) or doc
        return doc

    def _runs(self, job_id: int | None) -> list[RunRecord]:
        return [self._fresh(d) for d in self.store.list_runs(job_id=job_id, active_only=False)]

    def _job_rows(self) -> list[JobRow]:
        rows = []
        for job in self.store.list_jobs():
            runs = self.store.list_runs(job_id=int(job["job_id"]), active_only=False)
            settings = job.get("settings") or {}
            latest = self._fresh(runs[0]) if runs else None
            rows.append(
                JobRow(
                    job_id=int(job["job_id"]),
                    name=str(settings.get("name") or ""),
                    tags={str(k): str(v) for k, v in (settings.get("tags") or {}).items()},
                    latest=latest,
                    runs=len(runs),
                    latest_row=summarize(latest, self.counts) if latest is not None else None,
                )
            )
        return rows

    def _job_name(self, doc: Mapping[str, Any]) -> str:
        job_id = doc.get("job_id")
        job = self.store.get_job(int(job_id)) if job_id is not None else None
        if job is not None:
            return str(job["settings"].get("name") or doc.get("run_name") or "")
        return str(doc.get("run_name") or "")

    def _crumbs(self, doc: Mapping[str, Any], *, task: bool) -> list[tuple[str, str]]:
        crumbs = [("/", "Workspace"), ("/jobs", "Jobs")]
        job_id = doc.get("job_id")
        if job_id is not None:
            crumbs.append((f"/jobs/{job_id}", self._job_name(doc)))
        if task:
            prefix = f"/jobs/{job_id}" if job_id is not None else ""
            crumbs.append((f"{prefix}/runs/{doc['run_id']}", f"Run {doc['run_id']}"))
        return crumbs

    # --- pages ---------------------------------------------------------------------------
    def index(self, req: Request) -> Response:
        recent = [summarize(d, self.counts) for d in self._runs(None)[:RECENT_RUNS]]
        return jobs_view.index_page(self._job_rows(), recent)

    def jobs_list(self, req: Request) -> Response:
        chosen = JobsFilter(tag=_query(req, "tag"), name=_query(req, "name"))
        return jobs_view.jobs_page([j for j in self._job_rows() if chosen.keeps(j)], chosen)

    def job(self, req: Request, job_id: str) -> Response:
        number = _object_id(job_id)
        job = self.store.get_job(number) if number is not None else None
        if job is None:
            return not_found(f"Job {job_id[:40]} does not exist.")
        state = _query(req, "state").lower()
        filters = JobFilters(
            state=state if state in STATE_FILTERS else "",
            branch=_query(req, "branch"),
            page=_positive(_query(req, "page"), 1, 1_000_000),
            limit=_positive(_query(req, "limit"), JobFilters.limit, MAX_LIMIT),
        )
        docs = [(d, job_parameters(d)) for d in self._runs(int(job["job_id"]))]
        branches = sorted({b for _, p in docs if (b := p.get("branch", ""))})
        chosen = [
            (d, p)
            for d, p in docs
            if matches_state(d, filters.state)
            and (not filters.branch or p.get("branch", "") == filters.branch)
        ]
        start = (filters.page - 1) * filters.limit
        rows = [
            summarize(d, self.counts, params=p) for d, p in chosen[start : start + filters.limit]
        ]
        return jobs_view.job_page(job, rows, filters=filters, total=len(chosen), branches=branches)

    def _lookup(self, run_id: str) -> tuple[RunRecord, TaskRunRecord | None] | Response:
        number = _object_id(run_id)
        if number is None:
            return not_found(f"Run {run_id[:40]} does not exist.")
        try:
            return self.jobs.lookup(number)
        except ApiError as err:
            return not_found(err.message)

    def run(self, req: Request, run_id: str, job_id: str | None = None) -> Response:
        found = self._lookup(run_id)
        if isinstance(found, Response):
            return found
        doc, task = found
        if task is not None:
            return self._task(doc, task)
        return run_view.run_page(
            summarize(doc, self.counts),
            job_name=self._job_name(doc),
            crumbs=self._crumbs(doc, task=False),
        )

    def notebook(self, req: Request, run_id: str, job_id: str | None = None) -> Response:
        found = self._lookup(run_id)
        if isinstance(found, Response):
            return found
        doc, task = found
        if task is None:
            tasks = doc.get("tasks") or []
            if len(tasks) != 1:
                return self.run(req, run_id)
            task = tasks[0]
        return self._task(doc, task)

    def _child(self, run_id: int) -> ChildNotebook | None:
        """A ``dbutils.notebook.run`` child's executed notebook, from the run its link names."""
        doc = self.scheduler.get(run_id)
        tasks = (doc or {}).get("tasks") or []
        if len(tasks) != 1:
            return None
        (task,) = tasks
        executed = executed_notebook(self.store, int(task["run_id"]))
        if executed is None:
            return None
        state = task.get("state") or {}
        return ChildNotebook(
            executed=executed,
            path=str((task.get("notebook_task") or {}).get("notebook_path") or "notebook"),
            status=str(state.get("result_state") or state.get("life_cycle_state") or ""),
        )

    def _task(self, doc: RunRecord, task: TaskRunRecord) -> Response:
        executed = executed_notebook(self.store, int(task["run_id"]))
        notebook: str | None = None
        failed: list[str] = []
        if executed is not None:
            path = str((task.get("notebook_task") or {}).get("notebook_path") or "notebook")
            notebook, failed = render_notebook(executed, label=path, find_child=self._child)
        return run_view.task_page(
            doc,
            task,
            job_name=self._job_name(doc),
            notebook=notebook,
            failed_cells=failed,
            crumbs=self._crumbs(doc, task=True),
            mlflow_runs=self.mlflow_runs(int(task["run_id"])) if self.mlflow_runs else [],
        )
