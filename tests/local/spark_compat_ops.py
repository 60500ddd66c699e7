"""The operations of the Spark compatibility suite (tests/local/test_spark_compat.py).

This file is notebook source: the suite uploads it as the first cell of a notebook and calls
``run_compat`` in the next one, on the local workspace (real kernel, Sail engine). Each
operation is one that Databricks' documentation and examples use often; it runs as a notebook
would run it and asserts what Databricks gives. Its outcome is read from what the kernel's
compatibility layer recorded while it ran (``sql_events``): ``works`` (nothing changed),
``translated``, ``emulated``, or ``refused`` (``UnsupportedByLocalEngine``, with why and what
to use instead); anything else is ``fails`` and fails the suite. (No ``from __future__ import
annotations``: pandas UDFs read their type hints at run time.)
"""

import json
import os
from collections.abc import Callable
from typing import Any

OPERATIONS: list[tuple[str, str, str]] = []  # (area, name, function name), filled below


def op(area: str, name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def register(fn: Callable[..., None]) -> Callable[..., None]:
        OPERATIONS.append((area, name, fn.__name__))
        return fn

    return register


def _rows(df: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in df.collect())


# --------------------------------------------------------------------------- files


@op("files", "read CSV (header, inferSchema)")
def read_csv(spark: Any, s: dict[str, Any]) -> None:
    df = spark.read.csv(s["dir"] + "/c.csv", header=True, inferSchema=True)
    assert df.count() == 3 and df.columns == ["id", "name", "amount"], df.columns


@op("files", "read CSV with duplicate header names")
def read_csv_duplicates(spark: Any, s: dict[str, Any]) -> None:
    df = spark.read.option("header", "true").csv(s["dir"] + "/dup.csv")
    assert df.columns == ["Time0", "value", "time2", "_c3"], df.columns
    assert _rows(df) == [("1", "2", "3", "4")]


@op("files", "write and read CSV")
def write_csv(spark: Any, s: dict[str, Any]) -> None:
    spark.range(3).write.mode("overwrite").csv(s["dir"] + "/out_csv", header=True)
    assert spark.read.csv(s["dir"] + "/out_csv", header=True).count() == 3


@op("files", "read JSON")
def read_json(spark: Any, s: dict[str, Any]) -> None:
    assert spark.read.json(s["dir"] + "/j.json").count() == 3


@op("files", "write and read JSON")
def write_json(spark: Any, s: dict[str, Any]) -> None:
    spark.range(2).write.mode("overwrite").json(s["dir"] + "/out_json")
    assert spark.read.json(s["dir"] + "/out_json").count() == 2


@op("files", "write and read Parquet")
def parquet(spark: Any, s: dict[str, Any]) -> None:
    spark.range(5).write.mode("overwrite").parquet(s["dir"] + "/p")
    assert spark.read.parquet(s["dir"] + "/p").count() == 5


@op("files", "write and read Delta by path")
def delta_path(spark: Any, s: dict[str, Any]) -> None:
    spark.range(4).write.format("delta").mode("overwrite").save(s["dir"] + "/d")
    spark.range(2).write.format("delta").mode("append").save(s["dir"] + "/d")
    assert spark.read.format("delta").load(s["dir"] + "/d").count() == 6


@op("files", "SELECT from a file path (json.`path`)")
def query_file(spark: Any, s: dict[str, Any]) -> None:
    assert spark.sql(f"SELECT * FROM json.`{s['local']}/j.json`").count() == 3


@op("files", "write Avro")
def avro(spark: Any, s: dict[str, Any]) -> None:
    spark.range(1).write.format("avro").mode("overwrite").save(s["dir"] + "/avro")


@op("files", "write ORC")
def orc(spark: Any, s: dict[str, Any]) -> None:
    spark.range(1).write.format("orc").mode("overwrite").save(s["dir"] + "/orc")


# --------------------------------------------------------------------------- tables


@op("tables", "saveAsTable, default mode (errorifexists), then read")
def save_default(spark: Any, s: dict[str, Any]) -> None:
    spark.range(3).write.saveAsTable("compat_t")
    assert spark.table("compat_t").count() == 3


@op("tables", "saveAsTable on an existing table, default mode: TABLE_OR_VIEW_ALREADY_EXISTS")
def save_exists(spark: Any, s: dict[str, Any]) -> None:
    from pyspark.errors import AnalysisException

    try:
        spark.range(3).write.saveAsTable("compat_t")
    except AnalysisException as exc:
        assert "TABLE_OR_VIEW_ALREADY_EXISTS" in str(exc), exc
    else:
        raise AssertionError("no error")


@op("tables", "saveAsTable mode append")
def save_append(spark: Any, s: dict[str, Any]) -> None:
    spark.range(2).write.mode("append").saveAsTable("compat_t")
    assert spark.table("compat_t").count() == 5


@op("tables", "saveAsTable mode overwrite")
def save_overwrite(spark: Any, s: dict[str, Any]) -> None:
    spark.range(1).write.mode("overwrite").saveAsTable("compat_t")
    assert spark.table("compat_t").count() == 1


@op("tables", "saveAsTable mode ignore")
def save_ignore(spark: Any, s: dict[str, Any]) -> None:
    spark.range(9).write.mode("ignore").saveAsTable("compat_t")
    assert spark.table("compat_t").count() == 1


@op("tables", "overwrite with option replaceWhere")
def replace_where(spark: Any, s: dict[str, Any]) -> None:
    df = spark.range(6).selectExpr("id", "id % 2 AS p")
    df.write.mode("overwrite").partitionBy("p").saveAsTable("compat_parts")
    new = spark.createDataFrame([(10, 0)], "id BIGINT, p BIGINT")
    new.write.mode("overwrite").option("replaceWhere", "p = 0").saveAsTable("compat_parts")
    assert _rows(spark.table("compat_parts")) == [(1, 1), (3, 1), (5, 1), (10, 0)]


@op("tables", "insertInto")
def insert_into(spark: Any, s: dict[str, Any]) -> None:
    spark.range(2).write.insertInto("compat_t")
    assert spark.table("compat_t").count() == 3


@op("tables", "writeTo(...).createOrReplace() and append()")
def write_to(spark: Any, s: dict[str, Any]) -> None:
    spark.range(2).writeTo("compat_v2").createOrReplace()
    spark.range(1).writeTo("compat_v2").append()
    assert spark.table("compat_v2").count() == 3


@op("tables", "three-level names (main.schema.table)")
def three_level(spark: Any, s: dict[str, Any]) -> None:
    spark.sql("CREATE SCHEMA IF NOT EXISTS main.compat")
    spark.range(3).write.mode("overwrite").saveAsTable("main.compat.t3")
    assert spark.table("main.compat.t3").count() == 3


@op("tables", "legacy names: spark_catalog.schema.table is hive_metastore's")
def legacy_names(spark: Any, s: dict[str, Any]) -> None:
    spark.range(2).write.mode("overwrite").saveAsTable("spark_catalog.default.compat_legacy")
    assert spark.table("hive_metastore.default.compat_legacy").count() == 2
    assert spark.sql("SELECT * FROM spark_catalog.default.compat_legacy").count() == 2


# --------------------------------------------------------------------------- views


@op("views", "temporary view + SQL")
def temp_view(spark: Any, s: dict[str, Any]) -> None:
    spark.range(4).createOrReplaceTempView("compat_tv")
    assert spark.sql("SELECT count(*) FROM compat_tv").first()[0] == 4


@op("views", "global temporary view (global_temp.)")
def global_view(spark: Any, s: dict[str, Any]) -> None:
    spark.range(3).createOrReplaceGlobalTempView("compat_gv")
    assert spark.table("global_temp.compat_gv").count() == 3


@op("views", "CREATE VIEW (permanent)")
def permanent_view(spark: Any, s: dict[str, Any]) -> None:
    spark.sql("CREATE OR REPLACE VIEW compat_view AS SELECT id * 2 AS d FROM compat_t")
    assert spark.table("compat_view").count() == 3


# --------------------------------------------------------------------------- SQL


@op("SQL", "CREATE SCHEMA / CREATE DATABASE")
def create_schema(spark: Any, s: dict[str, Any]) -> None:
    spark.sql("CREATE DATABASE IF NOT EXISTS compat_db")
    spark.sql("CREATE SCHEMA IF NOT EXISTS compat_db2")


@op("SQL", "USE x (bare)")
def use_bare(spark: Any, s: dict[str, Any]) -> None:
    spark.sql("USE compat_db")
    assert spark.sql("SELECT current_schema()").first()[0] == "compat_db"
    spark.sql("USE SCHEMA default")


@op("SQL", "USE catalog.schema")
def use_two(spark: Any, s: dict[str, Any]) -> None:
    spark.sql("USE main.compat_db")
    assert tuple(spark.sql("SELECT current_catalog(), current_schema()").first()) == (
        "main",
        "compat_db",
    )
    spark.sql("USE main.default")


@op("SQL", "CREATE TABLE ... USING delta, INSERT INTO ... VALUES")
def create_insert(spark: Any, s: dict[str, Any]) -> None:
    spark.sql("CREATE TABLE IF NOT EXISTS compat_sql (id INT, v STRING) USING delta")
    spark.sql("INSERT INTO compat_sql VALUES (1, 'a'), (2, 'b')")
    assert spark.table("compat_sql").count() == 2


@op("SQL", "CREATE TABLE AS SELECT")
def ctas(spark: Any, s: dict[str, Any]) -> None:
    spark.sql("CREATE TABLE compat_ctas AS SELECT id, id * 2 AS d FROM range(3)")
    assert spark.table("compat_ctas").count() == 3


@op("SQL", "CREATE OR REPLACE TABLE AS SELECT (new schema)")
def create_or_replace(spark: Any, s: dict[str, Any]) -> None:
    spark.sql("CREATE OR REPLACE TABLE compat_ctas AS SELECT 'x' AS name")
    assert spark.table("compat_ctas").columns == ["name"]


@op("SQL", "MERGE INTO")
def merge(spark: Any, s: dict[str, Any]) -> None:
    spark.sql(
        "MERGE INTO compat_sql t USING (SELECT 2 AS id, 'B' AS v UNION ALL SELECT 3, 'c') s "
        "ON t.id = s.id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
    assert _rows(spark.table("compat_sql")) == [(1, "a"), (2, "B"), (3, "c")]


@op("SQL", "UPDATE and DELETE")
def update_delete(spark: Any, s: dict[str, Any]) -> None:
    spark.sql("UPDATE compat_sql SET v = 'z' WHERE id = 1")
    spark.sql("DELETE FROM compat_sql WHERE id = 3")
    assert _rows(spark.table("compat_sql")) == [(1, "z"), (2, "B")]


@op("SQL", "window functions + aggregate + join")
def sql_window(spark: Any, s: dict[str, Any]) -> None:
    rows = spark.sql(
        "SELECT v, SUM(a.id) AS total, RANK() OVER (ORDER BY SUM(a.id) DESC) AS r "
        "FROM compat_sql a JOIN range(5) b ON a.id = b.id GROUP BY v ORDER BY r"
    ).collect()
    assert rows[0]["v"] == "B" and rows[0]["r"] == 1, rows


@op("SQL", "DESCRIBE t (bare)")
def describe_bare(spark: Any, s: dict[str, Any]) -> None:
    names = [r.col_name for r in spark.sql("DESCRIBE compat_sql").collect()]
    assert names[:2] == ["id", "v"], names


@op("SQL", "DESCRIBE TABLE EXTENDED")
def describe_extended(spark: Any, s: dict[str, Any]) -> None:
    info = {
        r.col_name: r.data_type for r in spark.sql("DESCRIBE TABLE EXTENDED compat_sql").collect()
    }
    assert info["Provider"] == "delta", info


@op("SQL", "DESCRIBE DETAIL")
def describe_detail(spark: Any, s: dict[str, Any]) -> None:
    row = spark.sql("DESCRIBE DETAIL compat_sql").first()
    assert row.format == "delta" and row.numFiles >= 1 and row.name.endswith("compat_sql"), row


@op("SQL", "DESCRIBE HISTORY")
def describe_history(spark: Any, s: dict[str, Any]) -> None:
    ops = [r.operation for r in spark.sql("DESCRIBE HISTORY compat_sql").collect()]
    assert len(ops) >= 4 and ops[-1].startswith("CREATE"), ops


@op("SQL", "time travel: VERSION AS OF")
def version_as_of(spark: Any, s: dict[str, Any]) -> None:
    assert spark.sql("SELECT * FROM compat_sql VERSION AS OF 1").count() == 2


@op("SQL", "time travel: read option versionAsOf")
def version_option(spark: Any, s: dict[str, Any]) -> None:
    df = spark.read.format("delta").option("versionAsOf", 0).load(s["dir"] + "/d")
    assert df.count() == 4


@op("SQL", "RESTORE TABLE ... TO VERSION AS OF")
def restore(spark: Any, s: dict[str, Any]) -> None:
    spark.sql("RESTORE TABLE compat_sql TO VERSION AS OF 1")
    assert _rows(spark.table("compat_sql")) == [(1, "a"), (2, "b")]


@op("SQL", "TRUNCATE TABLE")
def truncate(spark: Any, s: dict[str, Any]) -> None:
    spark.sql("CREATE TABLE compat_trunc AS SELECT * FROM range(3)")
    spark.sql("TRUNCATE TABLE compat_trunc")
    assert spark.table("compat_trunc").count() == 0


@op("SQL", "CACHE LAZY TABLE / UNCACHE TABLE")
def cache(spark: Any, s: dict[str, Any]) -> None:
    spark.sql("CACHE LAZY TABLE compat_sql")
    spark.sql("UNCACHE TABLE compat_sql")


@op("SQL", "OPTIMIZE ... ZORDER BY")
def optimize(spark: Any, s: dict[str, Any]) -> None:
    row = spark.sql("OPTIMIZE compat_sql ZORDER BY (id)").first()
    assert row.path and row.metrics is not None


@op("SQL", "VACUUM")
def vacuum(spark: Any, s: dict[str, Any]) -> None:
    assert spark.sql("VACUUM compat_sql").count() == 1


@op("SQL", "SHOW TABLES / SHOW SCHEMAS")
def show(spark: Any, s: dict[str, Any]) -> None:
    assert "compat_sql" in [r.tableName for r in spark.sql("SHOW TABLES").collect()]
    assert "compat_db" in [r[0] for r in spark.sql("SHOW SCHEMAS").collect()]


@op("SQL", "ALTER TABLE ... SET TBLPROPERTIES, SHOW TBLPROPERTIES")
def tblproperties(spark: Any, s: dict[str, Any]) -> None:
    spark.sql("ALTER TABLE compat_sql SET TBLPROPERTIES ('team' = 'data')")
    props = dict(spark.sql("SHOW TBLPROPERTIES compat_sql").collect())
    assert props["team"] == "data", props


@op("SQL", "ALTER TABLE ... ADD COLUMNS")
def alter_add(spark: Any, s: dict[str, Any]) -> None:
    spark.sql("ALTER TABLE compat_sql ADD COLUMNS (extra INT)")


@op("SQL", "SET key = value")
def set_conf(spark: Any, s: dict[str, Any]) -> None:
    spark.sql("SET spark.sql.shuffle.partitions = 7")
    assert spark.conf.get("spark.sql.shuffle.partitions") == "7"


@op("SQL", "QUALIFY")
def qualify(spark: Any, s: dict[str, Any]) -> None:
    spark.sql("SELECT id FROM range(3) QUALIFY row_number() OVER (ORDER BY id) = 1").collect()


# --------------------------------------------------------------------------- notebook


@op("notebook", "named parameter marker from a widget (%sql)")
def widget_marker(spark: Any, s: dict[str, Any]) -> None:
    s["dbutils"].widgets.text("compat_min", "1")
    s["sql_cell"]("SELECT count(*) AS n FROM compat_sql WHERE id >= :compat_min")
    assert s["sqldf"]().first().n == 2


@op("notebook", "IDENTIFIER(:widget) for a table name (%sql)")
def widget_identifier(spark: Any, s: dict[str, Any]) -> None:
    s["dbutils"].widgets.text("compat_table", "compat_sql")
    s["sql_cell"]("SELECT * FROM IDENTIFIER(:compat_table)")
    assert s["sqldf"]().count() == 2


@op("notebook", "display(df) of a Spark DataFrame")
def display_spark(spark: Any, s: dict[str, Any]) -> None:
    s["display"](spark.range(3))


@op("notebook", "df.display()")
def display_method(spark: Any, s: dict[str, Any]) -> None:
    spark.range(3).display()


@op("notebook", "display(df) of a pandas DataFrame")
def display_pandas(spark: Any, s: dict[str, Any]) -> None:
    import pandas as pd

    s["display"](pd.DataFrame({"x": [1, 2]}))


@op("notebook", "displayHTML")
def display_html(spark: Any, s: dict[str, Any]) -> None:
    s["displayHTML"]("<b>report</b>")


@op("notebook", "SparkSession.getActiveSession(), builder.getOrCreate()")
def active_session(spark: Any, s: dict[str, Any]) -> None:
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    assert session is not None and session is SparkSession.builder.getOrCreate()


# --------------------------------------------------------------------------- APIs


@op("APIs", "spark.catalog.listTables / tableExists / listDatabases")
def catalog_api(spark: Any, s: dict[str, Any]) -> None:
    assert "compat_sql" in [t.name for t in spark.catalog.listTables()]
    assert spark.catalog.tableExists("compat_sql")
    assert "compat_db" in [d.name for d in spark.catalog.listDatabases()]


@op("APIs", "spark.catalog.cacheTable / isCached / clearCache")
def catalog_cache(spark: Any, s: dict[str, Any]) -> None:
    spark.catalog.cacheTable("compat_sql")
    assert spark.catalog.isCached("compat_sql")
    spark.catalog.clearCache()
    assert not spark.catalog.isCached("compat_sql")


@op("APIs", "DataFrame window functions")
def df_window(spark: Any, s: dict[str, Any]) -> None:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("k").orderBy(F.col("id").desc())
    df = spark.range(10).withColumn("k", F.col("id") % 3).withColumn("rn", F.row_number().over(w))
    assert df.where("rn = 1").count() == 3


@op("APIs", "pandas round-trip (createDataFrame / toPandas)")
def pandas_roundtrip(spark: Any, s: dict[str, Any]) -> None:
    import pandas as pd

    back = spark.createDataFrame(pd.DataFrame({"x": [1, 2, 3]})).toPandas()
    assert back["x"].tolist() == [1, 2, 3]


@op("APIs", "Python UDF and pandas UDF")
def udfs(spark: Any, s: dict[str, Any]) -> None:
    import pandas as pd
    from pyspark.sql import functions as F

    double = F.udf(lambda v: v * 2, "long")

    @F.pandas_udf("long")
    def plus_one(v: pd.Series) -> pd.Series:
        return v + 1

    rows = spark.range(3).select(double("id"), plus_one("id")).collect()
    assert [tuple(r) for r in rows] == [(0, 1), (2, 2), (4, 3)]


# --------------------------------------------------------------------------- runner


def _prepare(scratch: str) -> None:
    os.makedirs(scratch, exist_ok=True)
    with open(os.path.join(scratch, "c.csv"), "w") as f:
        f.write("id,name,amount\n1,a,10.5\n2,b,20\n3,a,7\n")
    with open(os.path.join(scratch, "dup.csv"), "w") as f:
        f.write("Time,value,time,\n1,2,3,4\n")
    with open(os.path.join(scratch, "j.json"), "w") as f:
        f.write("\n".join(json.dumps({"id": i, "tag": f"t{i % 2}"}) for i in range(1, 4)))


def run_compat(spark: Any, namespace: dict[str, Any], scratch: str) -> dict[str, dict[str, str]]:
    """Every operation, in order: ``{name: {"area", "status", "detail"}}``."""
    from orchestrator.local.kernel import sql_cells, sql_events
    from orchestrator.local.kernel.engine_errors import UnsupportedByLocalEngine

    _prepare(scratch)
    state = {
        "dir": "file:" + scratch,
        "local": scratch,
        "dbutils": namespace["dbutils"],
        "display": namespace["display"],
        "displayHTML": namespace["displayHTML"],
        "sql_cell": lambda text: sql_cells.run_sql_cell(text, cell="the suite"),
        "sqldf": lambda: namespace["_sqldf"],
    }
    results: dict[str, dict[str, str]] = {}
    for area, name, function in OPERATIONS:
        sql_events.take()
        try:
            globals()[function](spark, state)
        except UnsupportedByLocalEngine as exc:
            detail = f"{exc.reason}; use {exc.instead}"
            results[name] = {"area": area, "status": "refused", "detail": detail}
            continue
        except Exception as exc:  # noqa: BLE001 - the suite reports it
            detail = (type(exc).__name__ + ": " + str(exc)).splitlines()[0][:300]
            results[name] = {"area": area, "status": "fails", "detail": detail}
            continue
        events = sql_events.take()
        kinds = [kind for kind, _ in events]
        status = next((k for k in ("emulated", "translated") if k in kinds), "works")
        detail = "; ".join(dict.fromkeys(d for k, d in events if k == status))
        results[name] = {"area": area, "status": status, "detail": detail}
    return results
