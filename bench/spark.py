"""``python -m bench.spark``: the Spark engines of the local workspace, measured on this machine.

Sail (``pysail``, the default engine, one per local cluster) beside Spark's own JVM Spark
Connect server from the pyspark wheel (``spark-submit --class ...SparkConnectServer``), which
needs a full ``pyspark`` and Java 17. pyspark's classic wheel and the ``pyspark-client`` that
the kernels use cannot share one environment (both are the ``pyspark`` package), so the JVM
figures need ``--jvm-python``: an interpreter of another environment with ``pyspark`` 4.x::

    python -m venv /tmp/jvmvenv && /tmp/jvmvenv/bin/pip install pyspark==4.3.0 pandas pyarrow
    .venv/bin/python -m bench.spark --jvm-python /tmp/jvmvenv/bin/python

Rows: install size; cold cluster start to the first query's result; a second kernel attaching
(import + connect + first query), each from a fresh interpreter and, as builds meet them, from
the local workspace's warm kernel pool (Spark's client imported while the kernel waited); ten
small Spark notebooks run as one job on the local workspace (real kernels, one engine) against
ten per-kernel JVM sessions (each a fresh process
with its own ``local[1]`` JVM, the way notebooks got Spark before; kernel start not counted,
which favours the JVM); peak RSS of the engine plus four kernels using it; and a compatibility
suite of typical notebook operations (see ``bench/spark_ops.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.spark_engines import (
    CLASSIC,
    attach_seconds,
    dir_mb,
    dist_mb,
    jvm_engine,
    rss_mb,
    sail_engine,
    script,
)
from bench.spark_ops import compat_jvm, compat_sail

TARGETS = {"cold": "<= 3 s", "attach": "<= 2 s", "job": ">= 5x faster", "memory": "<= 2048 MB"}
CLUSTER = "0000-000000-local"
NOTEBOOK = (
    "# Databricks notebook source\n"
    "df = spark.range(100).selectExpr('id % 7 AS k').groupBy('k').count()\n"
    "assert df.count() == 7\n"
)
CLIENT_DISTS = [
    "pyspark-client",
    "pyarrow",
    "pandas",
    "numpy",
    "grpcio",
    "grpcio-status",
    "googleapis-common-protos",
    "zstandard",
]
ATTACH_NOTEBOOK = (
    "# Databricks notebook source\n"
    "import time\n"
    "_started = time.perf_counter()\n"
    "spark.range(1).collect()\n"
    "dbutils.notebook.exit(str(time.perf_counter() - _started))\n"
)
#: seconds for a warm pool to refill and import Spark's client in its idle kernels
POOL_SETTLE_SECONDS = 8.0
Row = tuple[str, str, str, str]


# --------------------------------------------------------------------------- scenarios


def cold_and_attach(engine: str, scratch: Path, jvm_python: str | None) -> dict[str, float]:
    """Engine start, first query from a fresh client, a second client attaching, engine RSS."""
    if engine == "sail":
        context = sail_engine(scratch / "state")
    else:
        context = jvm_engine(jvm_python or "", scratch)
    started = time.monotonic()
    with context as (url, listen, pid):
        first = attach_seconds(sys.executable, url)
        cold = time.monotonic() - started
        attach = attach_seconds(sys.executable, url)
        rss = rss_mb(pid)
    return {"listen": listen, "first": first, "cold": cold, "attach": attach, "rss": rss}


def pooled_cold_and_attach(scratch: Path) -> dict[str, float]:
    """As builds meet Spark: a warm local workspace whose cluster is TERMINATED is started
    through the Clusters API; then one notebook times its first ``spark`` query from inside its
    (pooled) kernel. The next notebook, on the running engine, times its attach the same way."""
    from databricks.sdk import WorkspaceClient

    from bench.notebook_runs import exit_value, submit_notebook, upload_notebook
    from orchestrator.local.server import ClusterSpec, start_local_workspace

    ws = start_local_workspace(
        Path(tempfile.mkdtemp(dir=scratch)),
        cluster_start_delay=0.0,
        max_workers=2,
        clusters=(ClusterSpec(cluster_id=CLUSTER, state="TERMINATED"),),
    )
    try:
        ws.warm()
        w = WorkspaceClient(host=ws.url, token=ws.token, auth_type="pat")
        upload_notebook(w, "/bench/attach", ATTACH_NOTEBOOK)

        def first_query() -> float:
            value, error = exit_value(w, submit_notebook(w, "/bench/attach", run_name="attach"))
            assert value is not None, error
            return float(value)

        time.sleep(POOL_SETTLE_SECONDS)
        started = time.monotonic()
        w.clusters.start_and_wait(CLUSTER)
        running = time.monotonic() - started
        first = first_query()
        time.sleep(POOL_SETTLE_SECONDS)
        attach = first_query()
    finally:
        ws.stop()
    return {"running": running, "first": first, "cold": running + first, "attach": attach}


def _run_notebooks(scratch: Path, notebook: str, count: int, workers: int) -> float:
    """``count`` copies of ``notebook`` as one job on a fresh local workspace; seconds."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service import jobs

    from bench.notebook_runs import upload_notebook
    from orchestrator.local.server import start_local_workspace

    ws = start_local_workspace(
        Path(tempfile.mkdtemp(dir=scratch)), cluster_start_delay=0.0, max_workers=workers
    )
    try:
        w = WorkspaceClient(host=ws.url, token=ws.token, auth_type="pat")
        upload_notebook(w, "/bench/nb", notebook)
        task = jobs.NotebookTask(notebook_path="/bench/nb")
        tasks = [
            jobs.Task(task_key=f"t{i}", existing_cluster_id=CLUSTER, notebook_task=task)
            for i in range(count)
        ]
        job = w.jobs.create(name="bench-spark", tasks=tasks)
        assert job.job_id is not None
        started = time.monotonic()
        run = w.jobs.run_now_and_wait(job.job_id)
        seconds = time.monotonic() - started
        assert run.state is not None and run.state.result_state == jobs.RunResultState.SUCCESS
    finally:
        ws.stop()
    return seconds


def ten_notebook_job(scratch: Path, workers: int) -> float:
    """Ten small Spark notebooks as one job on the local workspace (one engine), in seconds."""
    return _run_notebooks(scratch, NOTEBOOK, 10, workers)


def ten_jvm_sessions(jvm_python: str, workers: int) -> float:
    """Ten fresh processes, each with its own local[1] JVM session, ``workers`` at a time."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    path = script(CLASSIC)

    def one(_: int) -> None:
        subprocess.run([jvm_python, path], capture_output=True, check=True, timeout=600)

    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(10)))
    return time.monotonic() - started


def memory_four_kernels(scratch: Path) -> float:
    """Peak RSS (MB) of the engine plus four kernels using it at once (this process excluded)."""
    import psutil

    base = psutil.Process().memory_info().rss / 1e6
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            peak[0] = max(peak[0], rss_mb(os.getpid()) - base)

    notebook = NOTEBOOK + "\n# COMMAND ----------\n\nimport time; time.sleep(4)\n"
    threading.Thread(target=sample, daemon=True).start()
    try:
        _run_notebooks(scratch, notebook, 4, 4)
    finally:
        stop.set()
    return peak[0]


# --------------------------------------------------------------------------- report


def _emit(rows: list[Row]) -> None:
    """Print rows as they are measured (a slow JVM section must not lose the rest)."""
    for row in rows:
        print("| " + " | ".join(row) + " |", flush=True)


def _size_rows(jvm: str | None) -> list[Row]:
    engine = f"{dist_mb(sys.executable, ['pysail']):.0f} MB"
    client = f"{dist_mb(sys.executable, CLIENT_DISTS):.0f} MB"
    big = "n/a"
    if jvm:
        jdk = dir_mb(Path("/usr/lib/jvm"))
        big = f"{dist_mb(jvm, ['pyspark', 'py4j']):.0f} MB + JDK {jdk:.0f} MB"
    return [
        ("install size (engine)", engine, big, ""),
        ("install size (client)", client, client, ""),
    ]


def _start_rows(scratch: Path, jvm: str | None) -> list[Row]:
    sail = cold_and_attach("sail", scratch, None)
    big = cold_and_attach("jvm", scratch, jvm) if jvm else None
    pooled = pooled_cold_and_attach(scratch)

    def cell(key: str, values: dict[str, float] | None, unit: str = "s") -> str:
        if values is None:
            return "n/a"
        return f"{values[key]:.2f} s" if unit == "s" else f"{values[key]:.0f} MB"

    return [
        ("engine start (listening)", cell("listen", sail), cell("listen", big), ""),
        (
            "cold start to first query result",
            cell("cold", sail),
            cell("cold", big),
            TARGETS["cold"],
        ),
        ("per-kernel attach", cell("attach", sail), cell("attach", big), TARGETS["attach"]),
        (
            "cold start to first query, warm pool (cluster start + first query in a notebook)",
            f"{pooled['cold']:.2f} s ({pooled['running']:.2f} + {pooled['first']:.2f})",
            "",
            TARGETS["cold"],
        ),
        (
            "per-kernel attach, warm pool (in a notebook)",
            cell("attach", pooled),
            "",
            TARGETS["attach"],
        ),
        ("engine RSS, 2 clients", cell("rss", sail, "MB"), cell("rss", big, "MB"), ""),
    ]


def _job_rows(scratch: Path, jvm: str | None, workers: int) -> list[Row]:
    job = ten_notebook_job(scratch, workers)
    classic = ten_jvm_sessions(jvm, workers) if jvm else None
    sail = f"{job:.1f} s, one engine" + (f" ({classic / job:.1f}x faster)" if classic else "")
    big = f"{classic:.1f} s, 10 local[1] JVMs" if classic else "n/a"
    memory = f"{memory_four_kernels(scratch):.0f} MB"
    return [
        (f"10 Spark notebooks, {workers} at a time", sail, big, TARGETS["job"]),
        ("peak RSS, engine + 4 kernels", memory, "", TARGETS["memory"]),
    ]


def _compat_rows(scratch: Path, jvm: str | None) -> list[Row]:
    sail = compat_sail(scratch)
    big = compat_jvm(jvm, scratch) if jvm else {}
    return [(f"compat: {k}", sail.get(k, "-"), big.get(k, "n/a"), "") for k in sail | big]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.spark", description=__doc__)
    parser.add_argument("--jvm-python", help="python of an environment with full pyspark 4.x")
    parser.add_argument("--workers", type=int, default=2, help="notebooks at a time (job)")
    args = parser.parse_args(argv)
    print(f"bench.spark on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print("| measure | Sail (default) | JVM SparkConnectServer | target |")
    print("|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        scratch = Path(tmp)
        _emit(_size_rows(args.jvm_python))
        _emit(_start_rows(scratch, args.jvm_python))
        _emit(_job_rows(scratch, args.jvm_python, args.workers))
        _emit(_compat_rows(scratch, args.jvm_python))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
