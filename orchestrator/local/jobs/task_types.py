"""Which task types the local workspace runs, checked when a job is created or changed and
when a run is submitted: a task that could only fail at run time is refused then, with the
reason, never accepted and failed later.

Runs here: ``notebook_task`` (workspace notebooks), ``spark_python_task`` (a Python file in the
workspace, DBFS or a volume; ``parameters`` are its ``sys.argv``) and ``python_wheel_task`` (an
entry point of a wheel among the task's ``libraries``), all three in a kernel on this machine
(:mod:`.python_tasks`); ``condition_task`` and ``run_job_task``, done by the jobs engine
(:mod:`.control_tasks`; the job a ``run_job_task`` names must exist, which the Jobs API
checks). A dependency's ``outcome`` must be ``"true"`` or ``"false"`` and name a condition
task. Refused, each with why: tasks from Git (the local workspace cannot clone), ``sql_task``
(it needs a SQL warehouse, which this workspace does not have), ``for_each_task``, JVM tasks
(``spark_jar_task``, ``spark_submit_task``), ``dbt_task`` and ``pipeline_task``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.local.state.api_error import bad_request

__all__ = ["RUNNABLE", "check_task_types", "task_type"]

#: the task types tasks of a run can have here
RUNNABLE = (
    "notebook_task",
    "spark_python_task",
    "python_wheel_task",
    "condition_task",
    "run_job_task",
)
_OPS = (
    "EQUAL_TO",
    "NOT_EQUAL",
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUAL",
    "LESS_THAN",
    "LESS_THAN_OR_EQUAL",
)

_REFUSED = {
    "sql_task": "it needs a SQL warehouse, and the local workspace has none",
    "for_each_task": "the local workspace does not run for each tasks",
    "spark_jar_task": "it needs a JVM cluster",
    "spark_submit_task": "it needs a JVM cluster",
    "dbt_task": "the local workspace does not run dbt",
    "pipeline_task": "the local workspace has no Lakeflow pipelines",
}
_PYTHON_FILE_PREFIXES = ("dbfs:/", "/Workspace/", "/Volumes/", "/")


def task_type(task: Mapping[str, Any]) -> str | None:
    """The ``*_task`` field a task has, when it has exactly one."""
    kinds = [k for k in task if k.endswith("_task") and task[k] is not None]
    return kinds[0] if len(kinds) == 1 else None


def check_task_types(tasks: Iterable[Mapping[str, Any]], *, git_source: bool = False) -> None:
    """400 for the first task the local workspace could not run, naming it and why."""
    tasks = list(tasks)
    _check_outcomes(tasks)
    for task in tasks:
        key = task.get("task_key", "")
        kinds = [k for k in task if k.endswith("_task") and task[k] is not None]
        if len(kinds) > 1:
            raise bad_request(f"Task {key} has more than one task type: {', '.join(sorted(kinds))}")
        if not kinds:
            continue
        kind = kinds[0]
        if kind in _REFUSED:
            raise bad_request(
                f"Task {key}: {kind} is not supported by the local workspace: {_REFUSED[kind]}"
            )
        if kind not in RUNNABLE:
            raise bad_request(f"Task {key}: unknown task type {kind}")
        spec = task[kind]
        if not isinstance(spec, dict):
            raise bad_request(f"Task {key}: {kind} must be an object")
        source = str(spec.get("source") or ("GIT" if git_source else "WORKSPACE")).upper()
        if kind == "spark_python_task":
            _check_python_file(str(key), spec, source)
        elif kind == "python_wheel_task":
            _check_wheel(str(key), task, spec)
        elif kind == "condition_task":
            if spec.get("op") not in _OPS:
                raise bad_request(f"Task {key}: condition_task.op must be one of {', '.join(_OPS)}")
            for side in ("left", "right"):
                if not isinstance(spec.get(side), str):
                    raise bad_request(f"Task {key}: condition_task.{side} is required")
        elif kind == "run_job_task":
            job_id = spec.get("job_id")
            if not isinstance(job_id, int) or isinstance(job_id, bool):
                raise bad_request(f"Task {key}: run_job_task.job_id is required")
            params = spec.get("job_parameters")
            if params is not None and not isinstance(params, dict):
                raise bad_request(f"Task {key}: run_job_task.job_parameters must be an object")


def _check_outcomes(tasks: list[Mapping[str, Any]]) -> None:
    """A dependency on an outcome names a condition task and ``"true"`` or ``"false"``."""
    conditions = {t.get("task_key") for t in tasks if t.get("condition_task") is not None}
    for task in tasks:
        for dep in task.get("depends_on") or []:
            if not isinstance(dep, dict) or dep.get("outcome") is None:
                continue
            if dep["outcome"] not in ("true", "false"):
                raise bad_request(f'Task {task.get("task_key")}: outcome must be "true" or "false"')
            if dep.get("task_key") not in conditions:
                raise bad_request(
                    f"Task {task.get('task_key')} depends on an outcome of "
                    f"{dep.get('task_key')}, which is not a condition task"
                )


def _check_python_file(key: str, spec: Mapping[str, Any], source: str) -> None:
    path = spec.get("python_file")
    if not isinstance(path, str) or not path:
        raise bad_request(f"Task {key}: spark_python_task.python_file is required")
    if source == "GIT":
        raise bad_request(
            f"Task {key}: spark_python_task from a Git source is not supported by the local "
            "workspace: it cannot clone repositories (give the file's workspace, DBFS or "
            "volume path)"
        )
    if not path.startswith(_PYTHON_FILE_PREFIXES):
        raise bad_request(
            f"Task {key}: spark_python_task.python_file must be a workspace (/Workspace/...), "
            f"DBFS (dbfs:/...) or volume (/Volumes/...) path, not {path[:200]!r}"
        )
    _check_strings(key, "spark_python_task.parameters", spec.get("parameters"))


def _check_wheel(key: str, task: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    for field in ("package_name", "entry_point"):
        if not isinstance(spec.get(field), str) or not spec[field]:
            raise bad_request(f"Task {key}: python_wheel_task.{field} is required")
    if spec.get("parameters") is not None and spec.get("named_parameters") is not None:
        raise bad_request(
            f"Task {key}: python_wheel_task takes parameters or named_parameters, not both"
        )
    _check_strings(key, "python_wheel_task.parameters", spec.get("parameters"))
    named = spec.get("named_parameters")
    if named is not None and not isinstance(named, dict):
        raise bad_request(f"Task {key}: python_wheel_task.named_parameters must be an object")
    libraries = task.get("libraries") or []
    if task.get("environment_key"):
        return  # serverless: the wheel is one of its environment's dependencies
    if not any(isinstance(lib, dict) and ("whl" in lib or "pypi" in lib) for lib in libraries):
        raise bad_request(
            f"Task {key}: python_wheel_task needs its wheel among the task's libraries "
            "(a whl or pypi library) or its environment's dependencies: the local workspace "
            "has no cluster libraries"
        )


def _check_strings(key: str, field: str, value: Any) -> None:
    if value is not None and (
        not isinstance(value, list) or not all(isinstance(v, str) for v in value)
    ):
        raise bad_request(f"Task {key}: {field} must be a list of strings")
