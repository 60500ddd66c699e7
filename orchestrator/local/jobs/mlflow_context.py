"""The tags MLflow gives a run that a notebook of a job task starts on Databricks, for the
local workspace's kernels: its ``MLFLOW_RUN_CONTEXT`` (read by MLflow's
``SystemEnvironmentContext``, which every MLflow client since 1.x honours).

On Databricks the client reads them from the notebook's command context, through three
context providers whose tags merge in this order (``mlflow/tracking/context/registry.py``):

- ``DatabricksNotebookRunContext``: ``mlflow.databricks.notebookID``, ``notebookPath``,
  ``webappURL``, ``workspaceURL`` (and ``workspaceID``);
- ``DatabricksJobRunContext`` (after it, so its source wins): ``mlflow.source.type`` ``JOB``,
  ``mlflow.source.name`` ``jobs/<job id>/run/<task run id>``, ``mlflow.databricks.jobID``,
  ``jobRunID`` (the task's run: the context's ``idInJob``), ``jobType`` (the context's
  ``jobTaskType``);
- ``DatabricksClusterRunContext``: ``mlflow.databricks.cluster.id``.

The build finds a run's models by ``jobRunID`` (``adapters/databricks/model_registry.py``),
and Unity Catalog links a version to its notebook and job through ``notebookID`` and
``jobID``. Left out here: ``workspaceID`` (a local workspace has no workspace id), and the
tags whose value is unknown (a one-time run's job, a notebook outside the workspace tree).
``jobRunID`` is the task's run, not the job run: MLflow reads ``idInJob``, the task run's id
in a multi-task job (mlflow/mlflow#14266 asked to change that; the installed MLflow still
reads ``idInJob``).
``jobType`` ``NOTEBOOK`` for a notebook task is a guess: MLflow's change that added the tag
(mlflow/mlflow#2205) says a notebook job records the type ``notebook`` without giving its
exact spelling, and no documented list of the context's ``jobTaskType`` values was found.
"""

from __future__ import annotations

__all__ = ["mlflow_run_context"]


def mlflow_run_context(
    *,
    task_run_id: int,
    job_id: int | None,
    notebook_path: str | None,
    notebook_id: int | None,
    workspace_url: str | None,
    cluster_id: str | None,
) -> dict[str, str]:
    """The tags of an MLflow run a notebook task starts (see the module doc)."""
    tags = {"mlflow.source.type": "JOB", "mlflow.databricks.jobRunID": str(task_run_id)}
    if notebook_path:
        tags["mlflow.databricks.notebookPath"] = notebook_path
        tags["mlflow.source.name"] = notebook_path  # the notebook context's, when no job id
        tags["mlflow.databricks.jobType"] = "NOTEBOOK"
    if notebook_id is not None:
        tags["mlflow.databricks.notebookID"] = str(notebook_id)
    if job_id is not None:
        tags["mlflow.databricks.jobID"] = str(job_id)
        tags["mlflow.source.name"] = f"jobs/{job_id}/run/{task_run_id}"
    if workspace_url:
        tags["mlflow.databricks.webappURL"] = workspace_url
        tags["mlflow.databricks.workspaceURL"] = workspace_url
    if cluster_id:
        tags["mlflow.databricks.cluster.id"] = cluster_id
    return tags
