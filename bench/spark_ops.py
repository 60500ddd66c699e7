"""The compatibility suite of ``bench.spark``: typical notebook operations, one result each.

:data:`OPS_SOURCE` defines ``run_ops(spark, scratch, display=None, prefix="")``, which returns
``{operation: "ok" or the first line of its error}``. It is source text because it runs in two
places: in a notebook on the local workspace (Sail, real kernel, ``display`` included) and in a
plain client process against the JVM Spark Connect server. In a notebook, Spark paths without a
scheme are DBFS paths, so the notebook passes ``prefix="file:"`` for the local scratch folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.spark_engines import jvm_engine, script

OPS_SOURCE = r"""
def run_ops(spark, scratch, display=None, prefix=""):
    import json, os
    import pandas as pd
    from pyspark.sql import functions as F, Window
    results = {}
    os.makedirs(scratch, exist_ok=True)
    with open(os.path.join(scratch, "c.csv"), "w") as f:
        f.write("id,name,amount\n1,a,10.5\n2,b,20\n3,a,7\n")
    with open(os.path.join(scratch, "j.json"), "w") as f:
        f.write("\n".join(json.dumps({"id": i, "tag": "t%d" % (i % 2)}) for i in range(1, 4)))

    def op(name, fn):
        try:
            fn()
            results[name] = "ok"
        except Exception as exc:  # noqa: BLE001
            results[name] = (type(exc).__name__ + ": " + str(exc)).splitlines()[0][:120]

    def csv():
        df = spark.read.csv(prefix + scratch + "/c.csv", header=True, inferSchema=True)
        assert df.count() == 3
    def js():
        assert spark.read.json(prefix + scratch + "/j.json").count() == 3
    def parquet():
        spark.range(5).write.mode("overwrite").parquet(prefix + scratch + "/p")
        assert spark.read.parquet(prefix + scratch + "/p").count() == 5
    def sql_join_window_agg():
        c = spark.read.csv(prefix + scratch + "/c.csv", header=True, inferSchema=True)
        c.createOrReplaceTempView("c")
        spark.read.json(prefix + scratch + "/j.json").createOrReplaceTempView("j")
        rows = spark.sql(
            "SELECT name, SUM(amount) AS total, RANK() OVER (ORDER BY SUM(amount) DESC) AS r "
            "FROM c JOIN j ON c.id = j.id GROUP BY name ORDER BY r").collect()
        assert rows[0]["name"] == "b" and rows[0]["r"] == 1, rows
    def dataframe_window():
        w = Window.partitionBy("k").orderBy(F.col("id").desc())
        df = spark.range(10).withColumn("k", F.col("id") % 3)
        df = df.withColumn("rn", F.row_number().over(w))
        assert df.where("rn = 1").count() == 3
    def pandas_roundtrip():
        pdf = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
        back = spark.createDataFrame(pdf).toPandas()
        assert back["x"].tolist() == [1, 2, 3]
    def python_udf():
        double = F.udf(lambda v: v * 2, "long")
        assert [r[0] for r in spark.range(3).select(double("id")).collect()] == [0, 2, 4]
    def pandas_udf():
        @F.pandas_udf("long")
        def plus_one(s: pd.Series) -> pd.Series:
            return s + 1
        assert [r[0] for r in spark.range(3).select(plus_one("id")).collect()] == [1, 2, 3]
    def delta_write_read():
        spark.range(4).write.format("delta").mode("overwrite").save(prefix + scratch + "/d")
        spark.range(2).write.format("delta").mode("append").save(prefix + scratch + "/d")
        assert spark.read.format("delta").load(prefix + scratch + "/d").count() == 6
    def delta_merge():
        spark.sql("DROP TABLE IF EXISTS bench_merge")
        df = spark.createDataFrame([(1, "a"), (2, "b")], "id INT, v STRING")
        df.write.format("delta").saveAsTable("bench_merge")
        spark.sql("MERGE INTO bench_merge t USING (SELECT 2 AS id, 'B' AS v UNION ALL "
                  "SELECT 3, 'c') s ON t.id = s.id "
                  "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *")
        rows = sorted(tuple(r) for r in spark.table("bench_merge").collect())
        assert rows == [(1, "a"), (2, "B"), (3, "c")], rows
    def three_level_names():
        spark.sql("CREATE SCHEMA IF NOT EXISTS main.bench")
        spark.range(3).write.mode("overwrite").saveAsTable("main.bench.t")
        assert spark.table("main.bench.t").count() == 3
    def show_display():
        df = spark.range(3)
        if display is not None:
            display(df)
        else:
            df.limit(1000).toPandas()

    for name, fn in [("read CSV", csv), ("read JSON", js), ("Parquet write/read", parquet),
                     ("SQL join + window + aggregate", sql_join_window_agg),
                     ("DataFrame window", dataframe_window),
                     ("pandas round-trip", pandas_roundtrip),
                     ("Python UDF", python_udf), ("pandas UDF", pandas_udf),
                     ("Delta write/read by path", delta_write_read), ("Delta MERGE", delta_merge),
                     ("three-level names", three_level_names), ("display", show_display)]:
        op(name, fn)
    return results
"""


def compat_sail(scratch: Path) -> dict[str, str]:
    """The compatibility suite in a notebook on the local workspace (Sail, real kernel)."""
    from databricks.sdk import WorkspaceClient

    from bench.notebook_runs import exit_value, submit_notebook, upload_notebook
    from orchestrator.local.server import start_local_workspace

    ws = start_local_workspace(scratch / "ops-state", cluster_start_delay=0.0)
    notebook = (
        "# Databricks notebook source\n"
        + OPS_SOURCE
        + "\n# COMMAND ----------\n\nimport json\n"
        + f"dbutils.notebook.exit(json.dumps(run_ops(spark, {str(scratch / 'ops-sail')!r}, "
        + "display, 'file:')))\n"
    )
    try:
        w = WorkspaceClient(host=ws.url, token=ws.token, auth_type="pat")
        upload_notebook(w, "/bench/ops", notebook)
        value, error = exit_value(w, submit_notebook(w, "/bench/ops", run_name="ops"))
        if value is None:
            return {"(notebook)": str(error)}
        result: dict[str, str] = json.loads(value)
        return result
    finally:
        ws.stop()


def compat_jvm(jvm_python: str, scratch: Path) -> dict[str, str]:
    """The compatibility suite from a client process against the JVM Spark Connect server."""
    code = (
        OPS_SOURCE
        + "\nimport json, sys\nfrom pyspark.sql import SparkSession\n"
        + "spark = SparkSession.builder.remote(sys.argv[1]).create()\n"
        + "print(json.dumps(run_ops(spark, sys.argv[2])))\n"
    )
    with jvm_engine(jvm_python, scratch) as (url, _, _pid):
        done = subprocess.run(
            [sys.executable, script(code), url, str(scratch / "ops-jvm")],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        return {"(client)": (done.stderr.strip().splitlines() or ["failed"])[-1][:120]}
    result: dict[str, str] = json.loads(lines[-1])
    return result
