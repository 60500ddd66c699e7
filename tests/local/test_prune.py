"""Bounded disk in the local workspace (orchestrator/local/retention.py): a task's scratch goes
when it ends, its executed notebooks stay; ended runs beyond the retention are pruned on start,
periodically, on ``runs/delete`` and by ``orchestrator local prune``; active runs never are."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestrator.local.server import LocalWorkspace, start_local_workspace
from orchestrator.local.state.retention import Retention, prune
from orchestrator.local.state.store import now_ms
from tests.fakes import FakeExecutor
from tests.waiting import wait_until

TOKEN = "prune-token"
REPO = Path(__file__).resolve().parents[2]
CHILD = "# Databricks notebook source\nprint('child ran')\ndbutils.notebook.exit('ok')\n"
PARENT = (
    "# Databricks notebook source\nimport pathlib\npathlib.Path('made-here.txt').write_text('x')\n"
    "print(dbutils.notebook.run('./child', 300))\n"
)


def call(ws: LocalWorkspace, method: str, route: str, **body: Any) -> requests.Response:
    kwargs: dict[str, Any] = {"params": body} if method == "GET" else {"json": body}
    headers = {"Authorization": f"Bearer {ws.token}"}
    return requests.request(method, f"{ws.url}/api/{route}", headers=headers, timeout=60, **kwargs)


def submit(ws: LocalWorkspace, *tasks: dict[str, Any]) -> int:
    run_id = int(
        call(ws, "POST", "2.1/jobs/runs/submit", run_name="r", tasks=list(tasks)).json()["run_id"]
    )
    return run_id


def fake_task(key: str = "t", **params: str) -> dict[str, Any]:
    notebook = {"notebook_path": "/x", "base_parameters": params}
    return {"task_key": key, "notebook_task": notebook}


def task_ids(ws: LocalWorkspace, run_id: int) -> list[int]:
    doc = ws.scheduler.get(run_id)
    assert doc is not None
    return [int(t["run_id"]) for t in doc["tasks"]]


@pytest.fixture
def fake_ws(tmp_path: Path) -> Iterator[LocalWorkspace]:
    ws = start_local_workspace(tmp_path / "state", token=TOKEN, executor=FakeExecutor())
    try:
        yield ws
    finally:
        ws.stop()


def finished_runs(ws: LocalWorkspace, count: int) -> list[int]:
    runs = [submit(ws, fake_task()) for _ in range(count)]
    for run_id in runs:
        assert ws.scheduler.wait_idle(run_id, 30)
    return runs


@pytest.mark.slow
def test_a_notebook_run_keeps_its_executed_notebooks_and_drops_its_scratch(
    tmp_path: Path,
) -> None:
    with start_local_workspace(tmp_path / "state", token=TOKEN, cluster_start_delay=0) as ws:
        call(ws, "POST", "2.0/workspace/mkdirs", path="/p")
        for name, text in (("parent", PARENT), ("child", CHILD)):
            content = base64.b64encode(text.encode()).decode()
            call(
                ws,
                "POST",
                "2.0/workspace/import",
                path=f"/p/{name}",
                language="PYTHON",
                content=content,
            )
        task = {"task_key": "t", "notebook_task": {"notebook_path": "/p/parent"}}
        run_id = submit(ws, task)
        assert ws.scheduler.wait_idle(run_id, 300)
        (task_id,) = task_ids(ws, run_id)
        folder = ws.store.runs_root / str(task_id)
        assert not (folder / "scratch").exists()
        assert (folder / "executed_notebook.ipynb").is_file()
        assert not (folder / "control").exists()
        output = call(ws, "GET", "2.1/jobs/runs/get-output", run_id=task_id).json()
        assert output["metadata"]["state"]["result_state"] == "SUCCESS", output
        assert "logs" not in output
        export = call(ws, "GET", "2.1/jobs/runs/export", run_id=task_id).json()
        assert "ok\n" in export["views"][0]["content"]  # what the parent printed
        assert "child ran" not in export["views"][0]["content"]
        # the child is a run of its own, with its own folder kept the same way
        children = call(ws, "GET", "2.1/jobs/runs/list", run_type="WORKFLOW_RUN").json()["runs"]
        (child,) = [
            call(ws, "GET", "2.1/jobs/runs/get", run_id=c["run_id"]).json() for c in children
        ]
        (child_task,) = child["tasks"]
        child_folder = ws.store.runs_root / str(child_task["run_id"])
        assert (child_folder / "executed_notebook.ipynb").is_file()
        assert not (child_folder / "scratch").exists()
        export = call(ws, "GET", "2.1/jobs/runs/export", run_id=child["run_id"]).json()
        assert "child ran" in export["views"][0]["content"]


@pytest.mark.slow
def test_a_task_runs_export_is_rendered_once_when_the_task_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build exports every task run when it collects: each is rendered as its task ends
    (while other tasks may still run), beside its output, and the export request reads it
    rather than render it again."""
    from orchestrator.local.state import notebook_format as notebooks

    renders: list[str] = []
    real_export = notebooks.export_html

    def counted(data: bytes, *, title: str) -> str:
        renders.append(title)
        return real_export(data, title=title)

    monkeypatch.setattr(notebooks, "export_html", counted)
    with start_local_workspace(tmp_path / "state", token=TOKEN, cluster_start_delay=0) as ws:
        call(ws, "POST", "2.0/workspace/mkdirs", path="/p")
        content = base64.b64encode(b"# Databricks notebook source\nprint('rendered')\n")
        call(
            ws,
            "POST",
            "2.0/workspace/import",
            path="/p/nb",
            language="PYTHON",
            content=content.decode(),
        )
        run_id = submit(ws, {"task_key": "t", "notebook_task": {"notebook_path": "/p/nb"}})
        assert ws.scheduler.wait_idle(run_id, 300)
        (task_id,) = task_ids(ws, run_id)
        cache = ws.store.runs_root / str(task_id) / "export.html"
        assert wait_until(cache.is_file, timeout=60), "no export rendered when the task ended"
        assert "rendered" in cache.read_text()
        export = call(ws, "GET", "2.1/jobs/runs/export", run_id=task_id).json()
        assert export["views"][0]["content"] == cache.read_text()
    assert renders.count("/p/nb") == 1


@pytest.mark.slow
def test_keep_run_scratch_keeps_it(tmp_path: Path) -> None:
    with start_local_workspace(
        tmp_path / "state", token=TOKEN, cluster_start_delay=0, keep_run_scratch=True
    ) as ws:
        call(ws, "POST", "2.0/workspace/mkdirs", path="/p")
        content = base64.b64encode(b"# Databricks notebook source\nx = 1\n").decode()
        call(ws, "POST", "2.0/workspace/import", path="/p/nb", language="PYTHON", content=content)
        run_id = submit(ws, {"task_key": "t", "notebook_task": {"notebook_path": "/p/nb"}})
        assert ws.scheduler.wait_idle(run_id, 300)
        (task_id,) = task_ids(ws, run_id)
        assert (ws.store.runs_root / str(task_id) / "scratch" / "executed_notebook.ipynb").is_file()
        output = call(ws, "GET", "2.1/jobs/runs/export", run_id=task_id)
        assert output.status_code == 200


def test_count_and_age_limits_delete_documents_and_folders(fake_ws: LocalWorkspace) -> None:
    runs = finished_runs(fake_ws, 5)
    folders = {r: [fake_ws.store.runs_root / str(t) for t in task_ids(fake_ws, r)] for r in runs}
    assert all(f.is_dir() for fs in folders.values() for f in fs)
    report = prune(fake_ws.store, Retention(max_runs=2, max_age_days=None))
    assert report.runs_deleted == 3
    for run_id in runs[:3]:
        assert call(fake_ws, "GET", "2.1/jobs/runs/get", run_id=run_id).status_code == 404
        assert not any(f.exists() for f in folders[run_id])
    for run_id in runs[3:]:
        assert call(fake_ws, "GET", "2.1/jobs/runs/get", run_id=run_id).status_code == 200
        assert all(f.is_dir() for f in folders[run_id])
    later = now_ms() + 2 * 86_400_000
    assert (
        prune(fake_ws.store, Retention(max_runs=None, max_age_days=1), now=later).runs_deleted == 2
    )
    listed = call(fake_ws, "GET", "2.1/jobs/runs/list").json()
    assert "runs" not in listed


def test_active_runs_new_folders_and_fresh_temp_files_are_never_pruned(
    fake_ws: LocalWorkspace,
) -> None:
    (ended,) = finished_runs(fake_ws, 1)
    ended_task = fake_ws.store.runs_root / str(task_ids(fake_ws, ended)[0])
    (ended_task / "scratch").mkdir()
    active = submit(fake_ws, fake_task(sleep="60"))
    active_task = fake_ws.store.runs_root / str(task_ids(fake_ws, active)[0])
    (active_task / "scratch").mkdir(parents=True)
    newer = fake_ws.store.runs_root / str(fake_ws.store.last_id("run") + 1)
    newer.mkdir()
    old_tmp = fake_ws.store.tmp_root / "import-old"
    old_tmp.write_text("x")
    os.utime(old_tmp, (time.time() - 7200, time.time() - 7200))
    fresh_tmp = fake_ws.store.tmp_root / "import-fresh"
    fresh_tmp.write_text("x")
    report = prune(fake_ws.store, Retention(max_runs=0, max_age_days=0))
    assert report.runs_deleted == 1 and not ended_task.exists()
    assert (active_task / "scratch").is_dir()
    assert fake_ws.scheduler.is_active(active)
    assert newer.is_dir() and fresh_tmp.exists() and not old_tmp.exists()
    fake_ws.scheduler.cancel(active)
    assert fake_ws.scheduler.wait_idle(active, 30)


def test_folders_of_deleted_runs_and_leftover_scratch_are_swept(fake_ws: LocalWorkspace) -> None:
    first, second = finished_runs(fake_ws, 2)
    first_task = fake_ws.store.runs_root / str(task_ids(fake_ws, first)[0])
    fake_ws.store.delete_run(first)  # as an older version's runs/delete did: files left
    second_scratch = fake_ws.store.runs_root / str(task_ids(fake_ws, second)[0]) / "scratch"
    second_scratch.mkdir()  # as a killed server leaves it
    report = prune(fake_ws.store, Retention())
    assert (report.runs_deleted, report.scratch_deleted) == (0, 1)
    assert report.folders_deleted >= 1
    assert not first_task.exists() and not second_scratch.exists()


def test_runs_delete_removes_the_runs_files(fake_ws: LocalWorkspace) -> None:
    (run_id,) = finished_runs(fake_ws, 1)
    folders = [fake_ws.store.runs_root / str(t) for t in task_ids(fake_ws, run_id)]
    assert call(fake_ws, "POST", "2.1/jobs/runs/delete", run_id=run_id).status_code == 200
    assert not any(f.exists() for f in folders)


def test_a_workspace_prunes_on_start_and_periodically(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with start_local_workspace(state, token=TOKEN, executor=FakeExecutor()) as ws:
        runs = finished_runs(ws, 3)
    with start_local_workspace(
        state, token=TOKEN, executor=FakeExecutor(), retention=Retention(max_runs=1)
    ) as ws:
        kept = [r for r in runs if call(ws, "GET", "2.1/jobs/runs/get", run_id=r).ok]
        assert kept == runs[-1:]
    periodic = Retention(max_runs=0, interval_seconds=0.1)
    with start_local_workspace(
        state, token=TOKEN, executor=FakeExecutor(), retention=periodic
    ) as ws:
        (run_id,) = finished_runs(ws, 1)
        assert wait_until(
            lambda: call(ws, "GET", "2.1/jobs/runs/get", run_id=run_id).status_code == 404
        )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "orchestrator", "local", "prune", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_orchestrator_local_prune(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with start_local_workspace(state, token=TOKEN, executor=FakeExecutor()) as ws:
        finished_runs(ws, 3)
    built = state / "cache" / "python-envs" / "envs" / "key" / "pkg.py"
    built.parent.mkdir(parents=True)
    built.write_text("x = 1\n" * 1000)
    done = _cli("--state-dir", str(state), "--keep-runs", "1")
    assert done.returncode == 0, done.stderr
    assert "pruned 2 runs" in done.stdout
    assert "install caches emptied" in done.stdout
    assert not (state / "cache" / "python-envs").exists()
    again = _cli("--state-dir", str(state))
    assert again.returncode == 0 and "pruned 0 runs" in again.stdout
    missing = _cli("--state-dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    assert "not the state dir of a local workspace" in missing.stderr
    negative = _cli("--state-dir", str(state), "--keep-runs", "-1")
    assert negative.returncode == 2
