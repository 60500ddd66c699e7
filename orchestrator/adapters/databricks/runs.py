"""Build jobs, runs and clusters through databricks-sdk's API client, read as raw JSON.

- :func:`create_build_job` makes a build's own job (``jobs/create``), found again by its name
  when a retried build or request already made it; :func:`run_build_job` starts its run
  (``run-now``) with an idempotency token, so a retried request never starts a second run;
  :func:`delete_build_jobs` removes a build's job when cleanup removes the build.
- :func:`get_run` reads ``runs/get`` (2.2) as JSON, every page of a run's tasks joined, into a
  :class:`~.run_views.RunView`: codes stay the strings the service sent (the SDK's enums turn
  one they do not know into ``None``), ``status`` read before the deprecated ``state``.
- :func:`wait_for_run` polls adaptively under the build's own deadline, :func:`cancel_run`
  cancels and waits until the run has really ended.
- :func:`ensure_cluster_running` starts a terminated cluster under its own timeout.
- :func:`active_runs`, :func:`find_build_run`, :func:`task_output` and :func:`export_views`
  read what cleanup and the collect step need.

SDK errors become :class:`InfrastructureError`; deadlines raise :class:`TimeoutExpired`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from orchestrator.adapters.databricks.run_views import RunView, mapping, parse_run
from orchestrator.adapters.databricks.sdk_errors import is_not_found, sdk_errors
from orchestrator.adapters.databricks.values import ActiveRun, BuildJob, TaskOutput
from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import InfrastructureError, TimeoutExpired
from orchestrator.layout import build_job_name, job_name, parse_build_job_name

if TYPE_CHECKING:
    from orchestrator.adapters.databricks.client import SdkClient

__all__ = [
    "Polling",
    "active_runs",
    "build_jobs",
    "build_task_runs",
    "cancel_run",
    "create_build_job",
    "delete_build_jobs",
    "ensure_cluster_running",
    "export_views",
    "find_build_run",
    "get_run",
    "jobs_named",
    "run_build_job",
    "task_output",
    "wait_for_run",
]

log = logging.getLogger(__name__)

_JOBS = "/api/2.2/jobs"


@dataclass(frozen=True)
class Polling:
    """Adaptive polling: ``initial`` seconds, times ``factor`` after each poll, at most ``cap``."""

    initial: float = 0.5
    factor: float = 1.5
    cap: float = 1.5

    def intervals(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay
            delay = min(self.cap, delay * self.factor)


def _get(client: SdkClient, path: str, query: Mapping[str, Any]) -> dict[str, Any]:
    answer = client.api_client.do("GET", path, query=dict(query))
    return answer if isinstance(answer, dict) else {}


def jobs_named(client: SdkClient, name: str) -> list[int]:
    """The ids of the jobs named exactly ``name``, oldest first (the list filter is a prefix
    match on some services, so names are compared here)."""
    with sdk_errors(f"listing jobs named {name}"):
        return sorted(
            j.job_id
            for j in client.jobs.list(name=name)
            if j.job_id is not None and j.settings is not None and j.settings.name == name
        )


def _post(client: SdkClient, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
    answer = client.api_client.do("POST", path, body=dict(body))
    return answer if isinstance(answer, dict) else {}


def create_build_job(client: SdkClient, settings: Mapping[str, Any]) -> tuple[int, str]:
    """The build's job (``settings["name"]`` is the build's own), and ``created`` or
    ``reused``. ``jobs/create`` takes no idempotency token, so the job is looked up by its name
    first (a retried build made it already: its settings are reset to these) and again after
    creating it: when racing requests each created one, the oldest is the build's job and every
    other racer deletes its own, so a build ends with one job and no racer loses the job it
    uses."""
    name = str(settings["name"])
    existing = jobs_named(client, name)
    if existing:
        with sdk_errors(f"resetting job {existing[0]} ({name})"):
            _post(client, f"{_JOBS}/reset", {"job_id": existing[0], "new_settings": settings})
        return existing[0], "reused"
    with sdk_errors(f"creating job {name}"):
        job_id = _post(client, f"{_JOBS}/create", settings).get("job_id")
    if not isinstance(job_id, int):
        raise InfrastructureError(f"jobs/create of {name} returned no job_id")
    oldest = min([job_id, *jobs_named(client, name)])
    if oldest == job_id:
        return job_id, "created"
    try:
        with sdk_errors(f"deleting job {job_id}, a second job of {name}"):
            _post(client, f"{_JOBS}/delete", {"job_id": job_id})
    except InfrastructureError as exc:
        if not is_not_found(exc):
            raise
    return oldest, "reused"


def run_build_job(client: SdkClient, job_id: int, *, idempotency_token: str) -> int:
    """``run-now``; the same ``idempotency_token`` never starts a second run, so a retried
    request (by the SDK on a 429/503, or by a re-run of the same build step) is safe."""
    with sdk_errors(f"starting a run of job {job_id}"):
        answer = _post(
            client, f"{_JOBS}/run-now", {"job_id": job_id, "idempotency_token": idempotency_token}
        )
    run_id = answer.get("run_id")
    if not isinstance(run_id, int):
        raise InfrastructureError(f"run-now of job {job_id} returned no run_id")
    return run_id


def build_jobs(client: SdkClient) -> list[BuildJob]:
    """Every build's job in the workspace: named ``build-<repo> <build_id>`` and tagged by the
    orchestrator for that build (``jobs/list`` has no name prefix filter: every page is read,
    with the tasks, whose ``build_folder`` parameter says which build root the job is of)."""
    out: list[BuildJob] = []
    query: dict[str, Any] = {"limit": 100, "expand_tasks": "true"}
    with sdk_errors("listing the builds' jobs"):
        while True:
            page = _get(client, f"{_JOBS}/list", query)
            for job in page.get("jobs") or []:
                settings = mapping(mapping(job).get("settings"))
                parsed = parse_build_job_name(str(settings.get("name") or ""))
                tags = mapping(settings.get("tags"))
                if parsed is None or not isinstance(job.get("job_id"), int):
                    continue
                if tags.get("managed-by") != "orchestrator" or tags.get("build") != parsed[1]:
                    continue
                created = _started({"start_time": job.get("created_time")})
                folder = _build_folder(settings)
                out.append(BuildJob(parsed[0], parsed[1], int(job["job_id"]), created, folder))
            token = page.get("next_page_token")
            if not token or not page.get("has_more", True):
                return out
            query["page_token"] = token


def delete_build_jobs(client: SdkClient, repo: str, build_id: str) -> int:
    """Delete the job of a build (by its name); how many were deleted (one already gone, by
    another cleanup, counts as done)."""
    name = build_job_name(repo, build_id)
    deleted = 0
    for job_id in jobs_named(client, name):
        try:
            with sdk_errors(f"deleting job {job_id} ({name})"):
                _post(client, f"{_JOBS}/delete", {"job_id": job_id})
        except InfrastructureError as exc:
            if not is_not_found(exc):
                raise
            continue
        deleted += 1
    return deleted


def get_run(client: SdkClient, run_id: int) -> RunView:
    """The run with all its tasks (``runs/get`` pages a run's tasks beyond 100)."""
    with sdk_errors(f"reading run {run_id}"):
        data = _get(client, f"{_JOBS}/runs/get", {"run_id": run_id})
        tasks = list(data.get("tasks") or [])
        token = data.get("next_page_token")
        while token:
            page = _get(client, f"{_JOBS}/runs/get", {"run_id": run_id, "page_token": token})
            tasks += page.get("tasks") or []
            token = page.get("next_page_token")
    return parse_run({**data, "tasks": tasks})


def _runs(client: SdkClient, **query: Any) -> Iterator[dict[str, Any]]:
    """``runs/list`` (2.2), every page."""
    params = {k: v for k, v in query.items() if v is not None}
    while True:
        page = _get(client, f"{_JOBS}/runs/list", params)
        yield from (r for r in page.get("runs") or [] if isinstance(r, dict))
        token = page.get("next_page_token")
        if not token or not page.get("has_more", True):
            return
        params["page_token"] = token


def build_task_runs(client: SdkClient, repo: str, build_id: str) -> list[int]:
    """The task runs of every run of a build's job (found by its name): what MLflow's
    ``mlflow.databricks.jobRunID`` tag names on the runs its notebooks logged."""
    name = build_job_name(repo, build_id)
    found: set[int] = set()
    with sdk_errors(f"listing the runs of {name}"):
        for job_id in jobs_named(client, name):
            for run in _runs(client, job_id=job_id, expand_tasks="true"):
                for task in run.get("tasks") or []:
                    if isinstance(task, dict) and isinstance(task.get("run_id"), int):
                        found.add(int(task["run_id"]))
    return sorted(found)


def find_build_run(client: SdkClient, repo: str, build_id: str) -> int | None:
    """The active run of a build's job (found by its name), or None."""
    name = build_job_name(repo, build_id)
    with sdk_errors(f"listing active runs of {name}"):
        for job_id in jobs_named(client, name):
            for run in _runs(client, job_id=job_id, active_only="true"):
                if isinstance(run.get("run_id"), int):
                    return int(run["run_id"])
    return None


def wait_for_run(
    client: SdkClient,
    run_id: int,
    *,
    deadline: float | None,
    clock: Clock | None = None,
    polling: Polling = Polling(),
    on_update: Callable[[RunView], None] | None = None,
) -> RunView:
    """Poll until the run ends; TimeoutExpired when ``deadline`` (clock time) passes first."""
    clock = clock or SystemClock()
    for delay in polling.intervals():
        run = get_run(client, run_id)
        if on_update is not None:
            on_update(run)
        if run.over:
            return run
        now = clock.monotonic()
        if deadline is not None and now >= deadline:
            raise TimeoutExpired(
                f"run {run_id} did not finish before the build timeout",
                run_id=run_id,
                run_url=run.run_page_url,
            )
        clock.sleep(delay if deadline is None else min(delay, max(0.0, deadline - now)))
    raise AssertionError("unreachable")


def cancel_run(
    client: SdkClient,
    run_id: int,
    *,
    clock: Clock | None = None,
    timeout: float = 120.0,
) -> RunView | None:
    """Cancel the run and wait until it has ended; None if that could not be confirmed."""
    clock = clock or SystemClock()
    try:
        with sdk_errors(f"cancelling run {run_id}"):
            client.jobs.cancel_run(run_id)
        return wait_for_run(
            client,
            run_id,
            deadline=clock.monotonic() + timeout,
            clock=clock,
            polling=Polling(0.25, 1.5, 2.0),
        )
    except (InfrastructureError, TimeoutExpired) as exc:
        log.error("could not confirm that run %s was cancelled: %s", run_id, exc)
        return None


def ensure_cluster_running(
    client: SdkClient,
    cluster_id: str,
    *,
    timeout: float,
    clock: Clock | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> bool:
    """Start the cluster if it is terminated and wait until RUNNING; True if it had to start."""
    clock = clock or SystemClock()
    deadline = clock.monotonic() + timeout
    started = False
    for delay in Polling(1.0, 1.5, 5.0).intervals():
        with sdk_errors(f"reading cluster {cluster_id}"):
            info = client.clusters.get(cluster_id)
        state = info.state.value if info.state else "UNKNOWN"
        if state == "RUNNING":
            return started
        if state == "TERMINATED":
            with sdk_errors(f"starting cluster {cluster_id}"):
                client.clusters.start(cluster_id)
            started = True
        elif state in ("ERROR", "UNKNOWN"):
            raise InfrastructureError(
                f"cluster {cluster_id} is in state {state}: {info.state_message}"
            )
        if on_wait is not None:
            on_wait(state)
        now = clock.monotonic()
        if now >= deadline:
            raise TimeoutExpired(
                f"cluster {cluster_id} was not running after {timeout:.0f} s (state {state})"
            )
        clock.sleep(min(delay, deadline - now))
    raise AssertionError("unreachable")


# -- what cleanup and the collect step read ----------------------------------------------------


def _started(run: Mapping[str, Any]) -> datetime | None:
    start = run.get("start_time")
    return datetime.fromtimestamp(start / 1000, UTC) if isinstance(start, int) and start else None


def _build_folder(run: Mapping[str, Any]) -> str | None:
    """The ``build_folder`` a build passes its tasks (or, in earlier versions, its job): from a
    run, or from a job's settings."""
    for task in run.get("tasks") or []:
        notebook = task.get("notebook_task") if isinstance(task, dict) else None
        params = notebook.get("base_parameters") if isinstance(notebook, dict) else None
        if isinstance(params, dict) and isinstance(params.get("build_folder"), str):
            return str(params["build_folder"]) or None
    for param in run.get("job_parameters") or []:
        if isinstance(param, dict) and param.get("name") == "build_folder":
            return str(param.get("value") or param.get("default") or "") or None
    return None


def _legacy_build_id(run: Mapping[str, Any]) -> str | None:
    for param in run.get("job_parameters") or []:
        if isinstance(param, dict) and param.get("name") == "build_id":
            return str(param.get("value") or param.get("default") or "") or None
    return None


def active_runs(client: SdkClient, repo: str) -> list[ActiveRun]:
    """The active runs of the repo's builds: the runs of the build jobs named ``build-<repo>
    <build_id>`` (a job run carries its job's name), and the runs of the repo's job of earlier
    versions (``build-<repo>``), if it still runs."""
    out: list[ActiveRun] = []
    prefix = job_name(repo)
    with sdk_errors(f"listing active runs of {prefix}"):
        for run in _runs(client, active_only="true", run_type="JOB_RUN", expand_tasks="true"):
            parsed = parse_build_job_name(str(run.get("run_name") or ""))
            if parsed is None or parsed[0] != repo or not isinstance(run.get("run_id"), int):
                continue
            out.append(
                ActiveRun(
                    int(run["run_id"]),
                    prefix,
                    repo,
                    parsed[1],
                    _build_folder(run),
                    _started(run),
                    run.get("run_page_url"),
                )
            )
        for job_id in jobs_named(client, prefix):
            for run in _runs(client, job_id=job_id, active_only="true"):
                if isinstance(run.get("run_id"), int):
                    out.append(
                        ActiveRun(
                            int(run["run_id"]),
                            prefix,
                            repo,
                            _legacy_build_id(run),
                            _build_folder(run),
                            _started(run),
                            run.get("run_page_url"),
                        )
                    )
    return out


def task_output(client: SdkClient, run_id: int) -> TaskOutput:
    """A task run's ``runs/get-output``: its error, error trace and exit value."""
    with sdk_errors(f"reading the output of run {run_id}"):
        data = _get(client, f"{_JOBS}/runs/get-output", {"run_id": run_id})
    result = mapping(data.get("notebook_output")).get("result")
    return TaskOutput(
        error=str(data.get("error") or ""),
        error_trace=data.get("error_trace") if isinstance(data.get("error_trace"), str) else None,
        result=result if isinstance(result, str) else None,
    )


def export_views(client: SdkClient, run_id: int) -> list[str]:
    """The executed notebook of a task run as HTML (runs/export), one string per view."""
    with sdk_errors(f"exporting run {run_id}"):
        data = _get(client, f"{_JOBS}/runs/export", {"run_id": run_id, "views_to_export": "CODE"})
    return [
        str(view["content"])
        for view in data.get("views") or []
        if isinstance(view, dict) and view.get("content")
    ]
