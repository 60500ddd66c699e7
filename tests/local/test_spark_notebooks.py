"""Spark in the local workspace, through real kernels and the SDK: one engine per cluster,
a Spark Connect session per kernel, shared Delta tables with three-level names, paths that
agree with dbutils.fs, and the Databricks error for ``sc``."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import Language

from tests.local.runtime_helpers import source
from tests.tools import require_spark

pytestmark = pytest.mark.slow  # real kernels (tests/tiers.py)

require_spark()

CLUSTER = "0000-000000-local"
WAIT = timedelta(seconds=180)


def upload(client, path: str, *cells: str) -> None:  # type: ignore[no-untyped-def]
    client.workspace.mkdirs(path.rsplit("/", 1)[0])
    client.workspace.upload(path, source(*cells).encode(), language=Language.PYTHON, overwrite=True)


def task(key: str, path: str, *after: str) -> jobs.Task:
    return jobs.Task(
        task_key=key,
        existing_cluster_id=CLUSTER,
        depends_on=[jobs.TaskDependency(a) for a in after] or None,
        notebook_task=jobs.NotebookTask(notebook_path=path),
    )


def run_job(client, *tasks: jobs.Task) -> dict[str, jobs.RunTask]:  # type: ignore[no-untyped-def]
    job = client.jobs.create(name="spark", tasks=list(tasks))
    run = client.jobs.run_now_and_wait(job.job_id, timeout=WAIT)
    by_key = {t.task_key: t for t in run.tasks}
    for key, t in by_key.items():
        out = client.jobs.get_run_output(t.run_id)
        assert t.state.result_state == jobs.RunResultState.SUCCESS, (
            key,
            out.error,
            out.error_trace,
        )
    return by_key


def test_two_tasks_share_a_table_but_not_temp_views(client, workspace) -> None:  # type: ignore[no-untyped-def]
    upload(
        client,
        "/t/writer",
        "spark.range(3).write.saveAsTable('main.default.shared')",
        "spark.range(2).createOrReplaceTempView('only_mine')\n"
        "spark.conf.set('spark.sql.shuffle.partitions', '7')",
    )
    upload(
        client,
        "/t/reader",
        "assert spark.table('main.default.shared').count() == 3\n"
        "assert sorted(r.id for r in spark.sql('SELECT id FROM main.default.shared').collect())"
        " == [0, 1, 2]",
        "from pyspark.errors import AnalysisException\n"
        "try:\n    spark.table('only_mine').count()\nexcept AnalysisException:\n    pass\n"
        "else:\n    raise AssertionError('temp view leaked between sessions')",
        "assert spark.conf.get('spark.sql.shuffle.partitions') != '7'",
    )
    run_job(client, task("writer", "/t/writer"), task("reader", "/t/reader", "writer"))
    # managed tables live under the state dir, never in the workspace tree
    state = Path(workspace.store.state_dir)
    assert list((state / "spark" / "warehouse").glob("shared-*/_delta_log"))
    assert not list(Path(workspace.store.workspace_root).rglob("spark-warehouse"))
    assert workspace.clusters.engines is not None
    endpoint = workspace.clusters.engines.endpoint(CLUSTER)
    assert endpoint is not None and endpoint.host == "127.0.0.1"


def test_delta_merge_and_three_level_names(client) -> None:  # type: ignore[no-untyped-def]
    upload(
        client,
        "/t/delta",
        "spark.sql('CREATE SCHEMA IF NOT EXISTS main.sales')\n"
        "spark.createDataFrame([(1, 'a'), (2, 'b')], 'id INT, v STRING')"
        ".write.saveAsTable('main.sales.t')\n"
        "detail = {r.col_name: r.data_type for r in "
        "spark.sql('DESCRIBE TABLE EXTENDED main.sales.t').collect()}\n"
        "assert detail['Provider'] == 'delta', detail",
        "spark.sql(\"MERGE INTO main.sales.t t USING (SELECT 2 AS id, 'B' AS v UNION ALL "
        "SELECT 3, 'c') s ON t.id = s.id WHEN MATCHED THEN UPDATE SET * "
        'WHEN NOT MATCHED THEN INSERT *")\n'
        "rows = [tuple(r) for r in spark.table('main.sales.t').orderBy('id').collect()]\n"
        "assert rows == [(1, 'a'), (2, 'B'), (3, 'c')], rows",
        "spark.sql('USE CATALOG main')\nspark.sql('USE SCHEMA sales')\n"
        "assert spark.table('t').count() == 3\n"
        "assert spark.sql('SELECT current_catalog()').first()[0] == 'main'",
        "spark.range(4).write.format('delta').mode('overwrite').save('dbfs:/delta/d1')\n"
        "spark.range(2).write.format('delta').mode('append').save('dbfs:/delta/d1')\n"
        "assert spark.read.format('delta').load('dbfs:/delta/d1').count() == 6\n"
        "assert any(f.name == '_delta_log/' for f in dbutils.fs.ls('dbfs:/delta/d1'))",
    )
    upload(
        client,
        "/t/after",
        "assert spark.sql('SELECT current_catalog(), current_schema()').first() == "
        "('main', 'default')\n"
        "assert spark.table('main.sales.t').count() == 3",
    )
    run_job(client, task("delta", "/t/delta"), task("after", "/t/after", "delta"))


def test_dbutils_fs_and_spark_paths_agree(client) -> None:  # type: ignore[no-untyped-def]
    upload(
        client,
        "/t/paths",
        "dbutils.fs.put('dbfs:/in/a.csv', 'a,b\\n1,2\\n3,4\\n', True)\n"
        "assert spark.read.option('header', True).csv('dbfs:/in/a.csv').count() == 2\n"
        "assert spark.read.csv('/dbfs/in/a.csv', header=True).count() == 2\n"
        "assert spark.read.csv('/in/a.csv', header=True).count() == 2",
        "dbutils.fs.mkdirs('/Volumes/main/default/v')\n"
        "spark.range(3).write.mode('overwrite').parquet('/Volumes/main/default/v/p')\n"
        "names = [f.name for f in dbutils.fs.ls('/Volumes/main/default/v/p')]\n"
        "assert any(n.endswith('.parquet') for n in names), names\n"
        "import os\nassert os.path.isdir('/Volumes/main/default/v/p')",
        "spark.createDataFrame([{'x': 1}]).write.mode('overwrite').json('dbfs:/out/j')\n"
        "assert len([f for f in dbutils.fs.ls('dbfs:/out/j') if f.name.endswith('.json')]) >= 1",
        "from pyspark.errors import AnalysisException\n"
        "try:\n    spark.read.csv('dbfs:/no/such.csv').count()\n"
        "except AnalysisException as e:\n    assert 'PATH_NOT_FOUND' in str(e), e\n"
        "else:\n    raise AssertionError('a missing path read as empty')",
    )
    run_job(client, task("paths", "/t/paths"))


def test_sc_and_rdd_fail_with_the_databricks_error(client) -> None:  # type: ignore[no-untyped-def]
    upload(
        client,
        "/t/sc",
        "from pyspark.errors import PySparkAttributeError\n"
        "for use in (lambda: sc.parallelize([1]), lambda: spark.sparkContext,"
        " lambda: spark.range(1).rdd):\n"
        "    try:\n        use()\n    except PySparkAttributeError as e:\n"
        "        assert 'JVM_ATTRIBUTE_NOT_SUPPORTED' in str(e) and 'DataFrame' in str(e)\n"
        "    else:\n        raise AssertionError('no error')",
        "display(spark.range(2))",
    )
    by_key = run_job(client, task("sc", "/t/sc"))
    export = client.jobs.export_run(by_key["sc"].run_id)
    assert export.views and "<table" in export.views[0].content


def test_child_notebook_uses_the_same_engine(client, workspace) -> None:  # type: ignore[no-untyped-def]
    upload(client, "/t/child", "spark.range(5).write.saveAsTable('main.default.from_child')")
    upload(
        client,
        "/t/parent",
        "dbutils.notebook.run('./child', 120)",
        "assert spark.table('main.default.from_child').count() == 5",
    )
    run_job(client, task("parent", "/t/parent"))
    engines = list((Path(workspace.store.state_dir) / "spark" / "engines").iterdir())
    assert [e.name for e in engines] == [CLUSTER]


def test_sparkr_and_sparklyr_fail_with_one_clear_line(client) -> None:  # type: ignore[no-untyped-def]
    client.workspace.mkdirs("/t")
    client.workspace.upload(
        "/t/r_spark",
        source("library(stats)\nx <- 1", "library(SparkR)", language="R").encode(),
        language=Language.R,
        overwrite=True,
    )
    run = client.jobs.submit(
        run_name="r",
        tasks=[
            jobs.SubmitTask(
                task_key="r",
                existing_cluster_id=CLUSTER,
                notebook_task=jobs.NotebookTask(notebook_path="/t/r_spark"),
            )
        ],
    ).result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.FAILED
    output = client.jobs.get_run_output(run.tasks[0].run_id)
    assert "SparkR is not available: the local workspace has no Spark for R" in output.error
    assert output.error_trace.startswith("Cell 2 of /t/r_spark")  # the error names no cell


def test_sample_spark_notebooks_build_and_check_a_delta_table(client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.local.test_end_to_end import REPO, upload_tree

    upload_tree(client, REPO / "databricks", "/Shared/builds/sample/1")
    results = tmp_path / "results"
    path = "/Shared/builds/sample/1/tests/run_spark_tests"
    job = client.jobs.create(
        name="build-sample",
        tasks=[
            jobs.Task(
                task_key="spark",
                existing_cluster_id=CLUSTER,
                notebook_task=jobs.NotebookTask(
                    notebook_path=path, base_parameters={"results_dir": str(results)}
                ),
            )
        ],
    )
    by_key = run_job_by_id(client, job.job_id)
    xml = (results / "run_spark_tests.xml").read_text()
    assert 'tests="5"' in xml and 'failures="0"' in xml
    out = client.jobs.get_run_output(by_key["spark"].run_id)
    assert json.loads(out.notebook_output.result)["tests"] == 5


def run_job_by_id(client, job_id: int) -> dict[str, jobs.RunTask]:  # type: ignore[no-untyped-def]
    run = client.jobs.run_now_and_wait(job_id, timeout=WAIT)
    by_key = {t.task_key: t for t in run.tasks}
    for key, t in by_key.items():
        out = client.jobs.get_run_output(t.run_id)
        assert t.state.result_state == jobs.RunResultState.SUCCESS, (
            key,
            out.error,
            out.error_trace,
        )
    return by_key
