"""``dbutils.notebook.run`` end to end: a notebook run by the executor starts a child notebook.

The parent runs through :func:`execute_notebook` in a real kernel; its shim asks the parent's
run for the child, which looks it up in a real workspace store and runs it in a kernel of its
own. The parent reports what ``run`` returned or raised
through ``dbutils.notebook.exit``: a failed child raises Databricks' WorkflowException message,
which carries nothing of the child's error.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from orchestrator.local.kernel.notebook_util import CHILD_FAILED
from orchestrator.local.runtime.execution import ExecutionRequest, NotebookResult, NotebookSource
from orchestrator.local.runtime.executor import execute_notebook
from orchestrator.local.runtime.resolver import make_sqlite_resolver
from orchestrator.local.state.store import ObjectRow, Store, now_ms
from tests.tools import require_r

pytestmark = pytest.mark.slow  # real kernels (tests/tiers.py)

FOLDER = "/Users/a@example.com/build/tests"

PY_CHILD_OK = """\
# Databricks notebook source
dbutils.widgets.text("x", "default")

# COMMAND ----------

dbutils.notebook.exit("child got " + dbutils.widgets.get("x"))
"""

PY_CHILD_FAIL = """\
# Databricks notebook source
print("about to fail")

# COMMAND ----------

1 / 0
"""

PY_CHILD_NO_EXIT = """\
# Databricks notebook source
x = 1
"""

PY_PARENT = """\
# Databricks notebook source
value = dbutils.notebook.run("./py_child_ok", 60, {"x": "from parent"})
none = dbutils.notebook.run("/Workspace/Users/a@example.com/build/tests/py_child_no_exit", 60)
try:
    dbutils.notebook.run("../tests/py_child_fail", 60)
except Exception as e:
    failure = f"{type(e).__name__}|{e}"
dbutils.notebook.exit(f"{value}|{none!r}|{failure}")
"""

R_CHILD_OK = """\
# Databricks notebook source
dbutils.notebook.exit(paste("r child got", dbutils.widgets.get("x")))
"""

R_PARENT = """\
# Databricks notebook source
value <- dbutils.notebook.run("r_child_ok", 60, list(x = "from R"))
failure <- tryCatch(
  dbutils.notebook.run("./py_child_fail", 60),
  WorkflowException = function(e) conditionMessage(e)
)
dbutils.notebook.exit(paste(value, failure, sep = "|"))
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("state"))
    stamp = now_ms()
    parts = FOLDER.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        folder = "/" + "/".join(parts[:i])
        store.put_object(ObjectRow(folder, "DIRECTORY", None, i, stamp, stamp, None))
        store.local_path(folder).mkdir(parents=True, exist_ok=True)
    notebooks = {
        "py_child_ok": ("PYTHON", PY_CHILD_OK),
        "py_child_fail": ("PYTHON", PY_CHILD_FAIL),
        "py_child_no_exit": ("PYTHON", PY_CHILD_NO_EXIT),
        "py_parent": ("PYTHON", PY_PARENT),
        "r_child_ok": ("R", R_CHILD_OK),
        "r_parent": ("R", R_PARENT),
    }
    for n, (name, (language, text)) in enumerate(notebooks.items(), start=100):
        path = f"{FOLDER}/{name}"
        store.local_path(path).write_text(text, encoding="utf-8")
        store.put_object(ObjectRow(path, "NOTEBOOK", language, n, stamp, stamp, len(text)))
    return store


def run_notebook(store: Store, name: str, language: str, scratch: Path) -> NotebookResult:
    path = f"{FOLDER}/{name}"
    request = ExecutionRequest(
        notebook=NotebookSource(path, store.local_path(path), language),  # type: ignore[arg-type]
        parameters={},
        workspace_root=store.workspace_root,
        dbfs_root=store.dbfs_root,
        scratch_dir=scratch,
        state_db=store.db_path,
        timeout_seconds=180,
    )
    resolver = make_sqlite_resolver(store.db_path, store.workspace_root)
    return execute_notebook(request, resolver=resolver, cancel=threading.Event())


def test_python_notebook_run_returns_exit_values_and_raises_on_failure(
    store: Store, tmp_path: Path
) -> None:
    result = run_notebook(store, "py_parent", "PYTHON", tmp_path / "scratch")
    assert result.status == "SUCCESS", (result.error, result.error_trace, result.logs)
    assert result.exit_value is not None
    value, none, failure = result.exit_value.split("|", 2)
    assert value == "child got from parent"
    assert none == "''"  # a child that does not call exit returns ""
    assert failure == f"WorkflowException|{CHILD_FAILED}"
    assert "ZeroDivisionError" not in failure and "about to fail" not in failure


def test_r_notebook_run_returns_exit_values_and_raises_on_failure(
    store: Store, tmp_path: Path
) -> None:
    require_r()
    result = run_notebook(store, "r_parent", "R", tmp_path / "scratch")
    assert result.status == "SUCCESS", (result.error, result.error_trace, result.logs)
    assert result.exit_value is not None
    value, failure = result.exit_value.split("|", 1)
    assert value == "r child got from R"
    assert failure == CHILD_FAILED  # conditionMessage of the R WorkflowException condition
    assert "ZeroDivisionError" not in failure
