"""A failing build names the user's notebook, cell and error, read only through what a real
workspace answers: the local workspace is as sparing as Databricks (a child run's failure
reaches its caller as the documented ``WorkflowException`` and a "Notebook job #N" link, the
caller's export shows the link, not the child's cells), so what these builds report is what a
build on Databricks reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from tests.tools import require_r

pytestmark = pytest.mark.slow  # real kernels (tests/tiers.py)

RUNNER = """# Databricks notebook source
# MAGIC %md
# MAGIC Runs the checks notebook, as a team's runner notebooks do.

# COMMAND ----------

print("starting the checks")

# COMMAND ----------

result = dbutils.notebook.run("./checks", 120, {"source": "customers"})
print(result)
"""

CHECKS = """# Databricks notebook source
# MAGIC %md
# MAGIC Data checks.

# COMMAND ----------

def check_unique(ids):
    if len(set(ids)) != len(ids):
        raise ValueError("customer ids must be unique")

# COMMAND ----------

ids = [1, 2, 2, 3]
print(f"checking {len(ids)} ids")

# COMMAND ----------

check_unique(ids)  # the failing cell: the 4th of the notebook
print("unreachable")

# COMMAND ----------

print("after the failure")
"""

PYTEST_RUNNER = """# Databricks notebook source
import os
import sys

import pytest

# COMMAND ----------

os.chdir("..")
sys.dont_write_bytecode = True
print("\\n".join(f"Collecting package-{n}" for n in range(80)))  # a lot of pip-like noise

# COMMAND ----------

retcode = pytest.main(["tests", "-q", "-p", "no:cacheprovider"])
assert retcode == 0, f"pytest failed with exit code {retcode}"
"""


R_RUNNER = """# Databricks notebook source
library(testthat)

# COMMAND ----------

# MAGIC %run ./helpers

# COMMAND ----------

print(load_data())
"""

R_HELPERS = """# Databricks notebook source
load_data <- function() {
  c(1, 2, 3)
}

# COMMAND ----------

check_schema <- function(x) {
  if (length(x) < 5) stop("schema check failed: too few columns")
}
check_schema(load_data())
"""


def template(*tasks: dict[str, Any]) -> str:
    return json.dumps({"name": "${job_name}", "tasks": list(tasks)}, indent=2)


def task(key: str, notebook: str, **more: Any) -> dict[str, Any]:
    return {
        "task_key": key,
        "existing_cluster_id": "${cluster_id}",
        "notebook_task": {"notebook_path": notebook},
        **more,
    }


def repo(root: Path) -> Path:
    (root / "notebooks").mkdir(parents=True)
    (root / "notebooks" / "run_checks.py").write_text(RUNNER)
    (root / "notebooks" / "checks.py").write_text(CHECKS)
    (root / "notebooks" / "run_unit_tests.py").write_text(PYTEST_RUNNER)
    (root / "notebooks" / "run_r.r").write_text(R_RUNNER)
    (root / "notebooks" / "helpers.r").write_text(R_HELPERS)
    (root / "tests").mkdir()
    (root / "tests" / "test_math.py").write_text(
        "def test_ok():\n    assert 1 + 1 == 2\n\n\n"
        "def test_pivot():\n    assert sorted([3, 1]) == [3, 1], 'not sorted as expected'\n"
    )
    (root / "orchestrator.yml").write_text("version: 1\n")
    (root / "job-template.json").write_text(
        template(
            task("checks", "notebooks/run_checks"),
            task("unit", "notebooks/run_unit_tests"),
            task("after_checks", "notebooks/run_unit_tests", depends_on=[{"task_key": "checks"}]),
            task("r_helpers", "notebooks/run_r"),
        )
    )
    return root


@pytest.fixture
def failing_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, ET.Element]:
    root = repo(tmp_path / "team-repo")
    monkeypatch.chdir(root)
    for name in ("TF_BUILD", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    code = main(["build", "--repo-name", "team", "--build-id", "f1"])
    captured = capsys.readouterr()
    xml = ET.parse(root / "test-results" / "TEST-team-f1.xml").getroot()
    return code, captured.out + captured.err, xml


def case(xml: ET.Element, suite: str, name: str | None = None) -> ET.Element:
    found = [c for s in xml.iter("testsuite") if s.get("name") == suite for c in s]
    if name is not None:
        found = [c for c in found if c.get("name") == name]
    (one,) = found
    return one


def test_a_failing_child_notebook_is_named_with_its_cell_and_error(
    failing_build: tuple[int, str, ET.Element],
) -> None:
    code, out, xml = failing_build
    assert code == 1, out
    failure = case(xml, "checks").find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert message == "ValueError: customer ids must be unique (notebooks/checks, cell 4)"
    details = failure.text or ""
    assert "Failed in notebooks/checks, cell 4" in details
    assert "through notebooks/run_checks" in details
    assert "> check_unique(ids)  # the failing cell: the 4th of the notebook" in details
    assert 'raise ValueError("customer ids must be unique")' in details  # the user's frames
    # every cell numbered as the notebook UI numbers it, the same in every message
    assert "cell 4, line 1" in details and "cell 2, line 3, in check_unique" in details
    assert "Cell In[" not in details
    assert "checking 4 ids" in details  # what the child printed before it failed
    assert "after the failure" not in details  # cells after the failing one are left out
    assert "Run: http://127.0.0.1" in details  # the child's own run
    assert "WorkflowException" not in details  # only says that a notebook it ran failed
    # the console names the child's cell too, never as the runner's
    assert "notebooks/checks, cell 4" in out


def test_a_failing_pytest_is_named_through_the_notebook_model(
    failing_build: tuple[int, str, ET.Element],
) -> None:
    """pytest wrote no JUnit here: its tests are counted and named from what it printed."""
    _, out, xml = failing_build
    failure = case(xml, "unit", "tests/test_math.py::test_pivot").find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert message == "tests/test_math.py::test_pivot failed (notebooks/run_unit_tests, cell 3)"
    details = failure.text or ""
    assert "FAILED tests/test_math.py::test_pivot - AssertionError: not sorted as expected" in (
        details
    )
    assert "counted from the pytest output" in details
    passed = case(xml, "unit", "passed test 1")
    assert passed.find("failure") is None
    assert "tests/test_math.py::test_pivot" in out


def test_a_task_whose_upstream_failed_is_skipped_and_failed_tasks_have_their_durations(
    failing_build: tuple[int, str, ET.Element],
) -> None:
    _, _, xml = failing_build
    skipped = case(xml, "after_checks").find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "not run: upstream task checks failed"
    assert float(case(xml, "checks").get("time") or 0) > 0
    unit = [s for s in xml.iter("testsuite") if s.get("name") == "unit"]
    assert float(unit[0].get("time") or 0) > 0


def test_a_failure_inside_a_run_helper_names_the_helper_and_its_cell(
    failing_build: tuple[int, str, ET.Element],
) -> None:
    require_r()
    _, out, xml = failing_build
    failure = case(xml, "r_helpers").find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert message.endswith("schema check failed: too few columns (notebooks/helpers, cell 2)")
    details = failure.text or ""
    assert "through notebooks/run_r, cell 2" in details
    assert '>   if (length(x) < 5) stop("schema check failed: too few columns")' in details
    assert "notebooks/helpers, cell 2" in out
