"""The speed benchmark's floors do the work they stand for: a floor that ran less than the
build's tests would flatter every ratio (``python -m bench.local_speed``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.kit.sample import copy_sample_project
from bench.local_speed import notebook_code, run_in_kernel, spark_code

pytestmark = pytest.mark.timeout(180)


def test_notebook_code_keeps_the_code_cells_only() -> None:
    source = (
        "# Databricks notebook source\n# MAGIC %md\n# MAGIC # Title\n\n"
        "# COMMAND ----------\n\nx = 1\n\n# COMMAND ----------\n\nprint(x)\n"
    )
    code = notebook_code(source)
    assert "MAGIC" not in code and "notebook source" not in code
    namespace: dict[str, object] = {}
    exec(compile(code, "nb", "exec"), namespace)  # the test's own source
    assert namespace["x"] == 1


@pytest.mark.slow
def test_the_spark_floor_runs_the_samples_spark_tests_in_a_bare_kernel(tmp_path: Path) -> None:
    project = copy_sample_project(tmp_path / "sample")
    tests = project / "databricks" / "tests"
    code = spark_code(project, tests / "data", tmp_path / "scratch")
    assert run_in_kernel("python3", code, tests) > 0
    junit = (tmp_path / "scratch" / "results" / "run_spark_tests.xml").read_text()
    assert 'tests="5"' in junit and 'failures="0"' in junit


def test_the_deploy_benchmark_says_met_only_when_both_halves_were_measured() -> None:
    from bench.deploy import verdict

    assert verdict([True, True], complete=True) == "met"
    assert verdict([True], complete=False) == ""  # no legacy CLI: only the bound was measured
    assert verdict([False], complete=False) == "MISSED"
    assert verdict([True, False], complete=True) == "MISSED"
