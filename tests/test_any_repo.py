"""Any repo of notebooks, not the sample: `orchestrator init`, then `orchestrator build` on the
embedded local workspace with no hand edits, twice in the same checkout, and a broken test
named in the summary. Three layouts, made here: a Repos-style Python repo whose runner notebook
calls pytest.main and writes no JUnit; an R repo with testthat; notebooks only (no tests),
smoke-tested with --all-notebooks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli import main
from tests.tools import require_r

pytestmark = pytest.mark.slow  # real kernels (tests/tiers.py)

PYTHON_RUNNER = """# Databricks notebook source
# MAGIC %md
# MAGIC Runs the repo's pytest tests, as Databricks' own runner notebooks do.

# COMMAND ----------

import os
import sys

import pytest

# the repo root, from this notebook's workspace path (notebooks/run_unit_tests)
notebook_path = (
    dbutils.notebook.entry_point.getDbutils().notebook().getContext().notebookPath().get()
)

repo_root = os.path.dirname(os.path.dirname(notebook_path))
os.chdir(f"/Workspace{repo_root}")
sys.path.insert(0, os.getcwd())

# COMMAND ----------

sys.dont_write_bytecode = True
retcode = pytest.main([".", "-v", "-p", "no:cacheprovider"])
assert retcode == 0, f"pytest failed with exit code {retcode}"
"""

R_RUNNER = """# Databricks notebook source
library(testthat)

# COMMAND ----------

# this notebook's folder is its working directory, on Databricks as locally
results <- testthat::test_dir("../tests/testthat", stop_on_failure = TRUE)
print(as.data.frame(results)[c("file", "test", "failed")])
"""


def python_repo(root: Path) -> str:
    (root / "calc").mkdir(parents=True)
    (root / "calc" / "__init__.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n\n\n"
        "def test_add_zero():\n    assert add(0, 5) == 5\n"
    )
    (root / "notebooks").mkdir()
    (root / "notebooks" / "run_unit_tests.py").write_text(PYTHON_RUNNER)
    (root / "notebooks" / "eda.py").write_text(
        "# Databricks notebook source\nfrom calc import add\nprint(add(2, 2))\n"
    )
    (root / "requirements.txt").write_text("pytest\n")
    return "test_add_zero"


def break_python(root: Path) -> None:
    test = root / "tests" / "test_calc.py"
    test.write_text(test.read_text().replace("add(0, 5) == 5", "add(0, 5) == 6"))


def r_repo(root: Path) -> str:
    (root / "R").mkdir(parents=True)
    (root / "R" / "stats.R").write_text("double_it <- function(x) x * 2\n")
    (root / "tests" / "testthat").mkdir(parents=True)
    (root / "tests" / "testthat" / "test-stats.R").write_text(
        'source(file.path("..", "..", "R", "stats.R"))\n\n'
        'test_that("doubling works", {\n  expect_equal(double_it(2), 4)\n})\n\n'
        'test_that("doubling a vector works", {\n  expect_equal(double_it(c(1, 2)), c(2, 4))\n})\n'
    )
    (root / "notebooks").mkdir()
    (root / "notebooks" / "run_testthat.r").write_text(R_RUNNER)
    return "doubling a vector works"


def break_r(root: Path) -> None:
    test = root / "tests" / "testthat" / "test-stats.R"
    test.write_text(test.read_text().replace("c(2, 4))", "c(2, 5))"))


def notebooks_repo(root: Path) -> str:
    (root / "notebooks").mkdir(parents=True)
    (root / "notebooks" / "load.py").write_text(
        "# Databricks notebook source\nrows = [1, 2, 3]\nprint(sum(rows))\n"
    )
    (root / "notebooks" / "clean_up.py").write_text(
        "# Databricks notebook source\nvalues = [v for v in range(10) if v % 2]\n"
        "# COMMAND ----------\nassert values, 'no values'\n"
    )
    cell = {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": None, "outputs": []}
    notebook = {
        "cells": [{**cell, "source": ["total = 40 + 2\n", "print(total)\n"]}],
        "metadata": {"kernelspec": {"name": "python3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (root / "notebooks" / "explore.ipynb").write_text(json.dumps(notebook))
    return "clean_up"


def break_notebook(root: Path) -> None:
    path = root / "notebooks" / "clean_up.py"
    path.write_text(path.read_text().replace("if v % 2]", "if v > 100]"))


LAYOUTS = {
    "python": (python_repo, break_python, ()),
    "r": (r_repo, break_r, ()),
    "notebooks": (notebooks_repo, break_notebook, ("--all-notebooks",)),
}


def build(repo: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["build", "--repo-name", repo, *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_init_then_build_passes_twice_and_a_broken_test_is_named(
    layout: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if layout == "r":
        require_r()
    make, breaks, flags = LAYOUTS[layout]
    root = tmp_path / f"repo-{layout}"
    failing = make(root)
    monkeypatch.chdir(root)
    for name in ("TF_BUILD", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)

    assert main(["init", *flags]) == 0
    out = capsys.readouterr().out
    assert "wrote:" in out and "orchestrator.yml" in out and "next: orchestrator plan" in out
    assert main(["plan", "--repo-name", f"any-{layout}"]) == 0
    capsys.readouterr()

    first, text = build(f"any-{layout}", capsys)
    assert first == 0, text
    assert "PASSED" in text
    second, text = build(f"any-{layout}", capsys)  # .orchestrator/, test-results/ now exist
    assert second == 0, text
    assert "PASSED" in text
    assert main(["plan", "--repo-name", f"any-{layout}"]) == 0
    sources = [item["source"] for item in json.loads(capsys.readouterr().out)["deploy"]]
    assert (root / ".orchestrator").is_dir() and (root / "test-results").is_dir()
    outputs = (".orchestrator/", "test-results/", "artifacts/")
    assert not [s for s in sources if s.startswith(outputs)], sources

    breaks(root)
    code = main(["build", "--repo-name", f"any-{layout}", "--json"])
    text = capsys.readouterr().out
    assert code == 1, text
    document = json.loads(text)
    assert document["status"] == "failed"
    assert any(failing in line for line in document["failed_tests"]), document["failed"]
    code, text = build(f"any-{layout}", capsys)
    assert code == 1
    failures = text[text.index("FAILURE ") :]
    assert failing in failures
