# Databricks notebook source
# MAGIC %md
# MAGIC # Run the pytest tests
# MAGIC
# MAGIC Runs the pytest scripts in `tests_dir` against the code in `code_dir` and writes JUnit XML
# MAGIC to `<results_dir>/run_pytest.xml` (one suite, `run_pytest`). The notebook fails when a
# MAGIC test fails, after the XML is written, and otherwise exits with a JSON summary.
# MAGIC
# MAGIC | widget | default | meaning |
# MAGIC |---|---|---|
# MAGIC | `tests_dir` | `pytest` | folder of the pytest scripts |
# MAGIC | `data_dir` | `data` | folder of the test data (given to the tests as `CHURN_DATA_DIR`) |
# MAGIC | `results_dir` | `results` | where the JUnit XML goes (created if missing) |
# MAGIC | `code_dir` | `..` | folder that holds the `churn` package |
# MAGIC
# MAGIC Relative paths are relative to this notebook's folder; a build passes absolute ones.

# COMMAND ----------

dbutils.widgets.text("tests_dir", "pytest")
dbutils.widgets.text("data_dir", "data")
dbutils.widgets.text("results_dir", "results")
dbutils.widgets.text("code_dir", "..")

# COMMAND ----------

import json
import os
import sys
import xml.etree.ElementTree as ET

import pytest

tests_dir = os.path.abspath(dbutils.widgets.get("tests_dir"))
data_dir = os.path.abspath(dbutils.widgets.get("data_dir"))
results_dir = os.path.abspath(dbutils.widgets.get("results_dir"))
code_dir = os.path.abspath(dbutils.widgets.get("code_dir"))
junit_path = os.path.join(results_dir, "run_pytest.xml")

os.makedirs(results_dir, exist_ok=True)
if code_dir not in sys.path:
    sys.path.insert(0, code_dir)
os.environ["CHURN_DATA_DIR"] = data_dir
os.environ["CHURN_CODE_DIR"] = code_dir

print(f"tests: {tests_dir}\ndata: {data_dir}\ncode: {code_dir}\njunit: {junit_path}")

# COMMAND ----------

exit_code = pytest.main(
    [
        tests_dir,
        f"--junitxml={junit_path}",
        "-p",
        "no:cacheprovider",
        "-o",
        "junit_suite_name=run_pytest",
        "-q",
    ]
)

# COMMAND ----------

counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
if os.path.exists(junit_path):
    root = ET.parse(junit_path).getroot()
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    for suite in suites:
        for key in counts:
            counts[key] += int(suite.get(key, "0"))

if exit_code != 0 or counts["failures"] or counts["errors"] or not counts["tests"]:
    raise AssertionError(
        f"pytest failed (exit code {int(exit_code)}): {counts['failures']} failed, "
        f"{counts['errors']} errors, {counts['tests']} tests; see {junit_path}"
    )

dbutils.notebook.exit(json.dumps(counts))
