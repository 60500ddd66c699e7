"""Secret values of the workspace's scopes are masked wherever a run's results are shown:
``runs/get-output`` (the exit value, the error), the run and task pages, the executed
notebook and its export, and nothing written to the state dir holds them in clear.

The fast tests run tasks on the fake executor, whose ``exit`` parameter is the exit value;
the slow one calls ``dbutils.notebook.exit`` and raises with the secret in a real kernel.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from datetime import timedelta
from typing import Any

import pytest
import requests
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import ImportFormat, Language

from orchestrator.local.server import LocalWorkspace
from orchestrator.local.state.redaction import redact_html, redact_json
from tests.conftest import TOKEN, sdk_client

SECRET = "s3cr3t-v4lue<&>"  # with characters a page escapes
WAIT = timedelta(seconds=120)


def _api(ws: LocalWorkspace, method: str, route: str, body: Any = None, **params: Any) -> Any:
    response = requests.request(
        method,
        f"{ws.url}/api/{route}",
        json=body,
        params=params,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )
    response.raise_for_status()
    return response.json()


def _put_secret(ws: LocalWorkspace, value: str = SECRET) -> None:
    _api(ws, "POST", "2.0/secrets/scopes/create", {"scope": "ci"})
    _api(ws, "POST", "2.0/secrets/put", {"scope": "ci", "key": "token", "string_value": value})


def _state_bytes(ws: LocalWorkspace) -> bytes:
    """Every file a run leaves under runs/ (outputs, executed notebooks, exports)."""
    return b"".join(p.read_bytes() for p in sorted(ws.store.runs_root.rglob("*")) if p.is_file())


def _fake_run(ws: LocalWorkspace, **parameters: str) -> tuple[int, int]:
    w = sdk_client(ws)
    run = w.jobs.submit_and_wait(
        run_name="masked",
        tasks=[
            jobs.SubmitTask(
                task_key="t",
                notebook_task=jobs.NotebookTask(notebook_path="/nb", base_parameters=parameters),
            )
        ],
        timeout=WAIT,
    )
    assert run.run_id is not None and run.tasks
    task_run_id = run.tasks[0].run_id
    assert task_run_id is not None
    return run.run_id, task_run_id


def _pages(ws: LocalWorkspace, run_id: int, task_run_id: int) -> str:
    texts = []
    for path in ("/", "/jobs", f"/runs/{run_id}", f"/runs/{task_run_id}"):
        response = requests.get(f"{ws.url}{path}", timeout=60)
        assert response.status_code == 200, path
        texts.append(response.text)
    return "\n".join(texts)


def test_an_exit_value_holding_a_secret_is_masked_in_get_output_and_on_disk(
    ws: LocalWorkspace,
) -> None:
    _put_secret(ws)
    run_id, task_run_id = _fake_run(ws, exit=f"token={SECRET}", result="FAILED")
    output = _api(ws, "GET", "2.1/jobs/runs/get-output", run_id=task_run_id)
    assert output["notebook_output"]["result"] == "token=[REDACTED]"
    assert SECRET not in json.dumps(output)
    assert SECRET.encode() not in _state_bytes(ws)
    pages = _pages(ws, run_id, task_run_id)
    assert SECRET not in pages and "s3cr3t-v4lue&lt;&amp;&gt;" not in pages


def test_a_secret_put_after_the_run_is_masked_when_shown(ws: LocalWorkspace) -> None:
    run_id, task_run_id = _fake_run(ws, exit=f"token={SECRET}", build_id=SECRET)
    _put_secret(ws)
    output = _api(ws, "GET", "2.1/jobs/runs/get-output", run_id=task_run_id)
    assert output["notebook_output"]["result"] == "token=[REDACTED]"
    pages = _pages(ws, run_id, task_run_id)
    for form in (SECRET, "s3cr3t-v4lue&lt;&amp;&gt;"):
        assert form not in pages
    assert "[REDACTED]" in pages  # the build_id parameter on the run page


def test_short_values_are_not_masked(ws: LocalWorkspace) -> None:
    """Values under four characters would mask every word that holds them (the kernel's rule
    too)."""
    _put_secret(ws, "abc")
    _api(ws, "POST", "2.0/secrets/put", {"scope": "ci", "key": "long", "string_value": "k3y9"})
    _, task_run_id = _fake_run(ws, exit="abc k3y9")
    output = _api(ws, "GET", "2.1/jobs/runs/get-output", run_id=task_run_id)
    assert output["notebook_output"]["result"] == "abc [REDACTED]"


def test_images_are_left_whole() -> None:
    """An image's base64 could hold a value by chance: it must stay decodable."""
    page = '<p>k3y9</p><img src="data:image/png;base64,AAk3y9BB">'
    masked_page = redact_html(page, ["k3y9"])
    assert masked_page == '<p>[REDACTED]</p><img src="data:image/png;base64,AAk3y9BB">'
    notebook = {"outputs": [{"data": {"image/png": "AAk3y9BB", "text/plain": "k3y9"}}]}
    masked = redact_json(notebook, ["k3y9"], keep=frozenset({"image/png"}))
    assert masked == {"outputs": [{"data": {"image/png": "AAk3y9BB", "text/plain": "[REDACTED]"}}]}


@pytest.mark.slow
def test_a_real_notebook_exiting_or_failing_with_a_secret_shows_it_nowhere(
    workspace: LocalWorkspace,
) -> None:
    _put_secret(workspace)
    w = sdk_client(workspace)
    w.workspace.mkdirs("/Shared/masking")
    sources = {
        "exits": 'value = dbutils.secrets.get("ci", "token")\n'
        'dbutils.notebook.exit("token=" + value)\n',
        "fails": 'value = dbutils.secrets.get("ci", "token")\n'
        'displayHTML("<b>" + value + "</b>")\n'
        'raise ValueError("the token is " + value)\n',
    }
    for name, code in sources.items():
        content = f"# Databricks notebook source\n{code}"
        w.workspace.import_(
            f"/Shared/masking/{name}",
            content=base64.b64encode(content.encode()).decode(),
            format=ImportFormat.SOURCE,
            language=Language.PYTHON,
        )
    for name in sources:
        run = w.jobs.submit_and_wait(
            run_name=name,
            tasks=[
                jobs.SubmitTask(
                    task_key="t",
                    notebook_task=jobs.NotebookTask(notebook_path=f"/Shared/masking/{name}"),
                )
            ],
            timeout=WAIT,
        )
        assert run.run_id is not None and run.tasks and run.tasks[0].run_id is not None
        task_run_id = run.tasks[0].run_id
        output = _api(workspace, "GET", "2.1/jobs/runs/get-output", run_id=task_run_id)
        if name == "exits":
            assert output["notebook_output"]["result"] == "token=[REDACTED]"
        else:
            assert output["error"] == "ValueError: the token is [REDACTED]"
        assert SECRET not in json.dumps(output)
        pages = _pages(workspace, run.run_id, task_run_id)
        assert SECRET not in pages and "s3cr3t-v4lue&lt;&amp;&gt;" not in pages
        exported = _api(workspace, "GET", "2.1/jobs/runs/export", run_id=task_run_id)
        page = exported["views"][0]["content"]
        model = page.split("__DATABRICKS_NOTEBOOK_MODEL = '", 1)[1].split("'", 1)[0]
        decoded = urllib.parse.unquote(base64.b64decode(model).decode())
        assert SECRET not in page and SECRET not in decoded
        assert "[REDACTED]" in decoded
    deadline = time.monotonic() + 60
    while SECRET.encode() in _state_bytes(workspace) and time.monotonic() < deadline:
        time.sleep(0.2)  # a scratch folder is deleted as its task ends
    assert SECRET.encode() not in _state_bytes(workspace)
