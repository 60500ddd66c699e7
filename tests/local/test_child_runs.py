"""``dbutils.notebook.run`` children are runs of their own, as on Databricks, through
databricks-sdk against a started workspace with real kernels.

A child is an ephemeral ``WORKFLOW_RUN`` with one task run: ``runs/get`` answers for both ids,
``runs/get-output`` and ``runs/export`` for the run id too, and it has its own page, life cycle
and times. The caller's cell shows ``Notebook job #<run id>`` linking to it and nothing of its
cells; a failing child reaches its caller only as Databricks' WorkflowException message.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.parse
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from databricks.sdk.service import jobs, workspace

from orchestrator.local.kernel.notebook_util import CHILD_FAILED, CHILD_TIMED_OUT
from orchestrator.local.server import LocalWorkspace
from tests.conftest import TOKEN, sdk_client
from tests.tools import require_r
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

FOLDER = "/Users/local@localhost/kids"
LINK = re.compile(r'^<a href="(?P<url>[^"]+)">Notebook job #(?P<run_id>\d+)</a>$')
MODEL = re.compile(r"var __DATABRICKS_NOTEBOOK_MODEL = '([^']*)';")
WAIT = timedelta(seconds=240)


def upload(w: Any, name: str, text: str, language: str = "PYTHON") -> str:
    path = f"{FOLDER}/{name}"
    w.workspace.import_(
        path=path,
        content=base64.b64encode(text.encode()).decode(),
        format=workspace.ImportFormat.SOURCE,
        language=workspace.Language(language),
        overwrite=True,
    )
    return path


def notebook(*cells: str) -> str:
    return "# Databricks notebook source\n" + "\n\n# COMMAND ----------\n\n".join(cells) + "\n"


def model_of(w: Any, run_id: int) -> dict[str, Any]:
    """The notebook model in a run's export, decoded with the public recipe."""
    (view,) = w.jobs.export_run(run_id).views
    assert view.type == jobs.ViewType.NOTEBOOK
    (encoded,) = MODEL.findall(view.content)
    model: dict[str, Any] = json.loads(urllib.parse.unquote(base64.b64decode(encoded).decode()))
    return model


def links(model: dict[str, Any]) -> list[re.Match[str]]:
    found = []
    for command in model["commands"]:
        for item in (command["results"] or {}).get("data") or []:
            if item["type"] == "html" and (match := LINK.match(item["data"])):
                found.append(match)
    return found


def submit(w: Any, path: str) -> jobs.Run:
    return w.jobs.submit_and_wait(
        run_name="kids",
        tasks=[jobs.SubmitTask(task_key="t", notebook_task=jobs.NotebookTask(notebook_path=path))],
        timeout=WAIT,
    )


@pytest.fixture(scope="module")
def kids(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from orchestrator.local.server import start_local_workspace

    server = start_local_workspace(
        tmp_path_factory.mktemp("kids") / "state", token=TOKEN, cluster_start_delay=0
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def w(kids: LocalWorkspace):  # type: ignore[no-untyped-def]
    client = sdk_client(kids)
    client.workspace.mkdirs(FOLDER)
    return client


def test_a_child_is_a_workflow_run_of_its_own(w, kids: LocalWorkspace) -> None:  # type: ignore[no-untyped-def]
    upload(
        w,
        "child",
        notebook(
            "dbutils.widgets.text('fail', 'no')",
            "print('the child printed this')",
            "if dbutils.widgets.get('fail') == 'yes':\n    raise ValueError('child broke')",
            "dbutils.notebook.exit('child says ' + dbutils.widgets.get('fail'))",
        ),
    )
    parent_path = upload(
        w,
        "parent",
        notebook(
            "ok = dbutils.notebook.run('./child', 120, {'fail': 'no'})",
            "try:\n"
            "    dbutils.notebook.run('./child', 120, {'fail': 'yes'})\n"
            "except Exception as exc:\n"
            "    failure = f'{type(exc).__name__}|{exc}'",
            "dbutils.notebook.exit(ok + ' || ' + failure)",
        ),
    )
    run = submit(w, parent_path)
    (task,) = run.tasks
    assert task.state.result_state == jobs.RunResultState.SUCCESS
    output = w.jobs.get_run_output(task.run_id)
    ok, failure = output.notebook_output.result.split(" || ")
    assert ok == "child says no"
    assert failure == f"WorkflowException|{CHILD_FAILED}"
    assert output.logs is None and output.logs_truncated is None

    # the caller's export: the links, none of the children's cells or errors
    parent = model_of(w, task.run_id)
    content = w.jobs.export_run(task.run_id).views[0].content
    for secret in ("the child printed this", "child broke", "ValueError"):
        assert secret not in content
        assert secret not in json.dumps(parent)
    first, second = links(parent)
    assert [c["command"].split("(")[0] for c in parent["commands"][:2]] == [
        "ok = dbutils.notebook.run",
        "try:\n    dbutils.notebook.run",
    ]

    # each link names a run of its own: WORKFLOW_RUN, one task run, its own page
    child_runs = {int(m["run_id"]): m["url"] for m in (first, second)}
    listed = {r.run_id for r in w.jobs.list_runs(run_type=jobs.RunType.WORKFLOW_RUN)}
    assert listed == set(child_runs)
    for run_id, url in child_runs.items():
        child = w.jobs.get_run(run_id)
        assert child.run_type == jobs.RunType.WORKFLOW_RUN
        assert child.run_page_url == url == f"{kids.url}/runs/{run_id}"
        assert child.creator_user_name == "local@localhost"
        (child_task,) = child.tasks
        assert child_task.notebook_task.notebook_path == f"{FOLDER}/child"
        assert child.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED
        assert child.status.state == jobs.RunLifecycleStateV2State.TERMINATED
        assert task.start_time <= child.start_time <= child.end_time <= task.end_time
        by_task_id = w.jobs.get_run(child_task.run_id)
        assert by_task_id.run_id == child_task.run_id
        assert by_task_id.run_type == jobs.RunType.WORKFLOW_RUN
        assert [t.run_id for t in by_task_id.tasks] == [child_task.run_id]
        assert requests.get(url, timeout=30).status_code == 200

    good, bad = (w.jobs.get_run(int(m["run_id"])) for m in (first, second))
    assert good.state.result_state == jobs.RunResultState.SUCCESS
    assert bad.state.result_state == jobs.RunResultState.FAILED
    assert good.tasks[0].notebook_task.base_parameters == {"fail": "no"}

    # get-output and export answer for the child's run id (it has one task)
    good_output = w.jobs.get_run_output(good.run_id)
    assert good_output.notebook_output.result == "child says no"
    assert good_output.error is None and good_output.logs is None
    bad_output = w.jobs.get_run_output(bad.run_id)
    assert bad_output.error == "ValueError: child broke"
    assert "raise ValueError('child broke')" in bad_output.error_trace
    assert bad_output.notebook_output.result is None and bad_output.logs is None

    bad_model = model_of(w, bad.run_id)
    assert bad_model["origId"] == bad.tasks[0].run_id and bad_model["name"] == "child"
    assert [c["state"] for c in bad_model["commands"]] == [
        "finished",
        "finished",
        "error",
        "skipped",
    ]
    printed = bad_model["commands"][1]["results"]["data"]
    assert printed == [{"type": "ansi", "data": "the child printed this\n"}]
    assert bad_model["commands"][2]["errorSummary"] == "ValueError: child broke"
    assert model_of(w, bad.tasks[0].run_id) == bad_model

    # the kept files: each child's own folder, none under its caller's
    parent_folder = kids.store.runs_root / str(task.run_id)
    assert not list(parent_folder.glob("control/child-*"))
    for child in (good, bad):
        folder = kids.store.runs_root / str(child.tasks[0].run_id)
        assert (folder / "executed_notebook.ipynb").is_file()
        assert not (folder / "scratch").exists()

    # the Jobs UI shows each child under its link, from the child's own run
    page = requests.get(f"{kids.url}/runs/{task.run_id}", timeout=30).text
    assert page.count("Notebook job #") == 2
    assert page.count("data-child-run=") == 2
    assert "the child printed this" in page and "child broke" in page


def test_a_child_runs_times_out_and_is_cancelled_as_a_run(  # type: ignore[no-untyped-def]
    w, tmp_path: Path
) -> None:
    """RUNNING while it runs; TIMEDOUT past its own timeout; CANCELED by runs/cancel of its
    run, which its caller's dbutils.notebook.run raises."""
    gate = tmp_path / "gate"
    upload(
        w,
        "waits",
        notebook(
            f"import os, time\nwhile not os.path.exists({str(gate)!r}):\n    time.sleep(0.05)",
            "dbutils.notebook.exit('released')",
        ),
    )
    upload(w, "sleeps", notebook("import time\ntime.sleep(120)"))
    parent_path = upload(
        w,
        "waiter",
        notebook(
            "released = dbutils.notebook.run('./waits', 120)",
            "try:\n"
            "    dbutils.notebook.run('./sleeps', 2)\n"
            "except Exception as exc:\n"
            "    timed_out = str(exc)",
            "try:\n"
            "    dbutils.notebook.run('./sleeps', 120)\n"
            "except Exception as exc:\n"
            "    cancelled = str(exc)",
            "dbutils.notebook.exit(' || '.join((released, timed_out, cancelled)))",
        ),
    )
    before = {r.run_id for r in w.jobs.list_runs(run_type=jobs.RunType.WORKFLOW_RUN)}
    results: list[jobs.Run] = []
    thread = threading.Thread(target=lambda: results.append(submit(w, parent_path)))
    thread.start()
    try:
        running: list[jobs.BaseRun] = []

        def child_running() -> bool:
            running[:] = [
                r
                for r in w.jobs.list_runs(run_type=jobs.RunType.WORKFLOW_RUN, active_only=True)
                if r.run_id not in before
            ]
            return bool(running)

        assert wait_until(child_running, timeout=120), "the child run never showed up"
        child = w.jobs.get_run(running[0].run_id)
        assert child.state.life_cycle_state == jobs.RunLifeCycleState.RUNNING
        assert child.status.state == jobs.RunLifecycleStateV2State.RUNNING
        assert child.start_time > 0 and not child.end_time
        assert child.tasks[0].state.life_cycle_state == jobs.RunLifeCycleState.RUNNING
    finally:
        gate.write_text("go")
    try:
        # the third call's child runs until its run is cancelled: the "sleeps" run still
        # running once the second call's one has timed out
        def blocked() -> int | None:
            others = [
                r
                for r in w.jobs.list_runs(run_type=jobs.RunType.WORKFLOW_RUN)
                if r.run_id not in before and r.run_id != child.run_id
            ]
            if not any(r.state.result_state == jobs.RunResultState.TIMEDOUT for r in others):
                return None
            active = [
                r.run_id
                for r in others
                if r.state.life_cycle_state == jobs.RunLifeCycleState.RUNNING
            ]
            return active[0] if active else None

        assert wait_until(lambda: blocked() is not None, timeout=120), "no third child"
        cancelled_id = blocked()
        assert cancelled_id is not None
        w.jobs.cancel_run(cancelled_id)
    finally:
        thread.join(WAIT.total_seconds())
    (run,) = results
    output = w.jobs.get_run_output(run.tasks[0].run_id)
    released, timed_out, cancelled = output.notebook_output.result.split(" || ")
    assert released == "released"
    assert timed_out == CHILD_TIMED_OUT
    assert cancelled == (
        "com.databricks.WorkflowException: com.databricks.NotebookExecutionException: "
        "CANCELED: Run cancelled"
    )
    waited = w.jobs.get_run(child.run_id)
    assert waited.state.result_state == jobs.RunResultState.SUCCESS and waited.end_time
    (_, slept, stopped) = links(model_of(w, run.tasks[0].run_id))
    slow = w.jobs.get_run(int(slept["run_id"]))
    assert slow.state.result_state == jobs.RunResultState.TIMEDOUT
    assert int(stopped["run_id"]) == cancelled_id
    stopped_run = w.jobs.get_run(cancelled_id)
    assert stopped_run.state.result_state == jobs.RunResultState.CANCELED


def test_an_r_caller_shows_the_link_and_raises_the_same_message(w) -> None:  # type: ignore[no-untyped-def]
    require_r()
    upload(w, "r_child", notebook("stop('r child broke')"), language="R")
    path = upload(
        w,
        "r_parent",
        notebook(
            "failure <- tryCatch(dbutils.notebook.run('./r_child', 120),\n"
            "  WorkflowException = function(e) conditionMessage(e))",
            "dbutils.notebook.exit(failure)",
        ),
        language="R",
    )
    run = submit(w, path)
    task = run.tasks[0]
    assert w.jobs.get_run_output(task.run_id).notebook_output.result == CHILD_FAILED
    (link,) = links(model_of(w, task.run_id))
    child = w.jobs.get_run(int(link["run_id"]))
    assert child.run_type == jobs.RunType.WORKFLOW_RUN
    assert child.state.result_state == jobs.RunResultState.FAILED
    assert "r child broke" in (w.jobs.get_run_output(child.run_id).error or "")
    assert "r child broke" not in w.jobs.export_run(task.run_id).views[0].content
