"""Jobs, runs and clusters through databricks-sdk: the repo's job, its runs, the cluster.

- :func:`ensure_job` finds the job by exact name, creates it when missing (two racing builds
  converge on the oldest job and delete the extra one), resets it when its settings differ.
- :func:`start_run` calls run-now with the build's parameters and an idempotency token.
- :func:`wait_for_run` polls adaptively (fast at first, capped backoff) under the build's own
  deadline, and :func:`cancel_run` cancels and waits until the run has really ended.
- :func:`ensure_cluster_running` starts a terminated cluster under its own timeout.
- :func:`active_runs`, :func:`task_error` and :func:`export_views` read what cleanup and the
  collect step need.

Jobs are found by exact name in one place (:func:`jobs_named`).

SDK errors become :class:`InfrastructureError`; deadlines raise :class:`TimeoutExpired`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from orchestrator.adapters.databricks.sdk_errors import sdk_errors
from orchestrator.adapters.databricks.values import ActiveRun
from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import InfrastructureError, TimeoutExpired
from orchestrator.layout import job_name

if TYPE_CHECKING:
    from orchestrator.adapters.databricks.client import SdkClient
    from databricks.sdk.service.jobs import BaseRun, Run

__all__ = [
    "Polling",
    "active_runs",
    "cancel_run",
    "ensure_cluster_running",
    "ensure_job",
    "export_views",
    "find_build_run",
    "get_run",
    "is_terminal",
    "jobs_named",
    "platform_failure",
    "start_run",
    "task_error",
    "wait_for_run",
]

log = logging.getLogger(__name__)

TERMINAL = ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")

# Ends the Jobs API documents as the platform's, not the notebook's (RunLifeCycleState,
# TerminationTypeType and TerminationCodeCode in the Jobs API 2.2 reference)
PLATFORM_LIFE_CYCLES = frozenset({"INTERNAL_ERROR"})
PLATFORM_TYPES = frozenset({"INTERNAL_ERROR", "CLOUD_FAILURE"})
PLATFORM_CODES = frozenset(
    {
        "INTERNAL_ERROR",  # an unexpected error in the platform
        "DRIVER_ERROR",  # could not talk to the Spark driver
        "CLUSTER_ERROR",  # the cluster failed
        "CLOUD_FAILURE",  # the cloud provider failed
        "WORKSPACE_RUN_LIMIT_EXCEEDED",  # the workspace's quota of active runs
        "CLUSTER_REQUEST_LIMIT_EXCEEDED",  # cluster requests rate-limited
        "MAX_SPARK_CONTEXTS_EXCEEDED",  # the cluster has too many execution contexts
        "REPOSITORY_CHECKOUT_FAILED",  # a third-party Git service failed
        "BREAKING_CHANGE",  # a Spark change the service retries with a mitigation
    }
)


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


def jobs_named(client: SdkClient, name: str) -> list[int]:
    """The ids of the jobs named exactly ``name``, oldest first (the list filter is a prefix
    match on some services, so names are compared here)."""
    with sdk_errors(f"listing jobs named {name}"):
        return sorted(
            j.job_id
            for j in client.jobs.list(name=name)
            if j.job_id is not None and j.settings is not None and j.settings.name == name
        )


def _differs(current: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """Top-level fields of ``desired`` whose value differs in ``current`` (server defaults for
    fields the template does not set are not differences)."""
    from databricks.sdk.service.jobs import JobSettings

    a = JobSettings.from_dict(dict(current)).as_dict()
    b = JobSettings.from_dict(dict(desired)).as_dict()
    return sorted(k for k in b if a.get(k) != b[k])


def ensure_job(client: SdkClient, settings: Mapping[str, Any]) -> tuple[int, str]:
    """The job named ``settings["name"]``, made to have these settings.

    Returns ``(job_id, action)`` with action ``created``, ``reset`` or ``unchanged``.
    """
    name = str(settings["name"])
    found = jobs_named(client, name)
    if not found:
        with sdk_errors(f"creating job {name}"):
            created = client.api_client.do("POST", "/api/2.2/jobs/create", body=dict(settings))
        assert isinstance(created, dict)
        job_id = int(created["job_id"])
        winners = jobs_named(client, name)
        if winners and winners[0] != job_id:
            # another build created it at the same time: keep the oldest, drop ours
            log.info("job %s was created concurrently as %s; deleting %s", name, winners[0], job_id)
            with sdk_errors(f"deleting duplicate job {job_id}"):
                client.jobs.delete(job_id)
            return winners[0], "unchanged"
        return job_id, "created"
    job_id = found[0]
    if len(found) > 1:
        log.warning("%d jobs are named %s; using the oldest, %s", len(found), name, job_id)
    with sdk_errors(f"reading job {job_id}"):
        job = client.jobs.get(job_id)
    current = job.settings.as_dict() if job.settings is not None else {}
    changed = _differs(current, settings)
    if not changed:
        return job_id, "unchanged"
    log.info("job %s settings differ in %s; resetting", job_id, ", ".join(changed))
    with sdk_errors(f"resetting job {job_id}"):
        client.api_client.do(
            "POST", "/api/2.2/jobs/reset", body={"job_id": job_id, "new_settings": dict(settings)}
        )
    return job_id, "reset"


def start_run(
    client: SdkClient,
    job_id: int,
    *,
    job_parameters: Mapping[str, str],
    idempotency_token: str,
    only: Sequence[str] | None = None,
) -> int:
    """run-now; the same ``idempotency_token`` never starts a second run, so a retried request
    (by the SDK on a 429/503, or by a re-run of the same build step) is safe."""
    with sdk_errors(f"starting a run of job {job_id}"):
        started = client.jobs.run_now(
            job_id,
            job_parameters=dict(job_parameters),
            idempotency_token=idempotency_token,
            only=list(only) if only else None,
        )
    if started.run_id is None:
        raise InfrastructureError(f"run-now of job {job_id} returned no run_id")
    return int(started.run_id)


def find_build_run(client: SdkClient, job_id: int, build_id: str) -> int | None:
    """The active run of ``job_id`` started for ``build_id`` (its ``build_id`` job parameter)."""
    with sdk_errors(f"listing runs of job {job_id}"):
        for run in client.jobs.list_runs(job_id=job_id, active_only=True):
            for param in run.job_parameters or []:
                if param.name == "build_id" and param.value == build_id and run.run_id:
                    return int(run.run_id)
    return None


def is_terminal(run: Run) -> bool:
    state = run.status.state.value if run.status and run.status.state else None
    life_cycle = (
        run.state.life_cycle_state.value if run.state and run.state.life_cycle_state else None
    )
    return life_cycle in TERMINAL or (life_cycle is None and state == "TERMINATED")


def _platform_end(item: object) -> str | None:
    """Why a run or task ended by the platform's fault, or None (a run's or a task's
    ``state``/``status`` as the SDK returns them)."""
    state = getattr(item, "state", None)
    life_cycle = getattr(getattr(state, "life_cycle_state", None), "value", None)
    details = getattr(getattr(item, "status", None), "termination_details", None)
    code = getattr(getattr(details, "code", None), "value", None)
    kind = getattr(getattr(details, "type", None), "value", None)
    if life_cycle in PLATFORM_LIFE_CYCLES or code in PLATFORM_CODES or kind in PLATFORM_TYPES:
        message = getattr(details, "message", None) or getattr(state, "state_message", None)
        what = code or life_cycle or kind
        return f"{what}: {message}" if message else str(what)
    return None


def platform_failure(run: Run) -> str | None:
    """Why the run (or one of its tasks) ended by the platform's fault (a lost cluster or
    driver, a workspace that stopped, an internal error), or None when it did not."""
    for task in run.tasks or []:
        reason = _platform_end(task)
        if reason is not None:
            return f"task {task.task_key}: {reason}"
    reason = _platform_end(run)
    return f"run {run.run_id}: {reason}" if reason is not None else None


def get_run(client: SdkClient, run_id: int) -> Run:
    with sdk_errors(f"reading run {run_id}"):
        return client.jobs.get_run(run_id)


def wait_for_run(
    client: SdkClient,
    run_id: int,
    *,
    deadline: float | None,
    clock: Clock | None = None,
    polling: Polling = Polling(),
    on_update: Callable[[Run], None] | None = None,
) -> Run:
    """Poll until the run ends; TimeoutExpired when ``deadline`` (clock time) passes first."""
    clock = clock or SystemClock()
    for delay in polling.intervals():
        run = get_run(client, run_id)
        if on_update is not None:
            on_update(run)
        if is_terminal(run):
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
) -> Run | None:
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


def _parameter(run: BaseRun, name: str) -> str | None:
    for p in run.job_parameters or []:
        if p.name == name:
            value = p.value if p.value is not None else p.default
            return value or None
    return None


def active_runs(client: SdkClient, repo: str) -> list[ActiveRun]:
    """The active runs of the repo's build job (by its exact name), with their build ids."""
    name = job_name(repo)
    job_ids = jobs_named(client, name)
    with sdk_errors(f"listing active runs of {name}"):
        found = [
            run
            for job_id in job_ids
            for run in client.jobs.list_runs(job_id=job_id, active_only=True)
        ]
    out = []
    for run in found:
        if run.run_id is None:
            continue
        started = datetime.fromtimestamp(run.start_time / 1000, UTC) if run.start_time else None
        out.append(
            ActiveRun(
                int(run.run_id),
                name,
                repo,
                _parameter(run, "build_id"),
                _parameter(run, "build_folder"),
                started,
                run.run_page_url,
            )
        )
    return out


def task_error(client: SdkClient, task: object) -> tuple[str, str | None]:
    """Why a task ended without test results: its state and error, with the error trace."""
    run_id = getattr(task, "run_id", None)
    state = getattr(task, "state", None)
    result = getattr(getattr(state, "result_state", None), "value", None)
    message = getattr(state, "state_message", None) or ""
    error, trace = "", None
    if run_id is not None:
        try:
            with sdk_errors(f"reading the output of task run {run_id}"):
                output = client.jobs.get_run_output(run_id)
            error, trace = output.error or "", output.error_trace
        except InfrastructureError as exc:  # the failure case is still reported
            log.debug("no output for task run %s: %s", run_id, exc)
    platform = _platform_end(task)
    if platform is not None:
        summary = (
            "the platform failed, not the notebook (exit code 3; a retry may pass): task "
            f"ended {platform} without writing test results"
        )
        return (f"{summary}: {error}" if error else summary), trace
    summary = f"task ended {result or 'without a result'} without writing test results"
    detail = error or message
    return (f"{summary}: {detail}" if detail else summary), trace


def export_views(client: SdkClient, run_id: int) -> list[str]:
    """The executed notebook of a task run as HTML (runs/export), one string per view."""
    with sdk_errors(f"exporting run {run_id}"):
        export = client.jobs.export_run(run_id)
    return [view.content for view in export.views or [] if view.content]
