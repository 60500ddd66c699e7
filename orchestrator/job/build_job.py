"""One build as one job of its own: the rendered job settings turned into the settings of the
build's job (``jobs/create``), whose one run (``run-now``) runs the build's own notebooks.

Why a job per build, not a job per repo nor a one-time run (docs/architecture.md has the
evidence): every task runs the user's notebook itself, so the run's ``runs/get-output`` and
``runs/export`` show the user's error and cells; no build changes settings another build's run
depends on (``jobs/reset`` replaces all settings, and ``timeout_seconds`` applies to active
runs); each task takes one execution context; a job takes ``git_source``; and saved jobs show in
the Jobs UI, where one-time runs (``runs/submit``) do not.

The conversion:

* the job is named ``build-<repo> <build_id>`` (:func:`orchestrator.layout.build_job_name`) and
  tagged ``repo``, ``build`` and ``managed-by``, so the Jobs UI lists a repo's builds side by side;
* a task's ``notebook_path`` relative to the build (``tests/run_pytest``) becomes
  ``<build_folder>/tests/run_pytest``; a task that runs the old entry notebook (its
  ``notebook_path`` is ``${entry_notebook}`` and a ``notebook`` parameter names the notebook)
  runs that notebook directly, its ``arg.<name>`` parameters passed as ``<name>`` and its
  ``notebook_timeout_seconds`` as the task's ``timeout_seconds`` when the task has none;
* the build's parameters (``build_id``, ``branch``, ``results_dir``...) reach every notebook
  task as ``base_parameters``, below the task's own, and every ``{{job.parameters.<name>}}``
  reference is filled in. The job declares no job parameters: Databricks pushes job parameters
  down to every task and lets them override a task's own parameter of the same name, so a
  task's ``results_dir`` of ``{{job.parameters.results_dir}}/{{task.name}}`` would lose to the
  build's ``results_dir``. A job per build needs no per-run values;
* what would start the job on its own (``schedule``, ``trigger``, ``continuous``) is dropped;
* a cluster runs at most 150 execution contexts at once ("Too many execution contexts are open
  right now. (Limit set to 150)"), and each notebook task takes one (plus one for each notebook
  it runs with ``dbutils.notebook.run`` while it runs). So when more than :data:`LANES`
  independent tasks (no ``depends_on`` anywhere in the job) share one existing cluster, they are
  put in :data:`LANES` lanes: each task depends on the one :data:`LANES` places before it, with
  ``run_if: ALL_DONE`` so a failure holds nothing back. The job's own settings bound the
  concurrency (no batching by the orchestrator, no ``for_each_task``, whose tasks are all one
  notebook), and the Jobs UI still shows every task.
"""

from __future__ import annotations

import copy
import posixpath
import re
from collections.abc import Collection, Mapping
from typing import Any

from orchestrator.errors import UsageError

__all__ = ["DROPPED_FIELDS", "LANES", "build_job"]

#: tasks a build's job runs at once on one cluster, at most: under the 150 execution contexts
#: of a cluster, leaving room for the notebooks they start
LANES = 100

#: what a build's job never has: what would run it on its own, and job parameters (above)
DROPPED_FIELDS = frozenset({"schedule", "trigger", "triggers", "continuous", "parameters"})
_REFERENCE = re.compile(r"\{\{\s*job\.parameters\.([^}\s]+)\s*\}\}")
_ENTRY_ONLY = frozenset({"notebook", "notebook_timeout_seconds"})


def build_job(
    settings: Mapping[str, Any],
    *,
    name: str,
    tags: Mapping[str, str],
    build_folder: str,
    parameters: Mapping[str, str],
    tasks: Collection[str] | None = None,
    entry_notebook: str | None = None,
) -> dict[str, Any]:
    """The settings of one build's job (the body of ``jobs/create``).

    ``parameters`` are the build's values (the template's declared parameters' defaults filled
    in below them); ``tasks`` the task keys to run (the others are dropped, and so are the
    dependencies on them); ``entry_notebook`` the path of the old entry notebook, recognized in
    a task's ``notebook_path``.
    """
    values = _parameter_values(settings, parameters)
    keep = set(tasks) if tasks is not None else None
    job = {k: copy.deepcopy(v) for k, v in settings.items() if k not in DROPPED_FIELDS}
    job["name"] = name
    job["tags"] = {**(settings.get("tags") or {}), **tags}
    job["tasks"] = [
        _task(task, build_folder=build_folder, values=values, keep=keep, entry=entry_notebook)
        for task in settings.get("tasks") or []
        if isinstance(task, Mapping) and (keep is None or task.get("task_key") in keep)
    ]
    filled: dict[str, Any] = _fill(job, values)
    _in_lanes(filled["tasks"])
    return filled


def _in_lanes(tasks: list[dict[str, Any]]) -> None:
    """At most :data:`LANES` of a job's independent tasks at once per cluster (see above)."""
    if len(tasks) <= LANES or any(t.get("depends_on") for t in tasks):
        return
    by_cluster: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        cluster = task.get("existing_cluster_id")
        if isinstance(cluster, str):
            by_cluster.setdefault(cluster, []).append(task)
    for same in by_cluster.values():
        for index in range(LANES, len(same)):
            same[index]["depends_on"] = [{"task_key": same[index - LANES]["task_key"]}]
            same[index]["run_if"] = "ALL_DONE"


def _parameter_values(settings: Mapping[str, Any], parameters: Mapping[str, str]) -> dict[str, str]:
    """The job parameters a run would have: the declared defaults, then the build's values."""
    values = {
        str(p["name"]): str(p.get("default", ""))
        for p in settings.get("parameters") or []
        if isinstance(p, Mapping) and "name" in p
    }
    values.update(parameters)
    return values


def _task(
    task: Mapping[str, Any],
    *,
    build_folder: str,
    values: Mapping[str, str],
    keep: set[str] | None,
    entry: str | None,
) -> dict[str, Any]:
    out = copy.deepcopy(dict(task))
    key = str(out.get("task_key"))
    if keep is not None and out.get("depends_on"):
        out["depends_on"] = [d for d in out["depends_on"] if d.get("task_key") in keep]
        if not out["depends_on"]:
            del out["depends_on"]
    notebook = out.get("notebook_task")
    if isinstance(notebook, dict):
        own = notebook.get("base_parameters") or {}
        limit = str(own.get("notebook_timeout_seconds", "")) if isinstance(own, dict) else ""
        out["notebook_task"] = _notebook_task(key, notebook, build_folder, values, entry)
        legacy = entry is not None and notebook.get("notebook_path") == entry
        if legacy and limit.isdigit() and int(limit) > 0 and "timeout_seconds" not in out:
            out["timeout_seconds"] = int(limit)
    return out


def _notebook_task(
    key: str,
    notebook: Mapping[str, Any],
    build_folder: str,
    values: Mapping[str, str],
    entry: str | None,
) -> dict[str, Any]:
    out = dict(notebook)
    own = {str(k): v for k, v in (notebook.get("base_parameters") or {}).items()}
    path = str(notebook.get("notebook_path") or "")
    source = str(notebook.get("source") or "WORKSPACE").upper()
    if entry is not None and path == entry:
        target = own.get("notebook")
        if not isinstance(target, str) or not target.strip("/"):
            raise UsageError(
                f"task {key}: it runs the entry notebook, whose `notebook` parameter names no "
                "notebook to run"
            )
        path = target
        own = {k[len("arg.") :]: v for k, v in own.items() if k.startswith("arg.")}
    else:
        own = {k: v for k, v in own.items() if k not in _ENTRY_ONLY}
    if source == "WORKSPACE" and not path.startswith("/"):
        path = posixpath.normpath(posixpath.join(build_folder, path))
        if not path.startswith(build_folder.rstrip("/") + "/"):
            raise UsageError(
                f"task {key}: notebook_path {notebook['notebook_path']!r} leaves the build"
            )
    out["notebook_path"] = path
    out["base_parameters"] = {**values, **own}
    return out


def _fill(value: Any, values: Mapping[str, str]) -> Any:
    """Every ``{{job.parameters.<name>}}`` in strings replaced by the build's value."""
    if isinstance(value, str):
        return _REFERENCE.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    return value
