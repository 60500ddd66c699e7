"""The MLflow run tags a notebook task's runs get, as MLflow's notebook, job and cluster
contexts give them on Databricks (a build finds its models by them; the end-to-end check is
``tests/test_uc_registration.py``'s build)."""

from __future__ import annotations

import pytest

from orchestrator.local.jobs.mlflow_context import mlflow_run_context

pytestmark = pytest.mark.fast


def test_a_job_notebook_run_is_tagged_with_its_job_task_run_notebook_and_cluster() -> None:
    tags = mlflow_run_context(
        task_run_id=812,
        job_id=5,
        notebook_path="/Builds/sample/b1/databricks/train",
        notebook_id=1234,
        workspace_url="http://127.0.0.1:8080",
        cluster_id="0101-abc",
    )
    assert tags == {
        "mlflow.source.type": "JOB",
        "mlflow.source.name": "jobs/5/run/812",
        "mlflow.databricks.jobID": "5",
        "mlflow.databricks.jobRunID": "812",
        "mlflow.databricks.jobType": "NOTEBOOK",
        "mlflow.databricks.notebookPath": "/Builds/sample/b1/databricks/train",
        "mlflow.databricks.notebookID": "1234",
        "mlflow.databricks.webappURL": "http://127.0.0.1:8080",
        "mlflow.databricks.workspaceURL": "http://127.0.0.1:8080",
        "mlflow.databricks.cluster.id": "0101-abc",
    }


def test_what_is_unknown_is_left_out_rather_than_made_up() -> None:
    tags = mlflow_run_context(
        task_run_id=9,
        job_id=None,
        notebook_path=None,
        notebook_id=None,
        workspace_url=None,
        cluster_id="",
    )
    assert tags == {"mlflow.source.type": "JOB", "mlflow.databricks.jobRunID": "9"}
