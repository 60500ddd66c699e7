"""The values a build gives its job: the template's repo-level placeholders and the per-build job
parameters sent with run-now.

The job is shared by every build of a repo, so the template may only use repo-level values
(:func:`job_values`); per-build values travel as job parameters at run-now time
(:func:`build_parameters`). Names and paths come from :mod:`orchestrator.layout`.
"""

from __future__ import annotations

from orchestrator.config.context import BuildContext
from orchestrator.config.schema import BuildConfig
from orchestrator.job.template import JsonValue
from orchestrator.layout import build_folder, build_prefix, job_name, repo_folder

__all__ = ["build_parameters", "job_values"]


def job_values(
    *,
    config: BuildConfig,
    repo_name: str,
    cluster_id: str,
    entry_notebook: str,
) -> dict[str, JsonValue]:
    """The repo-level placeholder values: identical for every build of the repo, so the job's
    settings do not change from one build to the next (and concurrent builds never reset it).
    """
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
    """The per-build job parameters for run-now (names match the template's ``parameters``).

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
