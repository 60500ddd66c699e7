"""The sample project (databricks/, models/) checked with plain tools: Rscript, pytest, parsing.

No kernel and no workspace: the model is rebuilt with Rscript, the test scripts run with pytest
and testthat directly, and the notebooks run end to end in a subprocess with stand-in
``dbutils`` globals (widgets and ``notebook.exit``) in place of Databricks'.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATABRICKS = ROOT / "databricks"
TESTS = DATABRICKS / "tests"
MODEL = ROOT / "models" / "churn_model.rds"

PYTEST_CASES = 8  # tests in databricks/tests/pytest/test_features.py
TESTTHAT_CASES = 10  # expectations in databricks/tests/testthat/test-scoring.R

NOTEBOOK_HEADER = "# Databricks notebook source\n"
CELL_SEPARATOR = "\n\n# COMMAND ----------\n\n"

NOTEBOOK_WIDGETS = {
    "tests/run_pytest.py": {
        "tests_dir": "pytest",
        "data_dir": "data",
        "results_dir": "results",
        "code_dir": "..",
    },
    "tests/run_testthat.r": {
        "tests_dir": "testthat",
        "data_dir": "data",
        "model_path": "../../models/churn_model.rds",
        "results_dir": "results",
        "code_dir": "..",
    },
    "tests/run_spark_tests.py": {
        "data_dir": "data",
        "table": "main.churn_test.customer_features",
        "results_dir": "results",
        "code_dir": "..",
    },
    "features_spark.py": {"data_dir": "tests/data", "table": "main.churn.customer_features"},
    "score_customers.r": {
        "model_path": "../models/churn_model.rds",
        "input_path": "tests/data/customers.csv",
        "output_path": "",
        "code_dir": ".",
    },
}

# Stand-in Databricks globals. Widgets take their values from a JSON file of parameters (like
# job base_parameters) or their declared defaults; notebook.exit stops the notebook and records
# its value in the "exit" file. Either runner exits non-zero when the notebook raises.
PYTHON_RUNNER = """
import json, sys

notebook, params_file, exit_file = sys.argv[1:4]
params = json.load(open(params_file))

class NotebookExit(BaseException):
    pass

class Widgets:
    def __init__(self):
        self.values = {}
    def text(self, name, default, label=None):
        self.values[name] = str(params.get(name, default))
    def get(self, name):
        return self.values[name]

class Notebook:
    def exit(self, value):
        raise NotebookExit(value)

class DBUtils:
    widgets = Widgets()
    notebook = Notebook()

sys.path.insert(0, ".")
source = open(notebook).read()
try:
    exec(compile(source, notebook, "exec"), {"__name__": "__main__", "dbutils": DBUtils()})
except NotebookExit as done:
    open(exit_file, "w").write(str(done.args[0]))
"""

R_RUNNER = """
args <- commandArgs(trailingOnly = TRUE)
notebook <- args[[1]]; exit_file <- args[[3]]
params <- jsonlite::fromJSON(args[[2]], simplifyVector = FALSE)
widgets <- new.env()
dbutils.widgets.text <- function(name, defaultValue, label = NULL) {
  value <- if (is.null(params[[name]])) defaultValue else params[[name]]
  assign(name, as.character(value), envir = widgets)
}
dbutils.widgets.get <- function(name) get(name, envir = widgets, inherits = FALSE)
dbutils.notebook.exit <- function(value) {
  done <- list(message = "exit", call = NULL, value = value)
  stop(structure(class = c("notebook_exit", "condition"), done))
}
tryCatch(
  source(notebook, local = globalenv()),
  notebook_exit = function(done) writeLines(as.character(done$value), exit_file)
)
"""


def run_notebook(
    notebook: Path, tmp_path: Path, params: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, object] | None]:
    """Run a notebook from its own folder; return the process and its exit value (parsed JSON)."""
    params_file = tmp_path / "params.json"
    params_file.write_text(json.dumps(params or {}))
    exit_file = tmp_path / "exit.json"
    exit_file.unlink(missing_ok=True)
    if notebook.suffix == ".py":
        command = [sys.executable, "-c", PYTHON_RUNNER]
    else:
        command = ["Rscript", "-e", R_RUNNER]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for name in ("CHURN_DATA_DIR", "CHURN_CODE_DIR", "CHURN_MODEL_PATH"):
        env.pop(name, None)
    process = subprocess.run(
        [*command, notebook.name, str(params_file), str(exit_file)],
        cwd=notebook.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    exit_value = json.loads(exit_file.read_text()) if exit_file.exists() else None
    return process, exit_value


def junit_counts(path: Path) -> dict[str, int]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    return {
        key: sum(int(suite.get(key, "0")) for suite in suites)
        for key in ("tests", "failures", "errors", "skipped")
    }


def junit_suite_names(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    return [suite.get("name", "") for suite in suites]


def copy_project(tmp_path: Path) -> Path:
    """A copy of databricks/ and models/ laid out as in the repo, to run notebooks in place."""
    project = tmp_path / "project"
    ignore = shutil.ignore_patterns("__pycache__", "results", ".pytest_cache")
    shutil.copytree(DATABRICKS, project / "databricks", ignore=ignore)
    shutil.copytree(ROOT / "models", project / "models", ignore=ignore)
    return project


def run_testthat_script(tests_dir: Path, junit: Path, code_dir: Path) -> None:
    expression = (
        "invisible(testthat::test_dir(Sys.getenv('TESTS_DIR'), "
        "reporter = testthat::JunitReporter$new(file = Sys.getenv('JUNIT')), "
        "stop_on_failure = FALSE))"
    )
    env = {
        **os.environ,
        "TESTS_DIR": str(tests_dir),
        "JUNIT": str(junit),
        "CHURN_CODE_DIR": str(code_dir),
        "CHURN_MODEL_PATH": str(MODEL),
        "CHURN_DATA_DIR": str(TESTS / "data"),
    }
    subprocess.run(["Rscript", "-e", expression], env=env, check=True, timeout=240)


# --- the model ---------------------------------------------------------------------------------


def _without_writer_version(rds: bytes) -> bytes:
    # An uncompressed RDS v2 file starts "X\n", format version, writing R version, minimal R
    # version (4 bytes each): only the writing R version may differ between R installations.
    return rds[:6] + rds[10:]


def test_model_rebuild_is_byte_identical_to_committed_model(tmp_path: Path) -> None:
    builds = []
    for name in ("first.rds", "second.rds"):
        subprocess.run(
            ["Rscript", str(ROOT / "models" / "train_model.R"), str(tmp_path / name)],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            timeout=240,
        )
        builds.append((tmp_path / name).read_bytes())
    committed = MODEL.read_bytes()

    assert builds[0] == builds[1]
    assert builds[0][:2] == b"X\n", "expected an uncompressed XDR RDS file"
    assert _without_writer_version(builds[0]) == _without_writer_version(committed)
    if builds[0][6:10] == committed[6:10]:  # same R version as the one that wrote the model
        assert builds[0] == committed


def test_model_is_a_plain_list_with_named_coefficients() -> None:
    expression = (
        "m <- readRDS(commandArgs(TRUE)[[1]]); "
        "cat(jsonlite::toJSON(list(class = class(m), features = m$features, "
        "coefficients = as.list(m$coefficients), threshold = m$threshold), auto_unbox = TRUE))"
    )
    result = subprocess.run(
        ["Rscript", "-e", expression, str(MODEL)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    model = json.loads(result.stdout)

    assert model["class"] == "list"
    assert model["features"] == ["tenure_months", "monthly_charges", "support_calls"]
    assert list(model["coefficients"]) == ["(Intercept)", *model["features"]]
    assert model["coefficients"]["support_calls"] > 0 > model["coefficients"]["tenure_months"]
    assert model["threshold"] == 0.5


# --- the test scripts, run directly --------------------------------------------------------------


def test_pytest_scripts_pass_and_write_junit(tmp_path: Path) -> None:
    junit = tmp_path / "pytest.xml"
    env = {
        **os.environ,
        "PYTHONPATH": str(DATABRICKS),
        "PYTHONDONTWRITEBYTECODE": "1",
        "CHURN_DATA_DIR": str(TESTS / "data"),
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(TESTS / "pytest"),
            f"--junitxml={junit}",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=240,
    )

    assert junit_counts(junit) == {"tests": PYTEST_CASES, "failures": 0, "errors": 0, "skipped": 0}


def test_testthat_scripts_pass_and_write_junit(tmp_path: Path) -> None:
    junit = tmp_path / "testthat.xml"

    run_testthat_script(TESTS / "testthat", junit, DATABRICKS)

    counts = junit_counts(junit)
    assert counts == {"tests": TESTTHAT_CASES, "failures": 0, "errors": 0, "skipped": 0}
    assert junit_suite_names(junit) == ["scoring"]


def test_testthat_reports_a_broken_scoring_function_as_failures(tmp_path: Path) -> None:
    code_dir = tmp_path / "code"
    (code_dir / "churn").mkdir(parents=True)
    source = (DATABRICKS / "churn" / "scoring.R").read_text()
    broken = source.replace(
        "as.integer(probabilities >= threshold)", "as.integer(0 * probabilities)"
    )
    assert broken != source
    (code_dir / "churn" / "scoring.R").write_text(broken)
    junit = tmp_path / "testthat.xml"

    run_testthat_script(TESTS / "testthat", junit, code_dir)

    assert junit_counts(junit)["failures"] == 2


# --- the notebooks' sources ----------------------------------------------------------------------


@pytest.mark.parametrize("notebook", sorted(NOTEBOOK_WIDGETS))
def test_notebook_is_a_databricks_source_file(notebook: str) -> None:
    text = (DATABRICKS / notebook).read_text()
    cells = text[len(NOTEBOOK_HEADER) :].removesuffix("\n").split(CELL_SEPARATOR)

    assert text.startswith(NOTEBOOK_HEADER)
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert "\r" not in text
    assert len(cells) >= 3
    assert all(cell.strip() and cell == cell.strip("\n") for cell in cells)
    assert text.count("# COMMAND ----------") == len(cells) - 1
    assert cells[0].startswith("# MAGIC %md\n")
    assert all(line.startswith("# MAGIC") for line in cells[0].splitlines())


@pytest.mark.parametrize("notebook", sorted(NOTEBOOK_WIDGETS))
def test_notebook_declares_every_widget_it_reads(notebook: str) -> None:
    text = (DATABRICKS / notebook).read_text()
    declared = dict(re.findall(r'dbutils\.widgets\.text\("(\w+)", "([^"]*)"\)', text))
    read = set(re.findall(r'dbutils\.widgets\.get\("(\w+)"\)', text))

    assert declared == NOTEBOOK_WIDGETS[notebook]
    assert read == set(declared)
    assert text.count("dbutils.notebook.exit(") == 1


# --- the notebooks, end to end with stand-in dbutils ---------------------------------------------


def test_run_pytest_notebook_with_defaults_writes_junit_and_exits(tmp_path: Path) -> None:
    project = copy_project(tmp_path)

    process, exit_value = run_notebook(project / "databricks/tests/run_pytest.py", tmp_path)

    assert process.returncode == 0, process.stderr
    expected = {"tests": PYTEST_CASES, "failures": 0, "errors": 0, "skipped": 0}
    assert exit_value == expected
    junit = project / "databricks/tests/results/run_pytest.xml"
    assert junit_counts(junit) == expected
    assert junit_suite_names(junit) == ["run_pytest"]


def test_run_pytest_notebook_fails_after_writing_junit(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    tests_dir = project / "databricks/tests/pytest"
    (tests_dir / "test_broken.py").write_text("def test_broken():\n    assert 1 == 2\n")
    results = tmp_path / "absolute results"

    process, exit_value = run_notebook(
        project / "databricks/tests/run_pytest.py", tmp_path, {"results_dir": str(results)}
    )

    assert process.returncode != 0
    assert "AssertionError: pytest failed" in process.stderr
    assert exit_value is None
    assert junit_counts(results / "run_pytest.xml")["failures"] == 1
    assert junit_counts(results / "run_pytest.xml")["tests"] == PYTEST_CASES + 1


def test_run_testthat_notebook_with_defaults_writes_junit_and_exits(tmp_path: Path) -> None:
    project = copy_project(tmp_path)

    process, exit_value = run_notebook(project / "databricks/tests/run_testthat.r", tmp_path)

    assert process.returncode == 0, process.stderr
    expected = {"tests": TESTTHAT_CASES, "failures": 0, "errors": 0, "skipped": 0}
    assert exit_value == expected
    assert junit_counts(project / "databricks/tests/results/run_testthat.xml") == expected


def test_run_testthat_notebook_fails_after_writing_junit(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    broken = project / "databricks/tests/testthat/test-broken.R"
    broken.write_text('test_that("broken", {\n  expect_equal(1, 2)\n})\n')
    results = tmp_path / "absolute results"

    process, exit_value = run_notebook(
        project / "databricks/tests/run_testthat.r",
        tmp_path,
        {"results_dir": str(results), "model_path": str(MODEL)},
    )

    assert process.returncode != 0
    assert "testthat failed: 1 failed" in process.stderr
    assert exit_value is None
    counts = junit_counts(results / "run_testthat.xml")
    assert counts["failures"] == 1
    assert counts["tests"] == TESTTHAT_CASES + 1
    assert junit_suite_names(results / "run_testthat.xml") == ["broken", "scoring"]


def test_score_customers_notebook_scores_the_test_data(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    output = tmp_path / "out" / "scores.csv"

    process, exit_value = run_notebook(
        project / "databricks/score_customers.r", tmp_path, {"output_path": str(output)}
    )

    assert process.returncode == 0, process.stderr
    assert exit_value is not None
    assert exit_value["rows"] == 20
    assert exit_value["accuracy"] >= 0.75
    assert 0 < exit_value["predicted_churn"] < 20
    assert len(output.read_text().splitlines()) == 21
