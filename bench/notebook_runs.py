"""One notebook run on a local workspace through the SDK, as the benchmarks that time what a
notebook does (``bench.pip_runs``, ``bench.spark``, ``bench.spark_ops``) need it: upload the
source, submit it as a one-task run on the local cluster and wait, read its exit value."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service import jobs

LOCAL_CLUSTER = "0000-000000-local"


def upload_notebook(client: WorkspaceClient, path: str, source: str) -> None:
    """``source`` (a Databricks Python source notebook) at workspace ``path``, replaced."""
    from databricks.sdk.service.workspace import Language

    client.workspace.mkdirs(posixpath.dirname(path))
    client.workspace.upload(path, source.encode(), language=Language.PYTHON, overwrite=True)


def submit_notebook(client: WorkspaceClient, path: str, *, run_name: str) -> jobs.Run:
    """Run the notebook at ``path`` once (runs/submit, one task on the local cluster) and
    return the finished run."""
    from databricks.sdk.service import jobs

    task = jobs.SubmitTask(
        task_key="notebook",
        existing_cluster_id=LOCAL_CLUSTER,
        notebook_task=jobs.NotebookTask(notebook_path=path),
    )
    return client.jobs.submit(run_name=run_name, tasks=[task]).result()


def exit_value(client: WorkspaceClient, run: jobs.Run) -> tuple[str | None, str | None]:
    """What the run's notebook passed to ``dbutils.notebook.exit`` (None when it exited
    without a value) and the run's error (None when it ended without one)."""
    assert run.tasks and run.tasks[0].run_id is not None
    output = client.jobs.get_run_output(run.tasks[0].run_id)
    return (output.notebook_output.result if output.notebook_output else None), output.error
