"""The issue's flows with real kernels, through databricks-sdk: a cluster made from the SDK's
selectors runs a job; a ``spark_python_task`` (a workspace file and a DBFS file) and a
``python_wheel_task`` (a wheel among the task's libraries) go green; a failed notebook task is
repaired after its notebook is fixed."""

from __future__ import annotations

import base64
import io
import zipfile

import pytest
from databricks.sdk.service import compute, jobs
from databricks.sdk.service import workspace as ws_service

from orchestrator.local.server import LocalWorkspace

pytestmark = pytest.mark.slow

ME = "local@localhost"


def _source(code: str) -> str:
    return base64.b64encode(f"# Databricks notebook source\n{code}\n".encode()).decode()


def _wheel() -> bytes:
    """A minimal wheel of package ``greet`` with the entry point ``main``."""
    files = {
        "greet/__init__.py": (
            "import sys\n"
            "def main():\n"
            "    print('hello from the wheel', sys.argv[1:])\n"
            "    if '--fail=yes' in sys.argv:\n"
            "        sys.exit(3)\n"
        ),
        "greet-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: greet\nVersion: 1.0\n",
        "greet-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        "greet-1.0.dist-info/entry_points.txt": "[console_scripts]\nmain = greet:main\n",
    }
    files["greet-1.0.dist-info/RECORD"] = "".join(f"{name},,\n" for name in files) + (
        "greet-1.0.dist-info/RECORD,,\n"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()


def test_a_cluster_from_the_sdks_selectors_runs_a_job(client, workspace: LocalWorkspace) -> None:  # type: ignore[no-untyped-def]
    me = client.current_user.me().user_name
    path = f"/Users/{me}/demo/nb"
    client.workspace.mkdirs(f"/Users/{me}/demo")
    client.workspace.import_(
        path,
        content=_source("import os\ndbutils.notebook.exit(os.environ.get('STAGE', ''))"),
        language=ws_service.Language.PYTHON,
    )
    cluster = client.clusters.create(
        cluster_name="ci",
        spark_version=client.clusters.select_spark_version(latest=True, long_term_support=True),
        node_type_id=client.clusters.select_node_type(local_disk=True),
        num_workers=1,
        spark_env_vars={"STAGE": "ci"},
    ).result()
    assert cluster.state == compute.State.RUNNING
    task = jobs.Task(
        task_key="nb",
        existing_cluster_id=cluster.cluster_id,
        notebook_task=jobs.NotebookTask(notebook_path=path),
    )
    run = client.jobs.run_now(client.jobs.create(name="on-cluster", tasks=[task]).job_id).result()
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    output = client.jobs.get_run_output(run.tasks[0].run_id)
    assert output.notebook_output.result == "ci"  # the cluster's spark_env_vars reach the task


def test_python_file_and_wheel_tasks_go_green(client, workspace: LocalWorkspace) -> None:  # type: ignore[no-untyped-def]
    client.workspace.mkdirs("/Shared/py")
    client.workspace.upload(
        "/Shared/py/main.py",
        io.BytesIO(b"import sys, helper\nprint('args', sys.argv[1:], helper.VALUE)\n"),
        format=ws_service.ImportFormat.AUTO,
    )
    client.workspace.upload(
        "/Shared/py/helper.py", io.BytesIO(b"VALUE = 42\n"), format=ws_service.ImportFormat.AUTO
    )
    client.dbfs.upload("/scripts/fail.py", io.BytesIO(b"import sys\nsys.exit(2)\n"))
    client.dbfs.upload("/scripts/ok.py", io.BytesIO(b"import sys\nsys.exit(0)\n"))
    client.dbfs.upload("/wheels/greet-1.0-py3-none-any.whl", io.BytesIO(_wheel()))
    wheel = [compute.Library(whl="dbfs:/wheels/greet-1.0-py3-none-any.whl")]
    tasks = [
        jobs.SubmitTask(
            task_key="file",
            spark_python_task=jobs.SparkPythonTask(
                python_file="/Workspace/Shared/py/main.py", parameters=["a", "b"]
            ),
        ),
        jobs.SubmitTask(
            task_key="dbfs_ok",
            spark_python_task=jobs.SparkPythonTask(python_file="dbfs:/scripts/ok.py"),
        ),
        jobs.SubmitTask(
            task_key="wheel",
            python_wheel_task=jobs.PythonWheelTask(
                package_name="greet", entry_point="main", named_parameters={"name": "ci"}
            ),
            libraries=wheel,
        ),
    ]
    run = client.jobs.submit(run_name="python", tasks=tasks).result()
    states = {t.task_key: t.state.result_state for t in run.tasks}
    assert set(states.values()) == {jobs.RunResultState.SUCCESS}, states
    by_key = {t.task_key: t.run_id for t in run.tasks}
    assert "args ['a', 'b'] 42" in client.jobs.get_run_output(by_key["file"]).logs
    wheel_output = client.jobs.get_run_output(by_key["wheel"])
    assert "hello from the wheel ['--name=ci']" in wheel_output.logs
    assert wheel_output.notebook_output is None
    failing = client.jobs.submit(
        run_name="fails",
        tasks=[
            jobs.SubmitTask(
                task_key="exit2",
                spark_python_task=jobs.SparkPythonTask(python_file="dbfs:/scripts/fail.py"),
            )
        ],
    ).result()
    assert failing.state.result_state == jobs.RunResultState.FAILED
    assert "SystemExit" in (client.jobs.get_run_output(failing.tasks[0].run_id).error or "")


def test_a_repaired_task_goes_green_once_its_notebook_is_fixed(
    client, workspace: LocalWorkspace
) -> None:  # type: ignore[no-untyped-def]
    client.workspace.mkdirs("/Shared/r")
    for name, code in (
        ("first", "x = 1"),
        ("flaky", "raise ValueError('broken')"),
        ("last", "y = 2"),
    ):
        client.workspace.import_(
            f"/Shared/r/{name}", content=_source(code), language=ws_service.Language.PYTHON
        )
    tasks = [
        jobs.Task(
            task_key="first", notebook_task=jobs.NotebookTask(notebook_path="/Shared/r/first")
        ),
        jobs.Task(
            task_key="flaky",
            depends_on=[jobs.TaskDependency(task_key="first")],
            notebook_task=jobs.NotebookTask(notebook_path="/Shared/r/flaky"),
        ),
        jobs.Task(
            task_key="last",
            depends_on=[jobs.TaskDependency(task_key="flaky")],
            notebook_task=jobs.NotebookTask(notebook_path="/Shared/r/last"),
        ),
    ]
    job_id = client.jobs.create(name="repair me", tasks=tasks).job_id
    run = client.jobs.run_now(job_id).result()
    assert run.state.result_state == jobs.RunResultState.FAILED
    client.workspace.import_(
        "/Shared/r/flaky",
        content=_source("z = 3"),
        language=ws_service.Language.PYTHON,
        overwrite=True,
    )
    repaired = client.jobs.repair_run(run.run_id, rerun_all_failed_tasks=True).result()
    assert repaired.state.result_state == jobs.RunResultState.SUCCESS
    assert {t.task_key: t.state.result_state.value for t in repaired.tasks} == {
        "first": "SUCCESS",
        "flaky": "SUCCESS",
        "last": "SUCCESS",
    }
    history = client.jobs.get_run(run.run_id, include_history=True).repair_history
    assert [h.type.value for h in history] == ["ORIGINAL", "REPAIR"]
