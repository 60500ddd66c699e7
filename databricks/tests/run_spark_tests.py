# Databricks notebook source
# MAGIC %md
# MAGIC # Test the Spark features
# MAGIC
# MAGIC Runs `../features_spark` into a Delta table, then checks the table: every customer once,
# MAGIC the derived features equal `churn.features` (the plain-Python rules), Delta as the format,
# MAGIC and a MERGE of one changed customer, then drops the table. Writes JUnit XML to
# MAGIC `<results_dir>/run_spark_tests.xml` (one suite, `run_spark_tests`); fails the notebook
# MAGIC when a check fails, after the XML is written, else exits with a JSON summary.
# MAGIC
# MAGIC | widget | default | meaning |
# MAGIC |---|---|---|
# MAGIC | `data_dir` | `data` | folder of `customers.csv` |
# MAGIC | `table` | `main.churn_test.customer_features` | the table the features notebook writes |
# MAGIC | `results_dir` | `results` | where the JUnit XML goes (created if missing) |
# MAGIC | `code_dir` | `..` | folder that holds the `churn` package |

# COMMAND ----------

dbutils.widgets.text("data_dir", "data")
dbutils.widgets.text("table", "main.churn_test.customer_features")
dbutils.widgets.text("results_dir", "results")
dbutils.widgets.text("code_dir", "..")

# COMMAND ----------

import json
import os
import sys
import time
import traceback
import xml.etree.ElementTree as ET

data_dir = os.path.abspath(dbutils.widgets.get("data_dir"))
table = dbutils.widgets.get("table")
results_dir = os.path.abspath(dbutils.widgets.get("results_dir"))
code_dir = os.path.abspath(dbutils.widgets.get("code_dir"))
if code_dir not in sys.path:
    sys.path.insert(0, code_dir)

from churn.features import build_features, load_customers  # noqa: E402

result = json.loads(
    dbutils.notebook.run("../features_spark", 600, {"data_dir": data_dir, "table": table})
)
expected = {c.customer_id: build_features(c) for c in load_customers(f"{data_dir}/customers.csv")}

# COMMAND ----------

def test_every_customer_once():
    ids = [r.customer_id for r in spark.table(table).select("customer_id").collect()]
    assert sorted(ids) == sorted(expected), ids
    assert result["rows"] == len(expected)


def test_features_match_the_python_rules():
    for row in spark.table(table).collect():
        want = expected[row.customer_id]
        assert row.tenure_bucket == want["tenure_bucket"], row
        # Spark's round() is HALF_UP, Python's works on the binary float: 117.47 / 2 is 58.74
        # in Spark and 58.73 in Python. A cent apart at most.
        assert abs(row.charge_per_call - want["charge_per_call"]) <= 0.0100001, row


def test_rank_within_bucket_starts_at_one():
    ranks = spark.table(table).groupBy("tenure_bucket").agg({"charges_rank_in_bucket": "min"})
    assert {r[1] for r in ranks.collect()} == {1}


def test_table_is_delta():
    described = spark.sql(f"DESCRIBE TABLE EXTENDED {table}").collect()
    detail = {r.col_name: r.data_type for r in described}
    assert detail.get("Provider", "").lower() == "delta", detail


def test_merge_updates_one_customer():
    changed = spark.table(table).where("customer_id = 'C0001'").selectExpr(
        "customer_id", "support_calls + 1 AS support_calls"
    )
    changed.createOrReplaceTempView("changed")
    spark.sql(
        f"MERGE INTO {table} t USING changed s ON t.customer_id = s.customer_id "
        "WHEN MATCHED THEN UPDATE SET t.support_calls = s.support_calls"
    )
    calls = spark.table(table).where("customer_id = 'C0001'").first().support_calls
    assert calls == expected["C0001"]["support_calls"] + 1
    assert spark.table(table).count() == len(expected)


tests = [v for k, v in dict(globals()).items() if k.startswith("test_") and callable(v)]

# COMMAND ----------

suite = ET.Element("testsuite", name="run_spark_tests")
failures = 0
for test in tests:
    started = time.monotonic()
    case = ET.SubElement(suite, "testcase", classname="run_spark_tests", name=test.__name__)
    try:
        test()
    except Exception as exc:  # noqa: BLE001 - every failure is reported, then the notebook fails
        failures += 1
        failure = ET.SubElement(case, "failure", message=f"{type(exc).__name__}: {exc}")
        failure.text = traceback.format_exc()
    case.set("time", f"{time.monotonic() - started:.3f}")
suite.set("tests", str(len(tests)))
suite.set("failures", str(failures))
suite.set("errors", "0")
# the table is this run's own (the build passes a per-run name): drop it, pass or fail
spark.sql(f"DROP TABLE IF EXISTS {table}")
os.makedirs(results_dir, exist_ok=True)
junit_path = os.path.join(results_dir, "run_spark_tests.xml")
ET.ElementTree(suite).write(junit_path, encoding="utf-8", xml_declaration=True)

if failures:
    raise AssertionError(f"{failures} of {len(tests)} Spark tests failed; see {junit_path}")
dbutils.notebook.exit(json.dumps({"tests": len(tests), "failures": 0, "errors": 0, "skipped": 0}))
