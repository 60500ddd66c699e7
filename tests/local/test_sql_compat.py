"""The Databricks SQL compatibility layer, without an engine: how SQL cells are split into
statements, which markers are named parameters, and what each statement becomes (works,
translated, emulated or refused)."""

from __future__ import annotations

import pytest

from orchestrator.local.kernel.sql_compat import TableRef, plan
from orchestrator.local.kernel.sql_text import named_markers, rename_catalog, split_statements

pytestmark = pytest.mark.fast


def test_a_cell_splits_at_top_level_semicolons_only() -> None:
    cell = (
        "-- a comment; not a split\n"
        "CREATE TABLE t AS SELECT 'a;b' AS s, `odd;name` AS c;\n"
        "/* block; /* nested; */ still comment */\n"
        "SELECT \"x;y\", 'it\\'s; fine' FROM t;;\n"
        "  -- only a comment\n"
    )
    statements = split_statements(cell)
    assert [s.text for s in statements] == [
        "-- a comment; not a split\nCREATE TABLE t AS SELECT 'a;b' AS s, `odd;name` AS c",
        "/* block; /* nested; */ still comment */\nSELECT \"x;y\", 'it\\'s; fine' FROM t",
    ]
    assert [s.line for s in statements] == [1, 3]


def test_named_markers_are_not_casts_or_json_paths() -> None:
    sql = (
        "SELECT raw:owner, x::int, :limit_value AS l, ':nope' FROM t "
        "WHERE d < :day AND k IN (:day, :other) AND f(a):b IS NULL LIMIT :n"
    )
    assert named_markers(sql) == ["limit_value", "day", "other", "n"]
    assert named_markers("SELECT * FROM IDENTIFIER(:table_name)") == ["table_name"]
    assert named_markers("SELECT 1 -- :not_a_marker") == []


def test_the_legacy_catalog_name_is_renamed_outside_strings() -> None:
    sql = (
        "SELECT 'spark_catalog.x' FROM spark_catalog.db.t JOIN `spark_catalog`.db.u "
        "ON a.spark_catalog.b"
    )
    assert rename_catalog(sql, "spark_catalog", "hive_metastore") == (
        "SELECT 'spark_catalog.x' FROM hive_metastore.db.t JOIN hive_metastore.db.u "
        "ON a.spark_catalog.b"
    )


@pytest.mark.parametrize(
    ("statement", "kind", "statements"),
    [
        ("USE probe_db", "translated", ("USE SCHEMA probe_db",)),
        ("use `my db`", "translated", ("USE SCHEMA `my db`",)),
        ("USE main.sales", "translated", ("USE CATALOG main", "USE SCHEMA sales")),
        (
            "USE SCHEMA hive_metastore.x",
            "translated",
            ("USE CATALOG hive_metastore", "USE SCHEMA x"),
        ),
        (
            "USE spark_catalog.default",
            "translated",
            ("USE CATALOG hive_metastore", "USE SCHEMA default"),
        ),
        ("USE SCHEMA sales", "works", ("USE SCHEMA sales",)),
        ("USE CATALOG main", "works", ("USE CATALOG main",)),
        ("USE CATALOG spark_catalog", "translated", ("USE CATALOG hive_metastore",)),
        ("DESCRIBE t1", "translated", ("DESCRIBE TABLE t1",)),
        ("desc main.s.t", "translated", ("DESCRIBE TABLE main.s.t",)),
        ("DESCRIBE EXTENDED t1", "translated", ("DESCRIBE TABLE EXTENDED t1",)),
        ("DESCRIBE FORMATTED t1", "translated", ("DESCRIBE TABLE EXTENDED t1",)),
        ("DESCRIBE TABLE t1", "works", ("DESCRIBE TABLE t1",)),
        ("DESCRIBE SCHEMA main.s", "works", ("DESCRIBE SCHEMA main.s",)),
        (
            "SELECT * FROM spark_catalog.default.t1",
            "translated",
            ("SELECT * FROM hive_metastore.default.t1",),
        ),
        ("SELECT 1", "works", ("SELECT 1",)),
        ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", "works", None),
        ("ALTER TABLE t SET TBLPROPERTIES ('a' = 'b')", "works", None),
        ("CREATE TABLE t (function STRING, s STRUCT<a:INT, b:STRING>)", "works", None),
        ("SELECT qualify, x FROM t", "works", None),
        ("SELECT CAST(NULL AS STRUCT<k:INT>) AS s", "works", None),
    ],
)
def test_statements_that_run_on_the_engine(
    statement: str, kind: str, statements: tuple[str, ...] | None
) -> None:
    found = plan(statement)
    assert found.kind == kind, found
    assert found.statements == (statements or (statement,))


@pytest.mark.parametrize(
    ("statement", "emulation", "args"),
    [
        ("DESCRIBE DETAIL main.s.t", "detail", {"target": TableRef(name="main.s.t")}),
        ("DESCRIBE DETAIL '/data/events/'", "detail", {"target": TableRef(path="/data/events/")}),
        ("DESCRIBE DETAIL delta.`/x/y`", "detail", {"target": TableRef(path="/x/y")}),
        ("DESCRIBE HISTORY t LIMIT 1", "history", {"target": TableRef(name="t"), "limit": 1}),
        (
            "DESCRIBE HISTORY spark_catalog.db.t",
            "history",
            {"target": TableRef(name="hive_metastore.db.t"), "limit": None},
        ),
        ("DESCRIBE TABLE t id", "describe_column", {"target": TableRef(name="t"), "column": "id"}),
        ("DESCRIBE QUERY SELECT 1 AS x", "describe_query", {"query": "SELECT 1 AS x"}),
        (
            "CACHE LAZY TABLE t",
            "cache",
            {"target": TableRef(name="t"), "query": None, "lazy": True},
        ),
        (
            "CACHE TABLE c OPTIONS ('storageLevel' 'DISK_ONLY') AS SELECT * FROM t",
            "cache",
            {"target": TableRef(name="c"), "query": "SELECT * FROM t", "lazy": False},
        ),
        ("UNCACHE TABLE IF EXISTS t", "uncache", {"target": TableRef(name="t"), "if_exists": True}),
        ("CLEAR CACHE", "noop", {"clear": True}),
        ("REFRESH TABLE main.s.t", "refresh", {"target": TableRef(name="main.s.t")}),
        ("OPTIMIZE t ZORDER BY (a)", "optimize", {"target": TableRef(name="t")}),
        (
            "VACUUM t RETAIN 0 HOURS DRY RUN",
            "vacuum",
            {"target": TableRef(name="t"), "hours": 0.0, "dry_run": True},
        ),
        ("VACUUM t", "vacuum", {"target": TableRef(name="t"), "hours": None, "dry_run": False}),
        (
            "RESTORE TABLE t TO VERSION AS OF 1",
            "restore",
            {"target": TableRef(name="t"), "by": "version", "value": "1"},
        ),
        ("SET", "set", {"key": None, "value": None}),
        (
            "SET spark.sql.shuffle.partitions = 4",
            "set",
            {"key": "spark.sql.shuffle.partitions", "value": "4"},
        ),
        (
            "SET TIME ZONE 'Europe/Paris'",
            "set",
            {"key": "spark.sql.session.timeZone", "value": "Europe/Paris"},
        ),
        ("RESET spark.sql.shuffle.partitions", "reset", {"key": "spark.sql.shuffle.partitions"}),
        ("TRUNCATE TABLE t", "truncate", {"target": TableRef(name="t")}),
        ("ANALYZE TABLE t COMPUTE STATISTICS", "noop", {}),
        ("SHOW TBLPROPERTIES t", "tblproperties", {"target": TableRef(name="t"), "key": None}),
        ("SHOW PARTITIONS t", "partitions", {"target": TableRef(name="t")}),
        (
            "CREATE TABLE IF NOT EXISTS t2 LIKE t",
            "create_like",
            {"target": TableRef(name="t2"), "source": TableRef(name="t"), "if_not_exists": True},
        ),
        (
            "CREATE OR REPLACE TABLE t USING delta PARTITIONED BY (p) AS SELECT 1 AS x, 2 AS p",
            "replace_table",
            {"target": TableRef(name="t"), "query": "SELECT 1 AS x, 2 AS p", "partitions": ["p"]},
        ),
        (
            'CREATE WIDGET TEXT day DEFAULT "2024-01-01"',
            "create_widget",
            {"kind": "text", "name": "day", "default": "2024-01-01", "choices": None},
        ),
        ("REMOVE WIDGET day", "remove_widget", {"name": "day"}),
    ],
)
def test_statements_the_kernel_emulates(
    statement: str, emulation: str, args: dict[str, object]
) -> None:
    found = plan(statement)
    assert (found.kind, found.emulation, found.args) == ("emulated", emulation, args)


@pytest.mark.parametrize(
    ("statement", "what"),
    [
        ("ALTER TABLE t ADD COLUMNS (z INT)", "ALTER TABLE ... ADD"),
        ("ALTER TABLE t RENAME TO u", "ALTER TABLE ... RENAME"),
        ("COMMENT ON TABLE t IS 'x'", "COMMENT ON"),
        ("SHOW CREATE TABLE t", "SHOW CREATE TABLE"),
        ("CONVERT TO DELTA parquet.`/x`", "CONVERT TO DELTA"),
        ("COPY INTO t FROM '/x' FILEFORMAT = CSV", "COPY INTO"),
        (
            "CREATE OR REPLACE TEMPORARY FUNCTION f(x INT) RETURNS INT RETURN x + 1",
            "CREATE FUNCTION",
        ),
        ("DECLARE OR REPLACE VARIABLE v INT", "SQL session variables"),
        ("SELECT id FROM t QUALIFY row_number() OVER (ORDER BY id) = 1", "QUALIFY"),
        ("SELECT raw:owner FROM t", "the JSON path operator (col:path)"),
        ("GRANT SELECT ON TABLE t TO `x`", "GRANT"),
        ("CREATE CATALOG IF NOT EXISTS c", "CREATE CATALOG"),
    ],
)
def test_statements_refused_with_what_to_use_instead(statement: str, what: str) -> None:
    found = plan(statement)
    assert (found.kind, found.what) == ("refused", what)
    assert found.reason and found.instead
