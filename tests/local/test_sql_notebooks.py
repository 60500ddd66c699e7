"""Spark notebooks as Databricks runs them, through real kernels and the SDK: ``%sql`` cells in
Python and R notebooks, SQL notebooks, widgets bound to named parameter markers, the session
there from the first cell, tables shared by every session of a cluster, save modes, and errors
that name the statement and who is at fault, without gRPC noise."""

from __future__ import annotations

import base64
import json
import urllib.parse
from datetime import timedelta
from typing import Any

import pytest
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import Language

from tests.local.runtime_helpers import source
from tests.tools import require_r, require_spark

pytestmark = pytest.mark.slow  # real kernels (tests/tiers.py)

require_spark()

CLUSTER = "0000-000000-local"
WAIT = timedelta(seconds=240)


def upload(client: Any, path: str, *cells: str, language: str = "PYTHON") -> None:
    client.workspace.mkdirs(path.rsplit("/", 1)[0])
    text = source(*cells, language=language)  # type: ignore[arg-type]
    client.workspace.upload(path, text.encode(), language=Language[language], overwrite=True)


def task(key: str, path: str, *after: str, **parameters: str) -> jobs.Task:
    return jobs.Task(
        task_key=key,
        existing_cluster_id=CLUSTER,
        depends_on=[jobs.TaskDependency(a) for a in after] or None,
        notebook_task=jobs.NotebookTask(notebook_path=path, base_parameters=parameters or None),
    )


def run(client: Any, *tasks: jobs.Task) -> dict[str, tuple[jobs.RunTask, jobs.RunOutput]]:
    job = client.jobs.create(name="sql", tasks=list(tasks))
    done = client.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
    return {t.task_key: (t, client.jobs.get_run_output(t.run_id)) for t in done.tasks}


def succeeded(outcome: dict[str, tuple[jobs.RunTask, jobs.RunOutput]]) -> None:
    for key, (run_task, output) in outcome.items():
        state = run_task.state.result_state
        assert state == jobs.RunResultState.SUCCESS, (key, output.error, output.error_trace)


def commands(client: Any, run_id: int) -> list[dict[str, Any]]:
    """The commands of a task run's export (Databricks' notebook model)."""
    page = client.jobs.export_run(run_id).views[0].content
    model = page.split("__DATABRICKS_NOTEBOOK_MODEL = '", 1)[1].split("'", 1)[0]
    decoded = urllib.parse.unquote(base64.b64decode(model).decode())
    return list(json.loads(decoded)["commands"])


def table_of(command: dict[str, Any]) -> dict[str, Any]:
    (table,) = [item for item in command["results"]["data"] if item["type"] == "table"]
    return table


def test_sql_cells_run_their_statements_and_python_sees_the_last_result(client: Any) -> None:
    upload(
        client,
        "/q/report",
        "dbutils.widgets.text('min_id', '0')",
        "# MAGIC %sql\n"
        "# MAGIC -- a comment; not a statement\n"
        "# MAGIC CREATE SCHEMA IF NOT EXISTS report;\n"
        "# MAGIC USE report;\n"
        "# MAGIC CREATE OR REPLACE TABLE orders AS SELECT id, id * 10 AS amount FROM range(6);\n"
        "# MAGIC SELECT id, amount FROM orders WHERE id >= :min_id ORDER BY id",
        "rows = [tuple(r) for r in _sqldf.collect()]\n"
        "assert rows == [(3, 30), (4, 40), (5, 50)], rows\n"
        "assert spark.sql('SELECT current_schema()').first()[0] == 'report'",
        "# MAGIC %sql\nSELECT * FROM IDENTIFIER(:table_name) WHERE amount > :min_id",
        "assert _sqldf.count() == 5, _sqldf.count()  # amounts 10..50 > 3",
    )
    outcome = run(client, task("report", "/q/report", min_id="3", table_name="orders"))
    succeeded(outcome)
    cells = commands(client, outcome["report"][0].run_id)
    table = table_of(cells[1])
    assert table["schema"] == [
        {"name": "id", "type": '"long"'},
        {"name": "amount", "type": '"long"'},
    ]
    assert table["data"] == [[3, 30], [4, 40], [5, 50]]
    assert cells[1]["command"].startswith("%sql\n-- a comment")


def test_a_sql_notebook_is_a_notebook_task(client: Any) -> None:
    upload(
        client,
        "/q/sqlnb",
        "CREATE WIDGET TEXT region DEFAULT 'north'",
        "CREATE SCHEMA IF NOT EXISTS sales;\n"
        "CREATE OR REPLACE TABLE sales.orders AS\n"
        "  SELECT * FROM VALUES (1, 'north'), (2, 'south'), (3, 'north') AS t(id, region)",
        "-- MAGIC %python\n-- MAGIC assert spark.table('sales.orders').count() == 3",
        "SELECT count(*) AS n FROM sales.orders WHERE region = :region",
        language="SQL",
    )
    outcome = run(client, task("sql", "/q/sqlnb", region="south"))
    succeeded(outcome)
    cells = commands(client, outcome["sql"][0].run_id)
    assert table_of(cells[3])["data"] == [[1]]  # the run parameter wins over the default


def test_an_r_notebook_runs_its_sql_cells_beside_r(client: Any) -> None:
    require_r()
    upload(
        client,
        "/q/rnb",
        'dbutils.widgets.text("limit_n", "2")\nx <- 40',
        "%sql\nCREATE SCHEMA IF NOT EXISTS r_sql;\n"
        "CREATE OR REPLACE TABLE r_sql.t AS SELECT id FROM range(5);\n"
        "SELECT id FROM r_sql.t WHERE id < :limit_n ORDER BY id",
        "print(x + 2)",
        "%sql\nDESCRIBE HISTORY r_sql.t",
        language="R",
    )
    outcome = run(client, task("r", "/q/rnb"))
    succeeded(outcome)
    cells = commands(client, outcome["r"][0].run_id)
    assert table_of(cells[1])["data"] == [[0], [1]]
    assert any("42" in item["data"] for item in cells[2]["results"]["data"])
    history = table_of(cells[3])
    assert [c["name"] for c in history["schema"]][:5] == [
        "version",
        "timestamp",
        "userId",
        "userName",
        "operation",
    ]


def test_the_session_is_there_from_the_first_cell(client: Any) -> None:
    upload(
        client,
        "/q/session",
        "from pyspark.sql import SparkSession\n"
        "active = SparkSession.getActiveSession()\n"
        "assert active is not None, 'no active session before spark was used'\n"
        "built = SparkSession.builder.appName('tests').config('spark.sql.shuffle.partitions', '3')"
        ".getOrCreate()\n"
        "assert built is active and active.range(2).count() == 2\n"
        "assert spark.conf.get('spark.sql.shuffle.partitions') == '3'\n"
        "assert spark.sql('SELECT 1').first()[0] == 1",
        "df = spark.range(3)\ndf.display()\ndisplay(df.toPandas())",
    )
    outcome = run(client, task("session", "/q/session"))
    succeeded(outcome)
    cells = commands(client, outcome["session"][0].run_id)
    tables = [item for item in cells[1]["results"]["data"] if item["type"] == "table"]
    assert [t["data"] for t in tables] == [[[0], [1], [2]], [[0], [1], [2]]]


def test_sessions_of_a_cluster_share_tables_views_and_save_modes_hold(client: Any) -> None:
    upload(
        client,
        "/q/first",
        "spark.range(3).write.saveAsTable('main.default.shared_t')\n"
        "spark.range(2).createOrReplaceGlobalTempView('shared_gv')\n"
        "spark.sql('CREATE OR REPLACE VIEW main.default.shared_v AS "
        "SELECT id * 2 AS d FROM main.default.shared_t')\n"
        "spark.range(1).write.saveAsTable('spark_catalog.default.legacy_t')",
    )
    upload(
        client,
        "/q/second",
        "from pyspark.errors import AnalysisException\n"
        "assert spark.table('global_temp.shared_gv').count() == 2\n"
        "assert spark.table('main.default.shared_v').count() == 3\n"
        "assert spark.table('hive_metastore.default.legacy_t').count() == 1\n"
        "assert spark.sql('SELECT * FROM spark_catalog.default.legacy_t').count() == 1\n"
        "try:\n    spark.range(1).write.saveAsTable('main.default.shared_t')\n"
        "except AnalysisException as e:\n    assert 'TABLE_OR_VIEW_ALREADY_EXISTS' in str(e), e\n"
        "else:\n    raise AssertionError('errorifexists wrote')\n"
        "spark.range(5).write.mode('ignore').saveAsTable('main.default.shared_t')\n"
        "assert spark.table('main.default.shared_t').count() == 3\n"
        "spark.range(2).write.mode('append').saveAsTable('main.default.shared_t')\n"
        "assert spark.table('main.default.shared_t').count() == 5",
    )
    upload(
        client,
        "/q/third",
        "assert spark.table('main.default.shared_t').count() == 5  # the append, not a copy\n"
        "spark.range(1).write.mode('overwrite').saveAsTable('main.default.shared_t')\n"
        "assert spark.table('main.default.shared_t').count() == 1\n"
        "spark.sql('DROP TABLE main.default.shared_t')\n"
        "spark.range(7).write.saveAsTable('main.default.shared_t')  # a new location\n"
        "dbutils.notebook.run('./child', 120)",
    )
    upload(client, "/q/child", "assert spark.table('main.default.shared_t').count() == 7")
    outcome = run(
        client,
        task("first", "/q/first"),
        task("second", "/q/second", "first"),
        task("third", "/q/third", "second"),
    )
    succeeded(outcome)


def test_engine_errors_name_the_statement_and_who_is_at_fault(client: Any) -> None:
    upload(
        client,
        "/q/errors",
        "# MAGIC %sql\nCREATE TABLE IF NOT EXISTS errs AS SELECT 1 AS id;\nOPTIMIZE errs;\n"
        "ALTER TABLE errs ADD COLUMNS (x INT)",
    )
    upload(client, "/q/typo", "spark.sql('SELECT * FROM no_such_table').collect()")
    outcome = run(client, task("errors", "/q/errors"), task("typo", "/q/typo"))
    output = outcome["errors"][1]
    assert output.error == (
        "UnsupportedByLocalEngine: `ALTER TABLE errs ADD COLUMNS (x INT)` (in statement 3 "
        "(line 3) of cell 1 of /q/errors) is not supported by the local Spark engine "
        "(Sail 0.7.2): the engine cannot alter a table. Use append with "
        "df.write.option('mergeSchema', 'true') to add columns instead."
    )
    typo = outcome["typo"][1]
    assert typo.error.startswith("AnalysisException: ")
    assert "no_such_table" in typo.error
    assert "Cause: the notebook's SQL or data, not the local engine." in typo.error
    for _, out in outcome.values():
        assert "GRPC" not in (out.error_trace or "")
        assert "pyspark/sql/connect" not in (out.error_trace or "")
    cells = commands(client, outcome["typo"][0].run_id)
    assert not [i for i in cells[0]["results"]["data"] if "GRPC Error" in str(i.get("data"))]


def test_optimize_compacts_a_delta_table_and_the_engine_still_reads_it(client: Any) -> None:
    upload(
        client,
        "/q/compact",
        "for n in range(4):\n"
        "    spark.range(n * 10, n * 10 + 10).write.format('delta').mode('append')"
        ".saveAsTable('compacted')",
        "metrics = spark.sql('OPTIMIZE compacted').collect()[0]['metrics']\n"
        "assert metrics['numFilesRemoved'] >= 4 and metrics['numFilesAdded'] == 1, metrics\n"
        "assert spark.table('compacted').count() == 40\n"
        "history = spark.sql('DESCRIBE HISTORY compacted').collect()\n"
        "assert history[0]['operation'] == 'OPTIMIZE', history[0]",
    )
    succeeded(run(client, task("compact", "/q/compact")))
