"""The local workspace's own surface: run pages, admin counters and fault injection at run time,
and the 5 MB cap of runs/get-output."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import requests
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import Language

from orchestrator.local.server import LocalWorkspace

CLUSTER = "0000-000000-local"


def admin(
    ws: LocalWorkspace, path: str, body: dict[str, object] | None = None
) -> requests.Response:
    headers = {"Authorization": f"Bearer {ws.token}"}
    url = f"{ws.url}/local-admin/{path}"
    if body is None:
        return requests.get(url, headers=headers, timeout=10)
    return requests.post(url, json=body, headers=headers, timeout=10)


def api(ws: LocalWorkspace, path: str) -> requests.Response:
    return requests.get(
        f"{ws.url}/api/2.0/{path}", headers={"Authorization": f"Bearer {ws.token}"}, timeout=10
    )


@pytest.mark.slow
def test_run_page_shows_job_state_tasks_times_and_the_executed_notebook(
    workspace: LocalWorkspace, client
) -> None:  # type: ignore[no-untyped-def]
    client.workspace.mkdirs("/p")
    client.workspace.upload("/p/nb", b"print('visible output')\n", language=Language.PYTHON)
    job = client.jobs.create(
        name="paged",
        tasks=[
            jobs.Task(
                task_key="only",
                existing_cluster_id=CLUSTER,
                notebook_task=jobs.NotebookTask(notebook_path="/p/nb"),
            )
        ],
    )
    run = client.jobs.run_now_and_wait(job.job_id, timeout=timedelta(seconds=120))
    page = requests.get(run.run_page_url, timeout=10)  # no token: a browser opens it
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    for text in ("paged", "only", "TERMINATED", "SUCCESS", "UTC"):
        assert text in page.text
    notebook = requests.get(f"{workspace.url}/runs/{run.tasks[0].run_id}/notebook", timeout=30)
    assert "visible output" in notebook.text
    assert requests.get(f"{workspace.url}/runs/999999", timeout=10).status_code == 404


def test_counters_count_requests_per_endpoint_and_reset(workspace: LocalWorkspace) -> None:
    admin(workspace, "counters/reset", {})
    for _ in range(3):
        api(workspace, "workspace/get-status?path=/")
    counts = admin(workspace, "counters").json()
    assert counts["requests"]["GET workspace/get-status"] == 3
    admin(workspace, "counters/reset", {})
    assert admin(workspace, "counters").json()["requests"] == {"GET /local-admin/counters": 1}


def test_admin_needs_the_token(workspace: LocalWorkspace) -> None:
    assert requests.get(f"{workspace.url}/local-admin/counters", timeout=10).status_code == 401


def test_faults_set_at_run_time(workspace: LocalWorkspace) -> None:
    assert admin(workspace, "faults", {"p503": 1.0}).status_code == 200
    resp = api(workspace, "workspace/get-status?path=/")
    assert resp.status_code == 503 and resp.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    admin(workspace, "faults", {"p429_retry_after": 1.0, "retry_after_seconds": 7})
    resp = api(workspace, "workspace/get-status?path=/")
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "7"
    admin(workspace, "faults", {"p429": 1.0})
    resp = api(workspace, "workspace/get-status?path=/")
    assert resp.status_code == 429 and "Retry-After" not in resp.headers
    admin(workspace, "faults", {"p_drop": 1.0})
    with pytest.raises(requests.ConnectionError):
        api(workspace, "workspace/get-status?path=/")
    admin(workspace, "faults", {"latency_ms": 200})
    started = time.monotonic()
    assert api(workspace, "workspace/get-status?path=/").status_code == 200
    assert time.monotonic() - started >= 0.2
    admin(workspace, "faults", {"rate_limits": {"GET workspace/get-status": 2}})
    codes = [api(workspace, "workspace/get-status?path=/").status_code for _ in range(6)]
    assert codes.count(429) >= 3 and codes[:2] == [200, 200]
    assert admin(workspace, "faults", {"p503": 2}).status_code == 400
    assert admin(workspace, "counters").json()["injected"]["rate-limit"] >= 3


@pytest.mark.slow
def test_get_output_caps_the_result_at_5_mb(client) -> None:  # type: ignore[no-untyped-def]
    client.workspace.mkdirs("/big")
    client.workspace.upload(
        "/big/nb", b"dbutils.notebook.exit('x' * (6 * 1024 * 1024))\n", language=Language.PYTHON
    )
    run = client.jobs.submit(
        run_name="big",
        tasks=[
            jobs.SubmitTask(
                task_key="a",
                existing_cluster_id=CLUSTER,
                notebook_task=jobs.NotebookTask(notebook_path="/big/nb"),
            )
        ],
    ).result(timeout=timedelta(seconds=120))
    output = client.jobs.get_run_output(run.tasks[0].run_id)
    assert output.notebook_output.truncated is True
    assert len(output.notebook_output.result) == 5 * 1024 * 1024
