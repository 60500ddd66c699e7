"""The child-notebook entry point and the sqlite resolver, with real kernels and processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from orchestrator.local.runtime import NotebookNotFound, NotebookResult, make_sqlite_resolver
from tests.local import conftest_runtime
from tests.local.conftest_runtime import Workspace, assert_all_gone, read_pids, source

ws = conftest_runtime.ws  # the fixture
pytestmark = pytest.mark.timeout(120)


def test_sqlite_resolver(ws: Workspace) -> None:
    ws.add("/Users/a/nb", source("x <- 1", language="R"), language="R")
    with sqlite3.connect(ws.state_db) as db:
        db.execute("INSERT INTO objects VALUES ('/Users/a', 'DIRECTORY', NULL)")
        db.execute("INSERT INTO objects VALUES ('/Users/a/odd', 'NOTEBOOK', 'COBOL')")
    resolve = make_sqlite_resolver(ws.state_db, ws.workspace_root)
    found = resolve("/Users/a/./nb")
    assert (found.workspace_path, found.language) == ("/Users/a/nb", "R")
    assert found.file == ws.workspace_root / "Users/a/nb"
    for missing in ("/Users/a/none", "/Users/a", "/Users/a/odd", "relative/path"):
        with pytest.raises(NotebookNotFound):
            resolve(missing)
    assert issubclass(NotebookNotFound, LookupError)


def _child_env(ws: Workspace, control_dir: Path) -> dict[str, str]:
    control_dir.mkdir(parents=True, exist_ok=True)
    return dict(
        os.environ,
        ORCH_STATE_DB=str(ws.state_db),
        ORCH_WORKSPACE_ROOT=str(ws.workspace_root),
        ORCH_DBFS_ROOT=str(ws.dbfs_root),
        ORCH_CONTROL_DIR=str(control_dir),
        ORCH_SECRETS=json.dumps({"scope": {"key": "s3cr3t"}}),
        ORCH_NOTEBOOK_PATH="/Users/a/parent",
        ORCH_PARAMS=json.dumps({"from_parent": "must not leak"}),
    )


def _child_command(path: str, result_file: Path, args: dict[str, str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "orchestrator.local.runtime.child",
        "--path",
        path,
        "--timeout",
        "60",
        "--args",
        json.dumps(args),
        "--result-file",
        str(result_file),
    ]


def test_child_cli_runs_a_notebook_with_its_args_only(ws: Workspace, tmp_path: Path) -> None:
    ws.add(
        "/Users/a/child",
        source(
            "import json\n"
            "assert dbutils.secrets.get('scope', 'key') == 's3cr3t'\n"
            "dbutils.notebook.exit(json.dumps(dbutils.widgets.getAll()))"
        ),
    )
    result_file = tmp_path / "out" / "result.json"
    control = tmp_path / "control"
    done = subprocess.run(
        _child_command("./child", result_file, {"x": "7"}),
        env=_child_env(ws, control),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(result_file.read_text())
    assert result["status"] == "SUCCESS"
    assert json.loads(result["exit_value"]) == {"x": "7"}
    scratch = [p for p in control.iterdir() if p.name.startswith("child-")]
    assert len(scratch) == 1
    assert (scratch[0] / "executed_notebook.ipynb").exists()


def test_child_cli_reports_failures(ws: Workspace, tmp_path: Path) -> None:
    ws.add("/Users/a/bad", source("raise KeyError('nope')"))
    env = _child_env(ws, tmp_path / "control")
    for path, expected in (("/Users/a/bad", "KeyError: 'nope'"), ("/Users/a/none", "not found")):
        result_file = tmp_path / f"{path.rsplit('/', 1)[1]}.json"
        done = subprocess.run(
            _child_command(path, result_file, {}), env=env, timeout=60, check=False
        )
        assert done.returncode == 1
        result = json.loads(result_file.read_text())
        assert result["status"] == "FAILED"
        assert expected in result["error"]


def test_child_cli_sigterm_kills_its_kernel(ws: Workspace, tmp_path: Path) -> None:
    pid_file = tmp_path / "kernel.pid"
    ws.add(
        "/Users/a/sleeper",
        source(
            f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))",
            "time.sleep(60)",
        ),
    )
    result_file = tmp_path / "result.json"
    process = subprocess.Popen(
        _child_command("/Users/a/sleeper", result_file, {}), env=_child_env(ws, tmp_path / "c")
    )
    try:
        (kernel,) = read_pids(pid_file)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 1
    finally:
        process.kill()
        process.wait()
    assert json.loads(result_file.read_text())["status"] == "CANCELED"
    assert_all_gone([kernel], within=1)


def test_cancel_kills_a_running_child_notebook(ws: Workspace, tmp_path: Path) -> None:
    parent_pid, child_pid = tmp_path / "parent.pid", tmp_path / "child.pid"
    ws.add(
        "/Users/a/sleeper",
        source(
            f"import os, time\nopen({str(child_pid)!r}, 'w').write(str(os.getpid()))",
            "time.sleep(60)",
        ),
    )
    ws.add(
        "/Users/a/parent",
        source(
            f"import os\nopen({str(parent_pid)!r}, 'w').write(str(os.getpid()))",
            'dbutils.notebook.run("./sleeper", 120)',
        ),
    )
    cancel = threading.Event()
    results: list[NotebookResult] = []
    thread = threading.Thread(
        target=lambda: results.append(ws.run("/Users/a/parent", cancel=cancel))
    )
    thread.start()
    parent_kernel, child_kernel = read_pids(parent_pid, child_pid)
    tree = [parent_kernel] + [p.pid for p in psutil.Process(parent_kernel).children(recursive=True)]
    assert child_kernel in tree
    cancel.set()
    started = time.monotonic()
    thread.join(timeout=10)
    assert time.monotonic() - started < 2
    assert results[0].status == "CANCELED"
    assert_all_gone(tree, within=1)
