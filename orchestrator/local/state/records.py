"""The documents the local workspace keeps and the Jobs API returns, as typed records.

A job is its settings; a run is the Jobs API's run JSON, with its task runs. They are
``TypedDict`` records rather than dataclasses because they are the API's JSON: stored as it is
and returned as it is, fields the workspace does not interpret (a task's ``email_notifications``,
a job's ``tags``) included. Only what the workspace reads or writes is declared; every record is
``total=False`` because the API omits what is unset. The server's own bookkeeping (a run's
timeout, its cancel message, the resolved parameters of its tasks) is never stored in them:
it lives in the scheduler's :class:`~orchestrator.local.jobs.scheduler.ActiveRun`.

Field names and values follow the Jobs API 2.2 reference (``Run``, ``RunTask``, ``RunState``,
``RunStatus``, ``TerminationDetails``) and databricks-sdk's ``jobs`` dataclasses.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

__all__ = [
    "ACTIVE_LIFE_CYCLE_STATES",
    "DEFAULT_USER_NAME",
    "JobRecord",
    "JobSettings",
    "LifeCycleState",
    "ResultState",
    "RunRecord",
    "RunState",
    "RunStatus",
    "TaskRunRecord",
    "TerminationDetails",
]

#: ``RunLifeCycleState`` (2.1 ``state.life_cycle_state``).
LifeCycleState = Literal[
    "QUEUED",
    "PENDING",
    "RUNNING",
    "TERMINATING",
    "TERMINATED",
    "SKIPPED",
    "INTERNAL_ERROR",
    "BLOCKED",
    "WAITING_FOR_RETRY",
]

#: ``RunResultState`` (2.1 ``state.result_state``).
ResultState = Literal[
    "SUCCESS",
    "FAILED",
    "TIMEDOUT",
    "CANCELED",
    "UPSTREAM_FAILED",
    "UPSTREAM_CANCELED",
    "EXCLUDED",
    "MAXIMUM_CONCURRENT_RUNS_REACHED",
    "INTERNAL_ERROR",
]

#: the local workspace's one user (its ``user_name`` setting): the creator of every job and
#: run, the owner of ``/Users/<user name>``, who SCIM ``Me`` says the caller is
DEFAULT_USER_NAME = "local@localhost"

ACTIVE_LIFE_CYCLE_STATES: frozenset[LifeCycleState] = frozenset(
    ("QUEUED", "PENDING", "RUNNING", "TERMINATING", "BLOCKED", "WAITING_FOR_RETRY")
)


class RunState(TypedDict, total=False):
    """2.1 ``state``, deprecated by the API in favour of ``status`` and still returned."""

    life_cycle_state: LifeCycleState
    result_state: ResultState
    state_message: str
    user_cancelled_or_timedout: bool


class TerminationDetails(TypedDict):
    code: str
    type: str
    message: str


class QueueDetails(TypedDict):
    code: str
    message: str


class RunStatus(TypedDict, total=False):
    """2.2 ``status``: ``state`` is TERMINATED for every ended run, the details say how."""

    state: str
    termination_details: TerminationDetails
    queue_details: QueueDetails


class _Timed(TypedDict, total=False):
    run_id: int
    attempt_number: int
    start_time: int
    end_time: int
    setup_duration: int
    execution_duration: int
    cleanup_duration: int
    run_duration: int
    run_page_url: str
    state: RunState
    status: RunStatus


class TaskRunRecord(_Timed, total=False):
    """A task run: the task's settings as the job gave them, plus its run fields."""

    task_key: str
    depends_on: list[dict[str, Any]]
    run_if: str
    timeout_seconds: int
    existing_cluster_id: str
    notebook_task: dict[str, Any]
    condition_task: dict[str, Any]
    run_job_task: dict[str, Any]
    libraries: list[Any]
    cluster_instance: dict[str, str]
    description: str


class RunRecord(_Timed, total=False):
    """A job run or a one-time (``runs/submit``) run."""

    job_id: int
    number_in_job: int
    original_attempt_run_id: int
    creator_user_name: str
    run_name: str
    run_type: str
    trigger: str
    format: str
    tasks: list[TaskRunRecord]
    overriding_parameters: dict[str, Any]
    job_parameters: list[dict[str, Any]]
    #: the job's (or submit's) ``git_source``, with ``git_snapshot.used_commit`` once the run
    #: has started
    git_source: dict[str, Any]


class JobSettings(TypedDict, total=False):
    """What the workspace reads of a job's settings; the rest is kept as given."""

    name: str
    tasks: list[dict[str, Any]]
    max_concurrent_runs: int
    queue: dict[str, Any]
    timeout_seconds: int
    parameters: list[dict[str, Any]]
    job_clusters: list[dict[str, Any]]
    environments: list[dict[str, Any]]
    tags: dict[str, str]
    description: str
    git_source: dict[str, Any]


class JobRecord(TypedDict):
    job_id: int
    created_time: int
    creator_user_name: str
    settings: JobSettings
