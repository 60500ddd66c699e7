"""A repo of plain Spark notebooks, shaped like the public ones that failed on the local
workspace for its own reasons, builds with ``orchestrator build`` on the embedded local
workspace with no hand edits: a load -> transform -> display job whose tasks share tables and
a global temporary view, ``%sql`` cells in Python and R notebooks, a SQL notebook,
``df.display()`` and ``display(df)``, a CSV whose header repeats names, and the statements
notebooks use all the time (bare ``USE`` and ``DESCRIBE``, ``DESCRIBE HISTORY``,
``CACHE LAZY TABLE``). Breaking one SQL statement fails the build, and the summary names the
notebook, the cell and the statement."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from tests.tools import require_r, require_spark

pytestmark = pytest.mark.slow  # real kernels (tests/tiers.py)

VISITS = (
    "Visit,Page,Elapsed Time,Device,Elapsed Time,elapsed time\n"
    "1,home,10,mobile,11,12\n"
    "2,cart,20,desktop,21,22\n"
    "3,home,30,mobile,31,32\n"
    "4,checkout,40,mobile,41,42\n"
)

LOAD = """# Databricks notebook source
# MAGIC %md
# MAGIC Loads the raw visits.

# COMMAND ----------

import os

path = f"file:{os.getcwd()}/../data/visits.csv"
visits = spark.read.option("header", True).option("inferSchema", True).csv(path)
print(visits.columns)

# COMMAND ----------

spark.sql("CREATE SCHEMA IF NOT EXISTS shop")
visits.write.mode("overwrite").saveAsTable("shop.visits")
visits.createOrReplaceGlobalTempView("visits_raw")

# COMMAND ----------

# MAGIC %sql
# MAGIC USE shop;
# MAGIC DESCRIBE visits

# COMMAND ----------

columns = [row.col_name for row in _sqldf.collect()]
assert "Elapsed Time2" in columns and "elapsed time5" in columns, columns
"""

TRANSFORM = """-- Databricks notebook source
-- MAGIC %md
-- MAGIC Daily page statistics, from the load task's global temporary view.

-- COMMAND ----------

USE shop

-- COMMAND ----------

CREATE OR REPLACE TABLE page_stats AS
SELECT Page AS page, count(*) AS visits, sum(`Elapsed Time2`) AS seconds
FROM global_temp.visits_raw
GROUP BY Page

-- COMMAND ----------

DESCRIBE page_stats;
DESCRIBE HISTORY page_stats

-- COMMAND ----------

CACHE LAZY TABLE page_stats
"""

DISPLAY = """# Databricks notebook source
# MAGIC %sql
# MAGIC SELECT page, visits, seconds FROM shop.page_stats ORDER BY page

# COMMAND ----------

stats = _sqldf
assert [r.page for r in stats.collect()] == ["cart", "checkout", "home"]
stats.display()

# COMMAND ----------

display(spark.table("global_temp.visits_raw").where("Device = 'mobile'"))
display(stats.toPandas())
"""

R_REPORT = """# Databricks notebook source
library(stats)
dbutils.widgets.text("min_visits", "2")

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT page FROM shop.page_stats WHERE visits >= :min_visits

# COMMAND ----------

print(median(c(1, 2, 3)))
"""


def write_repo(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "data" / "visits.csv").write_text(VISITS)
    notebooks = root / "notebooks"
    notebooks.mkdir()
    (notebooks / "load.py").write_text(LOAD)
    (notebooks / "transform.sql").write_text(TRANSFORM)
    (notebooks / "display.py").write_text(DISPLAY)
    (notebooks / "r_report.r").write_text(R_REPORT)
    (root / "orchestrator.yml").write_text("version: 1\n")

    def task(key: str, notebook: str, *after: str) -> dict[str, Any]:
        return {
            "task_key": key,
            "existing_cluster_id": "${cluster_id}",
            "notebook_task": {"notebook_path": notebook},
            "depends_on": [{"task_key": a} for a in after],
        }

    template = {
        "name": "${job_name}",
        "tasks": [
            task("load", "notebooks/load"),
            task("transform", "notebooks/transform", "load"),
            task("display", "notebooks/display", "transform"),
            task("r_report", "notebooks/r_report", "transform"),
        ],
    }
    (root / "job-template.json").write_text(json.dumps(template, indent=2))
    return root


def build(build_id: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, ET.Element]:
    code = main(["build", "--repo-name", "shop", "--build-id", build_id])
    captured = capsys.readouterr()
    xml = ET.parse(Path("test-results") / f"TEST-shop-{build_id}.xml").getroot()
    return code, captured.out + captured.err, xml


def test_a_spark_notebook_repo_builds_and_a_broken_statement_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    require_spark()
    require_r()
    root = write_repo(tmp_path / "shop")
    monkeypatch.chdir(root)
    for name in ("TF_BUILD", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)

    code, out, xml = build("b1", capsys)
    assert code == 0, out
    cases = {c.get("name"): c for c in xml.iter("testcase")}
    assert set(cases) >= {"load", "transform", "display", "r_report"}, out
    assert not [c for c in cases.values() if c.find("failure") is not None], out

    transform = root / "notebooks" / "transform.sql"
    transform.write_text(transform.read_text().replace("sum(`Elapsed Time2`)", "sum(duration)"))
    code, out, xml = build("b2", capsys)
    assert code == 1, out
    failure = next(c for c in xml.iter("testcase") if c.get("classname") == "transform")
    found = failure.find("failure")
    assert found is not None, out
    assert found.get("message", "").endswith("(notebooks/transform, cell 3)"), found.get("message")
    assert "duration" in found.get("message", "")
    details = found.text or ""
    statement = (
        "CREATE OR REPLACE TABLE page_stats AS SELECT Page AS page, count(*) AS visits, "
        "sum(duration) AS seconds FROM global_temp.visits_raw GROUP BY Page"
    )
    assert statement in details, details
    assert "Cause: the notebook's SQL or data, not the local engine." in details
    summary = out[out.index("FAILURE transform") :]
    assert "notebooks/transform, cell 3" in summary and statement in summary, summary
