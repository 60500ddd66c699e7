"""Child notebook runs (dbutils.notebook.run) served by the parent's run, and the sqlite
resolver, with real kernels."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from orchestrator.local.runtime.children import ChildRuns
from orchestrator.local.runtime.execution import NotebookResult
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
    runtime.add("/Users/a/bad", source("raise KeyError('nope')"))
    runtime.add(
        "/Users/a/parent",
        source(
            "errors = []\n"
            "for path in ('./bad', './none'):\n"
            "    try:\n"
            "        dbutils.notebook.run(path, 60)\n"
            "    except Exception as exc:\n"
            "        errors.append(str(exc).splitlines()[0])\n"
            "dbutils.notebook.exit(' | '.join(errors))"
        ),
    )
    result = runtime.run("/Users/a/parent")
    assert result.status == "SUCCESS", result.error
    bad, missing = (result.exit_value or "").split(" | ")
    assert bad.startswith("FAILED: KeyError: 'nope'")
    assert "Notebook not found: /Users/a/none" in missing


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
    assert "TIMEDOUT" in (result.error or "")
    assert time.monotonic() - started < 30
