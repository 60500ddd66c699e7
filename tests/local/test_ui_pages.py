"""The local Jobs UI over HTTP, without a browser: what each page lists, filters and pages, its
escaping and security headers, auth (pages open, API and admin closed), auto-refresh only while
a run is active, and the test counts a build reports. Runs come from a fake task executor."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from databricks.sdk.service import jobs

from orchestrator.local.server import LocalWorkspace, start_local_workspace
from tests.conftest import TOKEN, sdk_client
from tests.fakes import FakeExecutor

CLUSTER = "0000-000000-local"
WAIT = timedelta(seconds=60)
PARAMS = {
    "build_id": "",
    "branch": "",
    "commit": "",
    "pull_request": "",
    "target": "",
    "result": "SUCCESS",
    "exit": "",
    "sleep": "0",
}
EVIL = "<script>alert('x')</script>"


@pytest.fixture
def client(ws: LocalWorkspace):  # type: ignore[no-untyped-def]
    return sdk_client(ws)


def make_job(client, name: str = "build-sample", tasks: int = 1) -> int:  # type: ignore[no-untyped-def]
    job = client.jobs.create(
        name=name,
        tags={"repo": "sample"},
        max_concurrent_runs=100,
        parameters=[jobs.JobParameterDefinition(name=k, default=v) for k, v in PARAMS.items()],
        tasks=[
            jobs.Task(
                task_key=f"task_{i}",
                existing_cluster_id=CLUSTER,
                notebook_task=jobs.NotebookTask(notebook_path="/nb"),
            )
            for i in range(tasks)
        ],
    )
    return int(job.job_id)


def start_run(client, job_id: int, number: int, **params: str):  # type: ignore[no-untyped-def]
    values = {"build_id": f"b{number}", "target": "local", **params}
    return client.jobs.run_now(job_id, job_parameters=values)


def build_run(client, job_id: int, number: int, **params: str):  # type: ignore[no-untyped-def]
    return start_run(client, job_id, number, **params).result(timeout=WAIT)


def get(ws: LocalWorkspace, path: str) -> requests.Response:
    return requests.get(f"{ws.url}{path}", timeout=10)


def run_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-run-id="(\d+)"', html)]


def test_job_page_lists_builds_newest_first_with_their_parameters(ws, client) -> None:  # type: ignore[no-untyped-def]
    job_id = make_job(client)
    first = build_run(client, job_id, 1, branch="main", commit="a" * 40)
    second = build_run(
        client, job_id, 2, branch="feature/x", commit="b" * 40, pull_request="42", result="FAILED"
    )
    page = get(ws, f"/jobs/{job_id}")
    assert page.status_code == 200
    assert run_ids(page.text) == [second.run_id, first.run_id]
    row = page.text.split(f'data-run-id="{second.run_id}"')[1].split("</tr>")[0]
    for text in ("b2", "feature/x", "b" * 10, "#42", "local", 'data-state="FAILED"'):
        assert text in row
    assert f'href="/jobs/{job_id}/runs/{second.run_id}"' in row
    listing = get(ws, "/jobs").text
    assert "build-sample" in listing and "repo: sample" in listing
    assert re.search(r'<td class="num">2</td></tr>', listing)  # number of runs
    assert 'data-state="FAILED"' in listing  # the latest run's state
    index = get(ws, "/").text
    assert f'href="/jobs/{job_id}"' in index and 'href="/jobs"' in index


def test_job_page_filters_by_state_and_branch_and_pages(ws, client) -> None:  # type: ignore[no-untyped-def]
    job_id = make_job(client)
    waiters = [
        start_run(
            client,
            job_id,
            n,
            branch="main" if n % 2 else "dev",
            result="FAILED" if n % 3 == 0 else "SUCCESS",
        )
        for n in range(7)
    ]
    ids = [w.result(timeout=WAIT).run_id for w in waiters]
    newest = ids[::-1]
    failed = [r for n, r in enumerate(ids) if n % 3 == 0][::-1]
    assert run_ids(get(ws, f"/jobs/{job_id}?state=failed").text) == failed
    main = [r for n, r in enumerate(ids) if n % 2][::-1]
    assert run_ids(get(ws, f"/jobs/{job_id}?branch=main").text) == main
    both = get(ws, f"/jobs/{job_id}?state=succeeded&branch=dev").text
    assert run_ids(both) == [r for n, r in enumerate(ids) if n % 2 == 0 and n % 3][::-1]
    first = get(ws, f"/jobs/{job_id}?limit=3").text
    assert run_ids(first) == newest[:3] and "Page 1 of 3 (7 runs)" in first
    assert f'href="/jobs/{job_id}?limit=3&amp;page=2"' in first
    assert run_ids(get(ws, f"/jobs/{job_id}?limit=3&page=3").text) == newest[6:]
    assert run_ids(get(ws, f"/jobs/{job_id}?state=nonsense&page=x").text) == newest
    assert get(ws, "/jobs/999").status_code == 404


def test_run_page_shows_parameters_tasks_errors_and_a_timeline(ws, client) -> None:  # type: ignore[no-untyped-def]
    job_id = make_job(client, tasks=2)
    run = build_run(client, job_id, 5, branch="main", result="FAILED")
    page = get(ws, f"/jobs/{job_id}/runs/{run.run_id}").text
    assert 'id="run-state"' in page and 'data-state="FAILED"' in page
    for task in run.tasks:
        assert f'href="/jobs/{job_id}/runs/{task.run_id}"' in page
    assert "boom" in page  # the task's error
    assert '<svg class="timeline"' in page and page.count('<rect class="FAILED"') == 2
    assert '<td class="mono">branch</td><td class="mono">main</td>' in page
    assert 'http-equiv="refresh"' not in page
    task_page = get(ws, f"/jobs/{job_id}/runs/{run.tasks[0].run_id}").text
    assert "task_0" in task_page and "boom" in task_page


def test_an_active_run_page_refreshes_itself_until_the_run_ends(ws, client) -> None:  # type: ignore[no-untyped-def]
    job_id = make_job(client)
    waiter = start_run(client, job_id, 1, sleep="3")
    run_id = waiter.run_id
    page = get(ws, f"/jobs/{job_id}/runs/{run_id}").text
    assert '<meta http-equiv="refresh" content="2">' in page and "Live" in page
    assert 'http-equiv="refresh"' in get(ws, f"/jobs/{job_id}").text
    waiter.result(timeout=WAIT)
    done = get(ws, f"/jobs/{job_id}/runs/{run_id}").text
    assert 'http-equiv="refresh"' not in done and 'data-state="SUCCESS"' in done
    assert 'http-equiv="refresh"' not in get(ws, f"/jobs/{job_id}").text


def test_every_value_is_escaped(ws, client) -> None:  # type: ignore[no-untyped-def]
    job_id = make_job(client, name=f"job {EVIL}")
    run = build_run(client, job_id, 1, branch=EVIL, commit=EVIL, result="FAILED")
    for path in ("/", "/jobs", f"/jobs/{job_id}", f"/jobs/{job_id}/runs/{run.run_id}"):
        html = get(ws, path).text
        assert "<script" not in html, path
        assert "&lt;script&gt;" in html, path


def test_pages_send_a_strict_csp_and_change_nothing(ws, client) -> None:  # type: ignore[no-untyped-def]
    job_id = make_job(client)
    run = build_run(client, job_id, 1)
    for path in ("/", "/jobs", f"/jobs/{job_id}", f"/jobs/{job_id}/runs/{run.run_id}"):
        response = get(ws, path)  # no token
        assert response.status_code == 200
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert get(ws, "/static/ui.css").headers["Content-Type"].startswith("text/css")
    for method in ("POST", "PUT", "DELETE"):
        response = requests.request(method, f"{ws.url}/jobs/{job_id}", timeout=10)
        assert response.status_code in (401, 404, 405)
    api = requests.get(f"{ws.url}/api/2.2/jobs/list", timeout=10)
    assert api.status_code == 401  # the API keeps its token


def test_test_counts_reported_by_a_build_show_on_the_job_and_run_pages(ws, client) -> None:  # type: ignore[no-untyped-def]
    job_id = make_job(client)
    run = build_run(client, job_id, 1, result="FAILED")
    url = f"{ws.url}/local-admin/runs/test-counts"
    counts = {"run_id": run.run_id, "tests": 19, "failures": 1, "errors": 0, "skipped": 2}
    assert requests.post(url, json=counts, timeout=10).status_code == 401
    client.api_client.do("POST", "/local-admin/runs/test-counts", body=counts)
    assert "16/19 passed, 1 failed, 2 skipped" in get(ws, f"/jobs/{job_id}").text
    assert "16/19 passed" in get(ws, f"/jobs/{job_id}/runs/{run.run_id}").text
    headers = {"Authorization": f"Bearer {TOKEN}"}
    bad = requests.post(url, json={**counts, "tests": -1}, headers=headers, timeout=10)
    assert bad.status_code == 400
    missing = requests.post(url, json={**counts, "run_id": 999}, headers=headers, timeout=10)
    assert missing.status_code == 404


def test_counts_from_the_notebooks_exit_values_when_every_task_gave_them(ws, client) -> None:  # type: ignore[no-untyped-def]
    job_id = make_job(client, tasks=2)
    value = '{"tests": 4, "failures": 0, "errors": 0, "skipped": 0}'
    run = build_run(client, job_id, 1, exit=value)
    page = get(ws, f"/jobs/{job_id}").text
    assert 'title="from the notebooks" data-tests="8"' in page and "8/8 passed" in page
    other = build_run(client, job_id, 2, exit="not json")
    row = get(ws, f"/jobs/{job_id}").text.split(f'data-run-id="{other.run_id}"')[1]
    assert row.split("</tr>")[0].endswith('<td><span class="muted">-</span></td>')
    assert run.run_id != other.run_id


def test_a_run_page_outlives_the_workspace_that_ran_it(tmp_path: Path) -> None:
    """A build's workspace stops; ``orchestrator local serve`` on the same state shows its run."""
    first = start_local_workspace(tmp_path / "kept", token=TOKEN, executor=FakeExecutor())
    try:
        client = sdk_client(first)
        job_id = make_job(client)
        run = build_run(client, job_id, 1, branch="main", result="FAILED")
    finally:
        first.stop()
    again = start_local_workspace(tmp_path / "kept", token=TOKEN, executor=FakeExecutor())
    try:
        page = get(again, f"/jobs/{job_id}/runs/{run.run_id}")
        assert page.status_code == 200 and 'data-state="FAILED"' in page.text
        assert first.url not in page.text  # links are relative: they work on any port
        assert run_ids(get(again, f"/jobs/{job_id}").text) == [run.run_id]
    finally:
        again.stop()


def test_exit_values_are_read_past_logs_that_mention_them(tmp_path: Path) -> None:
    import json

    from orchestrator.local.state.store import Store
    from orchestrator.local.ui.summary import CountsReader

    store = Store(tmp_path / "s")
    try:
        logs = 'printed {"notebook_output": {"result": "{\\"tests\\": 99}"}}\n' * 100
        for task_run_id, tests in ((2, 3), (3, 4)):
            result = json.dumps({"tests": tests, "failures": 1})
            output = {"logs": logs, "notebook_output": {"result": result}, "error": "x"}
            folder = store.runs_root / str(task_run_id)
            folder.mkdir(parents=True)
            (folder / "output.json").write_text(json.dumps(output))
        doc = {
            "run_id": 1,
            "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED"},
            "tasks": [{"run_id": 2}, {"run_id": 3}],
        }
        counts = CountsReader(store).counts(doc)
        assert counts is not None and (counts.tests, counts.failures) == (7, 2)
        assert counts.source == "notebooks" and counts.summary() == "5/7 passed, 2 failed"
    finally:
        store.close()
