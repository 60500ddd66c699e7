"""Engines and client processes for ``bench.spark``: a Sail engine as a local cluster starts it,
Spark's JVM Spark Connect server from a full pyspark wheel, and client processes that attach.

Clients run as script files: pyspark looks for SPARK_HOME (and exits) under ``python -c``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "CLASSIC",
    "attach_seconds",
    "dir_mb",
    "dist_mb",
    "jvm_engine",
    "rss_mb",
    "sail_engine",
    "script",
]

ATTACH = """
import sys, time
t0 = time.monotonic()
from pyspark.sql import SparkSession
spark = SparkSession.builder.remote(sys.argv[1]).create()
n = spark.range(1000).selectExpr("sum(id)").first()[0]
print(time.monotonic() - t0)
"""

CLASSIC = """
import time
t0 = time.monotonic()
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
         .config("spark.sql.shuffle.partitions", "1").getOrCreate())
spark.range(100).selectExpr("id % 7 AS k").groupBy("k").count().collect()
print(time.monotonic() - t0)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def script(code: str) -> str:
    """``code`` as a script file (removed at exit): pyspark looks for SPARK_HOME, and exits,
    under ``python -c``."""
    fd, path = tempfile.mkstemp(prefix="bench-spark-", suffix=".py")
    with os.fdopen(fd, "w") as handle:
        handle.write(code)
    atexit.register(Path(path).unlink, missing_ok=True)
    return path


def attach_seconds(python: str, url: str) -> float:
    done = subprocess.run(
        [python, script(ATTACH), url], capture_output=True, text=True, check=True, timeout=300
    )
    return float(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- sizes


def dist_mb(python: str, names: list[str]) -> float:
    code = (
        "import importlib.metadata as m, sys, os\n"
        "total = 0\n"
        "for name in sys.argv[1:]:\n"
        "    try: d = m.distribution(name)\n"
        "    except m.PackageNotFoundError: continue\n"
        "    for f in d.files or []:\n"
        "        p = d.locate_file(f)\n"
        "        total += os.path.getsize(p) if os.path.isfile(p) else 0\n"
        "print(total)\n"
    )
    done = subprocess.run([python, "-c", code, *names], capture_output=True, text=True, check=True)
    return int(done.stdout) / 1e6


def dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


# --------------------------------------------------------------------------- sail


@contextlib.contextmanager
def sail_engine(state: Path) -> Iterator[tuple[str, float, int]]:
    """A Sail engine as a cluster starts it: (url, seconds to listen, pid)."""
    from orchestrator.local.runtime.spark_engines import SparkEngines

    engines = SparkEngines(state)
    started = time.monotonic()
    endpoint = engines.start("bench")
    try:
        yield endpoint.url, time.monotonic() - started, endpoint.pid
    finally:
        engines.stop_all()


@contextlib.contextmanager
def jvm_engine(python: str, scratch: Path) -> Iterator[tuple[str, float, int]]:
    """Spark's JVM Spark Connect server from the pyspark wheel of ``python``'s environment."""
    spark_home = subprocess.run(
        [python, "-c", "import pyspark, os; print(os.path.dirname(pyspark.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = free_port()
    command = [
        str(Path(python).parent / "spark-submit"),
        "--class",
        "org.apache.spark.sql.connect.service.SparkConnectServer",
        "--conf",
        "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf",
        f"spark.connect.grpc.binding.port={port}",
        "--conf",
        "spark.ui.enabled=false",
        "spark-internal",
    ]
    env = {
        **os.environ,
        "SPARK_HOME": spark_home,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": python,  # UDF workers need pyspark too
    }
    started = time.monotonic()
    with (scratch / "jvm.log").open("wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=scratch
        )
    try:
        while time.monotonic() - started < 120:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.1)
        yield f"sc://127.0.0.1:{port}", time.monotonic() - started, process.pid
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 1e6
