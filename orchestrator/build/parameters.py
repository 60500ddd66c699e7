"""The values a build gives its run: the template's ``${...}`` placeholders (:func:`job_values`)
and the build's parameters (:func:`build_parameters`), which fill every
``{{job.parameters.<name>}}`` reference and reach every task as ``base_parameters``
(:mod:`orchestrator.job.build_job`). Names and paths come from :mod:`orchestrator.layout`.

The placeholders are the same for every build of a repo, so a template renders to the same
settings from one build to the next and ``plan`` can show them; what differs per build travels
as parameters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from orchestrator.config.context import BuildContext
from orchestrator.config.schema import BuildConfig
from orchestrator.errors import UsageError
from orchestrator.job.template import JsonValue
from orchestrator.layout import build_folder, build_prefix, job_name, repo_folder

__all__ = ["build_parameters", "declare_parameters", "job_values"]

_REFERENCE = re.compile(r"\{\{\s*job\.parameters\.([^}\s]+)\s*\}\}")


def job_values(
    *,
    config: BuildConfig,
    repo_name: str,
    cluster_id: str,
    entry_notebook: str,
) -> dict[str, JsonValue]:
    """The repo-level placeholder values. ``entry_notebook`` is where earlier versions kept the
    repo's entry notebook: a template written for it still renders, and its tasks run their
    notebooks directly."""
    timeout = max(1, int(config.timeouts.build))
    return {
        "job_name": job_name(repo_name),
        "repo_name": repo_name,
        "cluster_id": cluster_id,
        "build_root": config.build_root,
        "repo_folder": repo_folder(config.build_root, repo_name),
        "entry_notebook": entry_notebook,
        "storage_root": config.storage.cluster_root,
        "job_timeout_seconds": timeout + 600,
        "task_timeout_seconds": timeout,
    }


def build_parameters(*, config: BuildConfig, context: BuildContext) -> dict[str, str]:
    """The build's parameters (names match the template's ``parameters``).

    Layout: the build's notebooks in ``<build_root>/<repo>/<build_id>`` (``build_folder``; a
    notebook's working directory is its own folder there, so code beside it is found by a
    relative path, on Databricks as on the local workspace); its
    storage prefix ``<storage cluster root>/<repo>/<build_id>`` (``storage_dir``) holding
    ``data/`` (test data), ``tests/<folder>/`` (each test-scripts folder by its name),
    ``models/`` and ``results/`` (the notebooks write JUnit below it), as the cluster sees them.
    """
    folder = build_folder(config.build_root, context.repo_name, context.build_id)
    prefix = build_prefix(context.repo_name, context.build_id)
    storage = f"{config.storage.cluster_root.rstrip('/')}/{prefix}"
    return {
        "build_id": context.build_id,
        "build_number": context.build_number,
        "repo_name": context.repo_name,
        "branch": context.branch or "",
        "commit": context.commit or "",
        "pull_request": context.pull_request or "",
        "target": config.target,
        "build_folder": folder,
        "storage_dir": storage,
        "data_dir": f"{storage}/data",
        "tests_dir": f"{storage}/tests",
        "models_dir": f"{storage}/models",
        "results_dir": f"{storage}/results",
    }


def declare_parameters(
    settings: Mapping[str, Any], parameters: Mapping[str, str], *, source: str
) -> dict[str, Any]:
    """``settings`` with every build parameter declared as a job parameter: the template
    declares only those it gives a default of its own; the rest are added (default ``""``).

    A ``{{job.parameters.<name>}}`` reference to a parameter that is neither declared nor a
    build parameter is a UsageError here, never a run that fails on a literal ``{{...}}``.
    """
    declared = list(settings.get("parameters") or [])
    names = {p.get("name") for p in declared if isinstance(p, dict)}
    declared += [{"name": name, "default": ""} for name in parameters if name not in names]
    result = {**settings, "parameters": declared}
    names = {p.get("name") for p in declared if isinstance(p, dict)}
    problems = [
        f"job parameter {n!r} is sent by the build but not accepted by the job"
        for n in parameters
        if n not in names
    ]
    text = json.dumps(settings.get("tasks", []))
    unknown = sorted({m.group(1) for m in _REFERENCE.finditer(text)} - names)
    problems += [
        f"{{{{job.parameters.{name}}}}} refers to no job parameter (declared or built-in: "
        f"{', '.join(sorted(str(n) for n in names))})"
        for name in unknown
    ]
    if problems:
        raise UsageError("\n".join(f"{source}: {p}" for p in problems))
    return result
