"""MLflow in the local workspace: the tracking server's cold start and a client's first metric.

Run: ``.venv/bin/python -m bench.mlflow_start [--repeat 2]``

Per repeat, on a fresh state dir:

1. **cold start**: the first MLflow request (``experiments/get-by-name``) to a started
   workspace, which starts ``mlflow server`` and waits for it (SQLite schema made from
   nothing); wall time of that request, and the CPU seconds the server's processes used;
2. **restart**: the workspace stopped and started again on the same state dir, the same
   request (the database exists);
3. **first log_metric**: a client process (``MLFLOW_TRACKING_URI=databricks``, the workspace's
   host and token, as a notebook's kernel has them) that imports ``mlflow``, sets an
   experiment, starts a run and logs one metric, each step timed; the server is running.

The machine's load average is printed with each row: on a shared 2-core machine the wall times
follow it. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

from orchestrator.local.server import LocalWorkspace, start_local_workspace

CLIENT = """
import json, time
t0 = time.perf_counter()
import mlflow
t1 = time.perf_counter()
mlflow.set_experiment("/Shared/bench")
t2 = time.perf_counter()
with mlflow.start_run():
    t3 = time.perf_counter()
    mlflow.log_metric("m", 1.0)
    t4 = time.perf_counter()
    mlflow.log_metric("m", 2.0)
    t5 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "set_experiment": t2 - t1, "start_run": t3 - t2,
                  "first_log_metric": t4 - t3, "second_log_metric": t5 - t4}))
"""


def _first_request(ws: LocalWorkspace) -> tuple[float, float]:
    """Wall seconds of the first MLflow request and CPU seconds of the server's processes."""
    began = time.perf_counter()
    answer = requests.get(
        f"{ws.url}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": "/Shared/none"},
        headers={"Authorization": f"Bearer {ws.token}"},
        timeout=600,
    )
    wall = time.perf_counter() - began
    assert answer.status_code == 404, answer.text
    process = ws.mlflow._process
    assert process is not None
    cpu = 0.0
    root = psutil.Process(process.pid)
    for proc in (root, *root.children(recursive=True)):
        times = proc.cpu_times()
        cpu += times.user + times.system
    return wall, cpu


def _client(ws: LocalWorkspace) -> dict[str, float]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": "databricks",
        "DATABRICKS_HOST": ws.url,
        "DATABRICKS_TOKEN": ws.token,
    }
    # a file, not ``python -c``: pyspark-client takes a ``-c`` program for its doctests and
    # exits when MLflow looks for a Spark session
    script = Path(tempfile.mkdtemp(prefix="bench-mlflow-client-")) / "client.py"
    script.write_text(CLIENT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    print(
        "| repeat | load (1 min) | cold start s (server CPU s) | restart s | import mlflow s "
        "| set_experiment s | start_run s | first log_metric s | next log_metric s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for repeat in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp:
            state = Path(tmp) / "state"
            load = os.getloadavg()[0]
            ws = start_local_workspace(state)
            try:
                cold, cpu = _first_request(ws)
            finally:
                ws.stop()
            ws = start_local_workspace(state)
            try:
                restart, _ = _first_request(ws)
                client = _client(ws)
            finally:
                ws.stop()
        print(
            f"| {repeat} | {load:.1f} | {cold:.1f} ({cpu:.1f}) | {restart:.1f} "
            f"| {client['import']:.1f} | {client['set_experiment']:.2f} "
            f"| {client['start_run']:.2f} | {client['first_log_metric']:.3f} "
            f"| {client['second_log_metric']:.3f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
