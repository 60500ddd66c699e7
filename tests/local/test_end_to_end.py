"""The local workspace end to end, as a Databricks client sees it: the sample notebooks imported
through databricks-sdk, a job with both test notebooks in parallel, real kernels, JUnit written,
outputs and exports read back; failures, cancel, timeouts, faults and restarts."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import ImportFormat, Language

from orchestrator.local.server import FaultSettings, start_local_workspace
from tests.conftest import TOKEN, sdk_client

pytestmark = pytest.mark.slow  # real kernels (tests/tiers.py)

REPO = Path(__file__).resolve().parents[2]
CLUSTER = "0000-000000-local"
WAIT = timedelta(seconds=180)


def upload_tree(w, local: Path, remote: str) -> None:  # type: ignore[no-untyped-def]
    """Notebooks (Databricks source header) become notebooks, everything else files.

    ``workspace.import_`` (JSON) rather than ``workspace.upload``: the SDK does not retry its
    multipart uploads (form data is not a seekable stream), so they fail on a 429 or 503."""
    w.workspace.mkdirs(remote)
    for path in sorted(local.rglob("*")):
        rel = path.relative_to(local).as_posix()
        if "__pycache__" in rel or path.name.startswith("."):
            continue
        target = f"{remote}/{rel}"
        if path.is_dir():
            w.workspace.mkdirs(target)
        else:
            w.workspace.import_(
                target,
                content=base64.b64encode(path.read_bytes()).decode(),
                format=ImportFormat.AUTO,
                overwrite=True,
            )


def notebook_task(key: str, path: str, params: dict[str, str], timeout: int = 0) -> jobs.Task:
    return jobs.Task(
        task_key=key,
        existing_cluster_id=CLUSTER,
        notebook_task=jobs.NotebookTask(notebook_path=path, base_parameters=params),
        timeout_seconds=timeout or None,
    )


def single_notebook(w, path: str, source: str, language: Language = Language.PYTHON) -> None:  # type: ignore[no-untyped-def]
    w.workspace.mkdirs(path.rsplit("/", 1)[0])
    w.workspace.upload(path, source.encode(), language=language, overwrite=True)


@pytest.fixture
def sample(client, tmp_path: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    upload_tree(client, REPO / "databricks", "/Shared/builds/sample/1")
    results = tmp_path / "results"
    return {"root": "/Shared/builds/sample/1", "results": str(results)}


def test_sample_test_notebooks_pass_and_write_junit(client, sample: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    root, results = sample["root"], sample["results"]
    job = client.jobs.create(
        name="build-sample",
        tasks=[
            notebook_task("pytest", f"{root}/tests/run_pytest", {"results_dir": results}),
            notebook_task(
                "testthat",
                f"{root}/tests/run_testthat",
                {"results_dir": results, "model_path": str(REPO / "models" / "churn_model.rds")},
            ),
        ],
    )
    run = client.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
    by_key = {t.task_key: t for t in run.tasks}
    for key in ("pytest", "testthat"):
        assert by_key[key].state.result_state == jobs.RunResultState.SUCCESS, (
            client.jobs.get_run_output(by_key[key].run_id).error
        )
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    # both test notebooks ran at the same time
    assert by_key["pytest"].start_time < by_key["testthat"].end_time
    assert by_key["testthat"].start_time < by_key["pytest"].end_time
    pytest_xml = (Path(results) / "run_pytest.xml").read_text()
    testthat_xml = (Path(results) / "run_testthat.xml").read_text()
    assert 'tests="8"' in pytest_xml and 'failures="0"' in pytest_xml
    assert 'tests="10"' in testthat_xml
    out = client.jobs.get_run_output(by_key["pytest"].run_id)
    assert '"tests": 8' in out.notebook_output.result
    export = client.jobs.export_run(by_key["testthat"].run_id)
    assert export.views and "testthat" in export.views[0].content


def test_failing_cell_is_named_in_the_output(client) -> None:  # type: ignore[no-untyped-def]
    single_notebook(
        client,
        "/t/fails",
        "# Databricks notebook source\nx = 1\n\n# COMMAND ----------\n\n"
        "y = 2\n\n# COMMAND ----------\n\n1 / 0\n",
    )
    run = client.jobs.submit(
        run_name="f",
        tasks=[
            jobs.SubmitTask(
                task_key="a",
                existing_cluster_id=CLUSTER,
                notebook_task=jobs.NotebookTask(notebook_path="/t/fails"),
            )
        ],
    ).result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.FAILED
    out = client.jobs.get_run_output(run.tasks[0].run_id)
    assert out.error == "ZeroDivisionError: division by zero"  # as Databricks gives it
    assert out.error_trace.startswith("Cell 3 of /t/fails")  # the failing cell's traceback
    assert "ZeroDivisionError" in out.error_trace and "1 / 0" in out.error_trace
    assert out.logs is None  # not returned for notebook tasks


def test_r_notebook_failure_and_widget_parameters(client) -> None:  # type: ignore[no-untyped-def]
    single_notebook(
        client,
        "/t/r_nb",
        "# Databricks notebook source\nx <- dbutils.widgets.get('who')\n\n"
        "# COMMAND ----------\n\n"
        "if (x == 'bad') stop('boom from R') else dbutils.notebook.exit(paste('hi', x))\n",
        Language.R,
    )
    task = jobs.SubmitTask(
        task_key="a",
        existing_cluster_id=CLUSTER,
        notebook_task=jobs.NotebookTask(notebook_path="/t/r_nb", base_parameters={"who": "ana"}),
    )
    ok = client.jobs.submit(run_name="r", tasks=[task]).result(timeout=WAIT)
    assert client.jobs.get_run_output(ok.tasks[0].run_id).notebook_output.result == "hi ana"
    task.notebook_task.base_parameters = {"who": "bad"}
    bad = client.jobs.submit(run_name="r", tasks=[task]).result(timeout=WAIT)
    assert bad.state.result_state == jobs.RunResultState.FAILED
    assert "boom from R" in client.jobs.get_run_output(bad.tasks[0].run_id).error


def _sleeper(pid_file: Path) -> str:
    """A notebook that writes its kernel's pid to ``pid_file`` and sleeps."""
    return (
        "# Databricks notebook source\nimport os, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n"
    )


def _alive(pid_file: Path) -> bool:
    try:
        return psutil.Process(int(pid_file.read_text())).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, OSError, ValueError):
        return False


def test_cancel_ends_run_within_2s_and_kills_the_kernel(client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pid_file = tmp_path / "kernel.pid"
    single_notebook(client, "/t/slow", _sleeper(pid_file))
    waiter = client.jobs.submit(
        run_name="slow",
        tasks=[
            jobs.SubmitTask(
                task_key="a",
                existing_cluster_id=CLUSTER,
                notebook_task=jobs.NotebookTask(notebook_path="/t/slow"),
            )
        ],
    )
    deadline = time.monotonic() + 60
    while (
        client.jobs.get_run(waiter.run_id).state.life_cycle_state != jobs.RunLifeCycleState.RUNNING
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    while not _alive(pid_file):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    started = time.monotonic()
    client.jobs.cancel_run(waiter.run_id)
    while (
        client.jobs.get_run(waiter.run_id).state.life_cycle_state
        != jobs.RunLifeCycleState.TERMINATED
    ):
        # ended by the cancel, not by the notebook (it sleeps 1000 s): bench/cancel.py times it
        assert time.monotonic() - started < 30
        time.sleep(0.05)
    run = client.jobs.get_run(waiter.run_id)
    assert run.state.result_state == jobs.RunResultState.CANCELED
    assert not _alive(pid_file)


def test_task_timeout_ends_as_timedout(client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pid_file = tmp_path / "kernel.pid"
    single_notebook(client, "/t/slow2", _sleeper(pid_file))
    job = client.jobs.create(name="to", tasks=[notebook_task("a", "/t/slow2", {}, timeout=3)])
    run = client.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
    assert run.tasks[0].state.result_state == jobs.RunResultState.TIMEDOUT
    assert pid_file.exists() and not _alive(pid_file)


def test_flows_pass_with_injected_429_and_503(tmp_path: Path) -> None:
    faults = FaultSettings(
        p429=0.05, p429_retry_after=0.05, p503=0.1, retry_after_seconds=0, seed=7
    )
    with start_local_workspace(tmp_path / "s", token=TOKEN, faults=faults) as ws:
        w = sdk_client(ws)
        upload_tree(w, REPO / "databricks" / "tests", "/f/tests")
        results = tmp_path / "results"
        job = w.jobs.create(
            name="faulty",
            tasks=[
                notebook_task(
                    "pytest",
                    "/f/tests/run_pytest",
                    {"results_dir": str(results), "code_dir": str(REPO / "databricks")},
                )
            ],
        )
        run = w.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
        assert run.state.result_state == jobs.RunResultState.SUCCESS
        assert (results / "run_pytest.xml").exists()
        assert len(list(w.jobs.list_runs(job_id=job.job_id))) == 1
        injected = ws.faults.snapshot()["injected"]
        assert (
            injected.get("503", 0) > 0
            and injected.get("429", 0) + injected.get("429-retry-after", 0) > 0
        )


def serve(state: Path) -> tuple[subprocess.Popen[str], str]:
    """``orchestrator local serve`` in another process; its URL from the first line it prints."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "local",
            "serve",
            "--port",
            "0",
            "--state-dir",
            str(state),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "DATABRICKS_TOKEN": TOKEN},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, line.split(" on ", 1)[1].split(" ", 1)[0]


def test_serve_command_for_a_client_in_another_process(tmp_path: Path) -> None:
    env = {**os.environ, "DATABRICKS_TOKEN": TOKEN}
    proc, url = serve(tmp_path / "state")
    try:
        client_code = (
            "from databricks.sdk import WorkspaceClient\n"
            "w = WorkspaceClient()\n"
            "w.workspace.mkdirs('/from-other-process')\n"
            "print(w.workspace.get_status('/from-other-process').object_type.value)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", client_code],
            capture_output=True,
            text=True,
            timeout=60,
            env={**env, "DATABRICKS_HOST": url, "DATABRICKS_CONFIG_FILE": "/nonexistent"},
        )
        assert out.stdout.strip() == "DIRECTORY", out.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_a_killed_server_leaves_no_run_active_after_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc, url = serve(state)
    from databricks.sdk import WorkspaceClient

    w = WorkspaceClient(host=url, token=TOKEN, auth_type="pat")
    single_notebook(w, "/k/slow", "# Databricks notebook source\nimport time\ntime.sleep(300)\n")
    run_id = w.jobs.submit(
        run_name="k",
        tasks=[
            jobs.SubmitTask(
                task_key="a",
                existing_cluster_id=CLUSTER,
                notebook_task=jobs.NotebookTask(notebook_path="/k/slow"),
            )
        ],
    ).run_id
    deadline = time.monotonic() + 60
    while w.jobs.get_run(run_id).state.life_cycle_state != jobs.RunLifeCycleState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    with start_local_workspace(state, token=TOKEN) as ws:
        run = sdk_client(ws).jobs.get_run(run_id)
        assert run.state.life_cycle_state == jobs.RunLifeCycleState.INTERNAL_ERROR
        assert sdk_client(ws).workspace.get_status("/k/slow").path == "/k/slow"


def test_task_libraries_reach_the_run(client) -> None:  # type: ignore[no-untyped-def]
    """Kept in the run's task (as the service shows them) and installed, or the task fails
    naming the library it cannot install."""
    from databricks.sdk.service.compute import Library, MavenLibrary

    single_notebook(client, "/t/libs", "# Databricks notebook source\nprint('never runs')\n")
    task = notebook_task("a", "/t/libs", {})
    task.libraries = [Library(maven=MavenLibrary(coordinates="org.a:b:1"))]
    job = client.jobs.create(name="libs", tasks=[task])
    run = client.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
    assert run.tasks[0].libraries == task.libraries
    assert run.tasks[0].state.result_state == jobs.RunResultState.FAILED
    output = client.jobs.get_run_output(run.tasks[0].run_id)
    assert output.error.startswith('maven library {"coordinates": "org.a:b:1"} is not supported')
