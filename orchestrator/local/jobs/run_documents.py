"""Run documents: job settings + run-now overrides -> the run JSON the Jobs API returns.

Owns parameter merging (task ``base_parameters`` < run-now ``notebook_params`` < job
parameters, as documented by Databricks), dynamic value references such as
``{{job.run_id}}`` and ``{{job.parameters.x}}``, and the public views of a run document
(private bookkeeping keys start with ``_`` and never leave the server).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from orchestrator.local.jobs.git_settings import check_git_source
from orchestrator.local.jobs.run_state import set_state
from orchestrator.local.jobs.task_graph import check_acyclic, dependencies
from orchestrator.local.runtime.libraries import environment_dependencies
from orchestrator.local.state.api_error import bad_request
from orchestrator.local.state.limits import (
    MAX_JOB_TASKS,
    check_description,
    check_task_key,
    check_title,
)
from orchestrator.local.state.records import JobSettings, RunRecord, TaskRunRecord
from orchestrator.local.state.store import now_ms

__all__ = [
    "ENVIRONMENT_DEPENDENCIES",
    "NewRun",
    "job_parameter_values",
    "new_run",
    "normalize_tasks",
    "public_view",
    "resolve_references",
    "task_parameters",
    "validate_settings",
]

#: a task run's private key: the ``spec.dependencies`` of the environment its
#: ``environment_key`` names, copied when the run is made (the job may change meanwhile)
ENVIRONMENT_DEPENDENCIES = "_environment_dependencies"
_REFERENCE = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
_RUN_IF = (
    "ALL_SUCCESS",
    "ALL_DONE",
    "NONE_FAILED",
    "AT_LEAST_ONE_SUCCESS",
    "ALL_FAILED",
    "AT_LEAST_ONE_FAILED",
)
_TASK_TYPES = (
    "notebook_task",
    "spark_python_task",
    "python_wheel_task",
    "spark_jar_task",
    "spark_submit_task",
    "sql_task",
    "dbt_task",
    "run_job_task",
    "pipeline_task",
    "condition_task",
    "for_each_task",
)


def normalize_tasks(settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Tasks of job or submit settings; the 2.0 single-task shape becomes one task."""
    tasks = settings.get("tasks")
    if tasks:
        if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
            raise bad_request("Invalid tasks: expected a list of objects")
        return [dict(t) for t in tasks]
    single = {k: settings[k] for k in _TASK_TYPES if k in settings}
    if not single:
        return []
    task: dict[str, Any] = {
        "task_key": str(settings.get("run_name") or settings.get("name") or "main")
    }
    task.update(single)
    for key in ("existing_cluster_id", "new_cluster", "libraries", "timeout_seconds"):
        if key in settings:
            task[key] = settings[key]
    return [task]


def validate_settings(settings: Mapping[str, Any], *, require_tasks: bool = False) -> JobSettings:
    """``settings`` checked as the service checks them (400 naming the problem), as a record."""
    tasks = normalize_tasks(settings)
    if require_tasks and not tasks:
        raise bad_request("At least one task is required")
    if len(tasks) > MAX_JOB_TASKS:  # the message is a guess: the limit is documented, not it
        raise bad_request(
            f"A job can have at most {MAX_JOB_TASKS} tasks; these settings have {len(tasks)}"
        )
    _check_fields(settings)
    keys: set[str] = set()
    explicit = bool(settings.get("tasks"))  # the 2.0 single-task shape names its task itself
    for task in tasks:
        key = check_task_key(task.get("task_key")) if explicit else str(task["task_key"])
        _check_task_fields(key, task)
        if key in keys:
            raise bad_request(f"Task key {key} is duplicated")
        keys.add(key)
        notebook = task.get("notebook_task")
        if notebook is not None and (
            not isinstance(notebook, dict) or not notebook.get("notebook_path")
        ):
            raise bad_request(f"Task {key}: notebook_task.notebook_path is required")
        timeout = task.get("timeout_seconds")
        if timeout is not None and (not isinstance(timeout, int) or timeout < 0):
            raise bad_request(f"Task {key}: timeout_seconds must be a non-negative integer")
    for task in tasks:
        for dep in task.get("depends_on") or []:  # a list: _check_task_fields
            if not isinstance(dep, dict) or not isinstance(dep.get("task_key"), str):
                raise bad_request(
                    f"Task {task['task_key']}: each depends_on entry must be an object with a "
                    f"task_key string, not {_quote(dep)}"
                )
            if dep["task_key"] not in keys:
                raise bad_request(
                    f"Task {task['task_key']} depends on {_quote(dep['task_key'])}, which is not "
                    "a task of the job"
                )
    check_acyclic(dependencies(tasks))
    check_git_source(settings, tasks)
    max_runs = settings.get("max_concurrent_runs")
    if max_runs is not None and (not isinstance(max_runs, int) or not 0 <= max_runs <= 1000):
        raise bad_request("max_concurrent_runs must be an integer between 0 and 1000")
    return cast("JobSettings", dict(settings))


def _quote(value: object) -> str:
    """A bounded repr of a value from the request, for a message."""
    text = repr(value)
    return text if len(text) <= 100 else text[:100] + "..."


def _check_fields(settings: Mapping[str, Any]) -> None:
    """Types and documented limits of the settings' own fields."""
    check_title(settings.get("name"), field="name")
    check_title(settings.get("run_name"), field="run_name")
    check_description(settings.get("description"))
    timeout = settings.get("timeout_seconds")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool)):
        raise bad_request("timeout_seconds must be a non-negative integer")
    if isinstance(timeout, int) and timeout < 0:
        raise bad_request("timeout_seconds must be a non-negative integer")
    for name in ("queue", "tags", "email_notifications", "notification_settings"):
        if settings.get(name) is not None and not isinstance(settings[name], dict):
            raise bad_request(f"Invalid {name}: expected an object")
    for name in ("parameters", "job_clusters", "environments"):
        if settings.get(name) is not None and not isinstance(settings[name], list):
            raise bad_request(f"Invalid {name}: expected a list")
    for param in settings.get("parameters") or []:
        if not isinstance(param, dict) or not isinstance(param.get("name"), str):
            raise bad_request("Invalid parameters: each needs a name")


def _check_task_fields(key: str, task: Mapping[str, Any]) -> None:
    depends = task.get("depends_on")
    if depends is not None and not isinstance(depends, list):
        raise bad_request(f"Task {key}: depends_on must be a list")
    notebook = task.get("notebook_task")
    if isinstance(notebook, dict):
        params = notebook.get("base_parameters")
        if params is not None and not isinstance(params, dict):
            raise bad_request(f"Task {key}: base_parameters must be an object")
        if not isinstance(notebook.get("notebook_path", ""), str):
            raise bad_request(f"Task {key}: notebook_task.notebook_path must be a string")
    cluster = task.get("existing_cluster_id")
    if cluster is not None and not isinstance(cluster, str):
        raise bad_request(f"Task {key}: existing_cluster_id must be a string")
    if task.get("run_if") is not None and task["run_if"] not in _RUN_IF:
        raise bad_request(f"Task {key}: invalid run_if {_quote(task['run_if'])}")


def job_parameter_values(
    settings: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[str, str]:
    definitions = settings.get("parameters") or []
    values = {str(p["name"]): str(p.get("default", "")) for p in definitions if "name" in p}
    unknown = sorted(set(overrides) - set(values))
    if unknown and definitions:
        raise bad_request(f"Job parameter(s) not defined by the job: {', '.join(unknown)}")
    values.update({str(k): str(v) for k, v in overrides.items()})
    return values


def task_parameters(
    task: Mapping[str, Any], notebook_params: Mapping[str, Any], job_params: Mapping[str, str]
) -> dict[str, str]:
    merged: dict[str, str] = {}
    notebook = task.get("notebook_task") or {}
    merged.update({str(k): str(v) for k, v in (notebook.get("base_parameters") or {}).items()})
    merged.update({str(k): str(v) for k, v in notebook_params.items()})
    merged.update(job_params)
    return merged


def resolve_references(value: str, lookup: Callable[[str], str | None]) -> str:
    """Replace ``{{name}}`` references that ``lookup`` knows; unknown ones stay as written."""

    def replace(match: re.Match[str]) -> str:
        found = lookup(match.group(1))
        return match.group(0) if found is None else found

    return _REFERENCE.sub(replace, value)


def reference_lookup(
    *,
    job_id: int | None,
    job_name: str,
    run_id: int,
    task_run_id: int,
    task_key: str,
    start_ms: int,
    job_params: Mapping[str, str],
) -> Callable[[str], str | None]:
    start = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
    known = {
        "job.id": str(job_id) if job_id is not None else "",
        "job.name": job_name,
        "job.run_id": str(run_id),
        "job.start_time.iso_date": start.date().isoformat(),
        "job.start_time.iso_datetime": start.isoformat(),
        "job.start_time.timestamp_ms": str(start_ms),
        "job.trigger.type": "one_time",
        "task.run_id": str(task_run_id),
        "task.name": task_key,
        "run_id": str(task_run_id),
        "parent_run_id": str(run_id),
        "job_id": str(job_id) if job_id is not None else "",
    }

    def lookup(name: str) -> str | None:
        if name.startswith("job.parameters."):
            return job_params.get(name[len("job.parameters.") :])
        return known.get(name)

    return lookup


def task_lookup(
    doc: RunRecord, task: TaskRunRecord, job_params: Mapping[str, str]
) -> Callable[[str], str | None]:
    """:func:`reference_lookup` for one task run of the run ``doc``."""
    return reference_lookup(
        job_id=doc.get("job_id"),
        job_name=str(doc.get("run_name", "")),
        run_id=int(doc["run_id"]),
        task_run_id=int(task["run_id"]),
        task_key=str(task["task_key"]),
        start_ms=int(doc.get("start_time", 0)),
        job_params=job_params,
    )


def public_view(doc: Mapping[str, Any], *, expand_tasks: bool = True) -> dict[str, Any]:
    """The run as the API shows it: private keys dropped, tasks optionally left out."""
    out = {k: copy.deepcopy(v) for k, v in doc.items() if not k.startswith("_")}
    if "tasks" in out:
        if expand_tasks:
            out["tasks"] = [
                {k: v for k, v in t.items() if not k.startswith("_")} for t in out["tasks"]
            ]
        else:
            del out["tasks"]
    return out


@dataclass(frozen=True)
class NewRun:
    """A run made from settings, before the scheduler has it: its record, and what only the
    scheduler keeps (the run's timeout, each task's resolved parameters)."""

    doc: RunRecord
    timeout_seconds: float | None
    task_parameters: dict[str, dict[str, str]]


def new_run(
    settings: Mapping[str, Any],
    *,
    job_id: int | None,
    run_name: str,
    run_type: str,
    notebook_params: Mapping[str, Any],
    job_params: Mapping[str, str],
    only: Sequence[str] | None,
    next_id: Callable[[], int],
    run_url: Callable[[int | None, int], str],
    creator: str,
) -> NewRun:
    """A PENDING run of ``settings`` (only the tasks of ``only``, when given), with its tasks'
    parameters merged and their references resolved."""
    specs = normalize_tasks(settings)
    if only is not None:
        unknown = sorted(set(only) - {str(s["task_key"]) for s in specs})
        if unknown:
            raise bad_request(f"Task(s) not in the job: {', '.join(unknown)}")
        specs = [
            {
                **s,
                "depends_on": [d for d in s.get("depends_on") or [] if d["task_key"] in only],
            }
            for s in specs
            if s["task_key"] in only
        ]
    run_id = next_id()
    start = now_ms()
    url = run_url(job_id, run_id)
    doc: RunRecord = {} if job_id is None else {"job_id": job_id}
    doc.update(
        {
            "run_id": run_id,
            "number_in_job": run_id,
            "original_attempt_run_id": run_id,
            "creator_user_name": creator,
            "run_name": run_name,
            "run_type": run_type,
            "trigger": "ONE_TIME",
            "start_time": start,
            "setup_duration": 0,
            "execution_duration": 0,
            "cleanup_duration": 0,
            "end_time": 0,
            "run_duration": 0,
            "run_page_url": url,
            "attempt_number": 0,
        }
    )
    git_source = settings.get("git_source")
    if isinstance(git_source, dict):  # its snapshot is the run's own, recorded when it starts
        doc["git_source"] = {
            k: copy.deepcopy(v) for k, v in git_source.items() if k != "git_snapshot"
        }
    tasks: list[TaskRunRecord] = []
    parameters: dict[str, dict[str, str]] = {}
    for spec in specs:
        task_run_id = next_id()
        task = cast("TaskRunRecord", dict(spec))  # libraries included: the run installs them
        environment = environment_dependencies(
            settings.get("environments"), spec.get("environment_key")
        )
        if environment:  # what the run installs of its environment, as the job named it
            cast("dict[str, Any]", task)[ENVIRONMENT_DEPENDENCIES] = list(environment)
        task.update(
            {
                "run_id": task_run_id,
                "attempt_number": 0,
                "start_time": 0,
                "end_time": 0,
                "setup_duration": 0,
                "execution_duration": 0,
                "cleanup_duration": 0,
                "run_page_url": run_url(job_id, task_run_id),
                "cluster_instance": {
                    "cluster_id": spec.get("existing_cluster_id") or "job-cluster"
                },
            }
        )
        lookup = reference_lookup(
            job_id=job_id,
            job_name=run_name,
            run_id=run_id,
            task_run_id=task_run_id,
            task_key=str(spec["task_key"]),
            start_ms=start,
            job_params=job_params,
        )
        params = task_parameters(spec, notebook_params, job_params)
        parameters[str(spec["task_key"])] = {
            k: resolve_references(v, lookup) for k, v in params.items()
        }
        set_state(task, "PENDING")
        tasks.append(task)
    doc["tasks"] = tasks
    set_state(doc, "PENDING")
    timeout = settings.get("timeout_seconds")
    return NewRun(doc, float(timeout) if timeout else None, parameters)
