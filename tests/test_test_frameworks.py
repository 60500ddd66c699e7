"""Test frameworks that write no JUnit never make a failing notebook green: real nutter test
notebooks (nutter's results are decoded in the run, by the build's nutter notebook), and the
counts and names a testthat or unittest run prints."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from tests.tools import require_r

pytestmark = pytest.mark.slow  # real kernels (tests/tiers.py)

#: nutter is no runtime library: the notebook installs it, as it must on Databricks (the version
#: of the tool's own lock, so pip's cache has it)
NUTTER = """# Databricks notebook source
# MAGIC %pip install nutter==0.1.35

# COMMAND ----------

from runtime.nutterfixture import NutterFixture


class ChurnFixture(NutterFixture):
    def before_all(self):
        self.rows = [3, 1, 2]

    def run_sorting(self):
        self.ordered = sorted(self.rows)

    def assertion_sorting(self):
        assert self.ordered == [1, 2, 3]

    def run_total(self):
        self.total = sum(self.rows)

    def assertion_total(self):
        assert self.total == 6

    def run_largest(self):
        self.largest = max(self.rows)

    def assertion_largest(self):
        assert self.largest == LARGEST, f"the largest is {self.largest}"

# COMMAND ----------

result = ChurnFixture().execute_tests()
print(result.to_string())
result.exit(dbutils)
"""


def repo(root: Path, largest: int) -> Path:
    (root / "notebooks").mkdir(parents=True)
    source = NUTTER.replace("LARGEST", str(largest))
    (root / "notebooks" / "test_churn.py").write_text(source)
    (root / "orchestrator.yml").write_text("version: 1\n")
    task: dict[str, Any] = {
        "task_key": "churn",
        "existing_cluster_id": "${cluster_id}",
        "notebook_task": {"notebook_path": "notebooks/test_churn"},
    }
    (root / "job-template.json").write_text(json.dumps({"name": "${job_name}", "tasks": [task]}))
    return root


def build(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, ET.Element]:
    monkeypatch.chdir(root)
    for name in ("TF_BUILD", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    code = main(["build", "--repo-name", "nut", "--build-id", "n1"])
    captured = capsys.readouterr()
    return code, captured.out, ET.parse(root / "test-results" / "TEST-nut-n1.xml").getroot()


def cases(xml: ET.Element) -> dict[str, ET.Element]:
    return {c.get("name", ""): c for c in xml.iter("testcase")}


def test_a_nutter_notebook_with_a_failing_case_fails_the_build_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, xml = build(repo(tmp_path / "red", largest=2), monkeypatch, capsys)
    assert code == 1, out
    found = cases(xml)
    assert sorted(found) == ["largest", "sorting", "total"]
    failure = found["largest"].find("failure")
    assert failure is not None and "the largest is 3" in failure.get("message", "")
    assert found["sorting"].find("failure") is None and found["total"].find("failure") is None
    assert "FAILED: 1 failed, 2 passed of 3 tests" in out
    assert "largest" in out


def test_a_nutter_notebook_whose_cases_pass_is_green_with_each_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, xml = build(repo(tmp_path / "green", largest=3), monkeypatch, capsys)
    assert code == 0, out
    assert sorted(cases(xml)) == ["largest", "sorting", "total"]
    assert "PASSED: 3 passed of 3 tests" in out


R_RUNNER = """# Databricks notebook source
library(testthat)

# COMMAND ----------

testthat::test_dir("../tests", stop_on_failure = FALSE)
"""

UNITTEST_RUNNER = """# Databricks notebook source
import unittest


class Totals(unittest.TestCase):
    def test_sum(self):
        self.assertEqual(sum([1, 2]), 3)

    def test_max(self):
        self.assertEqual(max([1, 2]), 1, "max is wrong")

    @unittest.skip("not yet")
    def test_min(self):
        pass

# COMMAND ----------

unittest.main(argv=["x"], exit=False, verbosity=2)
"""


def frameworks_repo(root: Path) -> Path:
    (root / "notebooks").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "tests" / "test-stats.R").write_text(
        'test_that("doubling works", {\n  expect_equal(2 * 2, 4)\n  expect_true(TRUE)\n})\n\n'
        'test_that("halving works", {\n  expect_equal(4 / 2, 3)\n})\n'
    )
    (root / "notebooks" / "run_testthat.r").write_text(R_RUNNER)
    (root / "notebooks" / "run_unittest.py").write_text(UNITTEST_RUNNER)
    (root / "orchestrator.yml").write_text("version: 1\n")
    tasks = [
        {
            "task_key": key,
            "existing_cluster_id": "${cluster_id}",
            "notebook_task": {"notebook_path": f"notebooks/{key}"},
        }
        for key in ("run_testthat", "run_unittest")
    ]
    (root / "job-template.json").write_text(json.dumps({"name": "${job_name}", "tasks": tasks}))
    return root


def test_testthat_and_unittest_without_junit_are_counted_and_their_failures_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    require_r()
    code, out, xml = build(frameworks_repo(tmp_path / "fw"), monkeypatch, capsys)
    assert code == 1, out
    suites = {s.get("name"): s for s in xml.iter("testsuite")}
    testthat = suites["run_testthat"]  # expectations: 2 passed, 1 failed
    assert (testthat.get("tests"), testthat.get("failures")) == ("3", "1"), out
    names = [c.get("name") for c in testthat if c.find("failure") is not None]
    assert names == ["halving works"]
    unit = suites["run_unittest"]  # tests: 1 passed, 1 failed, 1 skipped
    assert (unit.get("tests"), unit.get("failures"), unit.get("skipped")) == ("3", "1", "1")
    names = [c.get("name") for c in unit if c.find("failure") is not None]
    assert names == ["test_max (__main__.Totals.test_max)"]
    assert "halving works failed" in out and "test_max" in out
