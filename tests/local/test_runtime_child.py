"""Child notebook runs (dbutils.notebook.run) served by the parent's run, and the sqlite
resolver, with real kernels: a child is recorded through the request's ChildRunRecorder (a
fake here; the jobs engine's in tests/local/test_child_runs.py) and runs in the folder it
gives; the parent learns only the child's status, exit value and run."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from orchestrator.local.kernel.notebook_util import CHILD_FAILED, CHILD_TIMED_OUT
from orchestrator.local.runtime.children import ChildRuns
from orchestrator.local.runtime.execution import ChildRun, NotebookResult
from orchestrator.local.runtime.executor import execute_notebook
from orchestrator.local.runtime.resolver import NotebookNotFound, make_sqlite_resolver
from tests.local.runtime_helpers import Workspace, assert_all_gone, read_pids, source

pytestmark = pytest.mark.timeout(120)


def test_sqlite_resolver(runtime: Workspace) -> None:
    runtime.add("/Users/a/nb", source("x <- 1", language="R"), language="R")
    with sqlite3.connect(runtime.state_db) as db:
        db.execute("INSERT INTO objects VALUES ('/Users/a', 'DIRECTORY', NULL)")
        db.execute("INSERT INTO objects VALUES ('/Users/a/odd', 'NOTEBOOK', 'COBOL')")
    resolve = make_sqlite_resolver(runtime.state_db, runtime.workspace_root)
    found = resolve("/Users/a/./nb")
    assert (found.workspace_path, found.language) == ("/Users/a/nb", "R")
    assert found.file == runtime.workspace_root / "Users/a/nb"
    for missing in ("/Users/a/none", "/Users/a", "/Users/a/odd", "relative/path"):
        with pytest.raises(NotebookNotFound):
            resolve(missing)
    assert issubclass(NotebookNotFound, LookupError)


@pytest.mark.slow
def test_a_child_gets_its_args_only_and_the_parents_secrets(runtime: Workspace) -> None:
    runtime.add(
        "/Users/a/child",
        source(
            "import json\n"
            "assert dbutils.secrets.get('scope', 'key') == 's3cr3t'\n"
            "dbutils.notebook.exit(json.dumps(dbutils.widgets.getAll()))"
        ),
    )
    runtime.add(
        "/Users/a/parent",
        source('dbutils.notebook.exit(dbutils.notebook.run("./child", 60, {"x": 7}))'),
    )
    result = runtime.run(
        "/Users/a/parent",
        parameters={"from_parent": "must not leak"},
        secrets={"scope": {"key": "s3cr3t"}},
    )
    assert result.status == "SUCCESS", result.error
    assert json.loads(result.exit_value or "") == {"x": "7"}


def _serve(runtime: Workspace, control: Path, payload: str) -> dict[str, object]:
    """What ChildRuns answers to one raw request (the run callable must not be reached)."""
    control.mkdir(parents=True, exist_ok=True)
    parent = runtime.request(runtime.add("/Users/a/p", source("1")).workspace_path)

    def unreachable(*_args: object) -> NotebookResult:
        raise AssertionError("no child should run")

    children = ChildRuns(parent, control, runtime.resolver, unreachable)
    (control / "c1.request.json").write_text(payload)
    children.poll()
    children.stop()
    answer: dict[str, object] = json.loads((control / "c1.result.json").read_text())
    assert not (control / "c1.request.json").exists()
    return answer


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("{not json", "unreadable child run request"),
        ('{"args": {}}', "needs a notebook path"),
        ('{"path": "/Users/a/none"}', "Notebook not found: /Users/a/none"),
        ('{"path": "/Users/a/p", "args": [1]}', "must be a JSON object"),
        ('{"path": "/Users/a/p", "timeout": "soon"}', "not a number: 'soon'"),
    ],
)
def test_bad_child_requests_fail_with_a_clear_error(
    runtime: Workspace, tmp_path: Path, payload: str, expected: str
) -> None:
    answer = _serve(runtime, tmp_path / "control", payload)
    assert answer["status"] == "FAILED"
    assert expected in str(answer["error"])


@pytest.mark.slow
def test_a_failing_or_missing_child_raises_in_the_parent(runtime: Workspace) -> None:
    """A failed child raises Databricks' message and nothing of the child's error; a
    notebook that does not exist starts no child and says so."""
    runtime.add("/Users/a/bad", source("raise KeyError('nope')"))
    runtime.add(
        "/Users/a/parent",
        source(
            "errors = []\n"
            "for path in ('./bad', './none'):\n"
            "    try:\n"
            "        dbutils.notebook.run(path, 60)\n"
            "    except Exception as exc:\n"
            "        errors.append(f'{type(exc).__name__}|{exc}')\n"
            "dbutils.notebook.exit(' || '.join(errors))"
        ),
    )
    result = runtime.run("/Users/a/parent")
    assert result.status == "SUCCESS", result.error
    bad, missing = (result.exit_value or "").split(" || ")
    assert bad == f"WorkflowException|{CHILD_FAILED}"
    assert "nope" not in bad and "KeyError" not in bad
    assert missing.startswith("WorkflowException|com.databricks.WorkflowException: ")
    assert "Notebook not found: /Users/a/none" in missing


@dataclasses.dataclass
class RecordedChild:
    path: str
    parameters: dict[str, str]
    parent_environment: dict[str, str]
    run: ChildRun
    result: NotebookResult | None = None


class FakeRecorder:
    """Records children in memory, each in a folder of its own under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.children: list[RecordedChild] = []

    def start(
        self,
        *,
        notebook_path: str,
        parameters: Mapping[str, str],
        parent_environment: Mapping[str, str],
        cancel: threading.Event,
    ) -> ChildRun:
        run_id = 100 + 2 * len(self.children)
        scratch = self.root / str(run_id + 1) / "scratch"
        scratch.mkdir(parents=True)
        run = ChildRun(
            run_id=run_id,
            task_run_id=run_id + 1,
            run_page_url=f"http://example.invalid/runs/{run_id}",
            scratch_dir=scratch,
            environment={"ORCH_RUN_ID": str(run_id)},
        )
        recorded = RecordedChild(notebook_path, dict(parameters), dict(parent_environment), run)
        self.children.append(recorded)
        return run

    def finish(self, child: ChildRun, result: NotebookResult) -> None:
        (recorded,) = [c for c in self.children if c.run is child]
        assert recorded.result is None, "finished twice"
        recorded.result = result


@pytest.mark.slow
def test_children_are_recorded_as_runs_and_the_parent_shows_their_links(
    runtime: Workspace, tmp_path: Path
) -> None:
    runtime.add(
        "/Users/a/child",
        source(
            "print('child output')",
            "if dbutils.widgets.get('fail') == 'yes':\n    raise ValueError('child broke')\n"
            "dbutils.notebook.exit(dbutils.notebook.getContext().currentRunId().get())",
        ),
    )
    runtime.add(
        "/Users/a/parent",
        source(
            "ok = dbutils.notebook.run('./child', 60, {'fail': 'no'})",
            "try:\n    dbutils.notebook.run('./child', 60, {'fail': 'yes'})\n"
            "except Exception as exc:\n    failure = str(exc)",
            "dbutils.notebook.exit(ok + '|' + failure)",
        ),
    )
    recorder = FakeRecorder(tmp_path / "runs")
    request = dataclasses.replace(
        runtime.request("/Users/a/parent"),
        child_runs=recorder,
        environment={"ORCH_RUN_ID": "7", "ORCH_CLUSTER_ID": "c1"},
    )
    result = execute_notebook(request, resolver=runtime.resolver, cancel=threading.Event())
    assert result.status == "SUCCESS", (result.error, result.error_trace)
    ok, failure = (result.exit_value or "").split("|")
    assert ok == "100"  # the child's own run id, from its environment
    assert failure == CHILD_FAILED
    first, second = recorder.children
    assert (first.path, first.parameters) == ("/Users/a/child", {"fail": "no"})
    assert second.parameters == {"fail": "yes"}
    assert first.parent_environment == {"ORCH_RUN_ID": "7", "ORCH_CLUSTER_ID": "c1"}
    assert first.result is not None and first.result.status == "SUCCESS"
    assert second.result is not None and second.result.status == "FAILED"
    assert second.result.error == "ValueError: child broke"
    # each child ran in the folder its recorder gave, and kept its own executed notebook there
    for child in (first, second):
        assert child.result is not None
        assert child.result.executed_notebook == child.run.scratch_dir / "executed_notebook.ipynb"
        assert "child output" in child.result.executed_notebook.read_text()
    # the parent's notebook shows the links, not the children's cells or errors
    parent = json.loads(result.executed_notebook.read_text())
    links = [
        "".join(output["data"]["text/html"])
        for cell in parent["cells"]
        for output in cell.get("outputs", [])
        if "text/html" in output.get("data", {})
    ]
    assert links == [
        '<a href="http://example.invalid/runs/100">Notebook job #100</a>',
        '<a href="http://example.invalid/runs/102">Notebook job #102</a>',
    ]
    text = result.executed_notebook.read_text()
    assert "child output" not in text and "child broke" not in text
    assert not list(result.executed_notebook.parent.glob("control/child-*"))


def _sleeping_parent(runtime: Workspace, tmp_path: Path) -> tuple[Path, Path]:
    parent_pid, child_pid = tmp_path / "parent.pid", tmp_path / "child.pid"
    runtime.add(
        "/Users/a/sleeper",
        source(
            f"import os, time\nopen({str(child_pid)!r}, 'w').write(str(os.getpid()))",
            "time.sleep(60)",
        ),
    )
    runtime.add(
        "/Users/a/parent",
        source(
            f"import os\nopen({str(parent_pid)!r}, 'w').write(str(os.getpid()))",
            'dbutils.notebook.run("./sleeper", 120)',
        ),
    )
    return parent_pid, child_pid


def test_cancel_kills_a_running_child_notebook(runtime: Workspace, tmp_path: Path) -> None:
    parent_pid, child_pid = _sleeping_parent(runtime, tmp_path)
    cancel = threading.Event()
    results: list[NotebookResult] = []
    thread = threading.Thread(
        target=lambda: results.append(runtime.run("/Users/a/parent", cancel=cancel))
    )
    thread.start()
    kernels = read_pids(parent_pid, child_pid)
    cancel.set()
    thread.join(timeout=10)
    assert results[0].status == "CANCELED"
    assert_all_gone(kernels, within=10)


def test_the_parents_timeout_kills_its_child(runtime: Workspace, tmp_path: Path) -> None:
    parent_pid, child_pid = _sleeping_parent(runtime, tmp_path)
    results: list[NotebookResult] = []
    thread = threading.Thread(
        target=lambda: results.append(runtime.run("/Users/a/parent", timeout=8))
    )
    thread.start()
    kernels = read_pids(parent_pid, child_pid)
    thread.join(timeout=30)
    assert results[0].status == "TIMEDOUT"
    assert_all_gone(kernels, within=10)


@pytest.mark.slow
def test_a_childs_own_timeout_fails_it_in_the_parent(runtime: Workspace, tmp_path: Path) -> None:
    runtime.add("/Users/a/slow", source("import time\ntime.sleep(60)"))
    runtime.add("/Users/a/parent", source('dbutils.notebook.run("./slow", 2)'))
    started = time.monotonic()
    result = runtime.run("/Users/a/parent")
    assert result.status == "FAILED"
    assert result.error == f"WorkflowException: {CHILD_TIMED_OUT}"
    assert time.monotonic() - started < 30
