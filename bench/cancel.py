"""How fast a cancel takes effect on the local workspace: ``python -m bench.cancel [--runs 5]``.

The tests check that a cancel ends a run and kills its processes (with generous bounds, so a
loaded machine cannot fail them); this measures how fast. Each run starts a Python notebook
whose ``%sh`` cell starts a ``sleep`` and waits for it, then cancels the run through the Jobs API
and times:

* **terminated**: ``runs/cancel`` to the run's ``TERMINATED`` state (polled every 10 ms);
* **processes gone**: ``runs/cancel`` to the moment the kernel and the ``sleep`` are both gone.

Prints the median, min and max of each over the runs. Target: both within 2 s.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import tempfile
import time
from pathlib import Path

import psutil
import requests

from orchestrator.local.server import start_local_workspace

NOTEBOOK = """# Databricks notebook source
import os, pathlib
pathlib.Path(dbutils.widgets.get("out")).write_text(str(os.getpid()))

# COMMAND ----------

# MAGIC %sh
# MAGIC sleep 600 & echo $! >> "$OUT_SLEEP"
# MAGIC wait
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait(condition: object, timeout: float = 120.0, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(interval)


def one_cancel(url: str, token: str, scratch: Path, index: int) -> tuple[float, float]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def call(method: str, route: str, **body: object) -> dict[str, object]:
        kwargs = {"params": body} if method == "GET" else {"json": body}
        answer = session.request(method, f"{url}/api/{route}", timeout=60, **kwargs)
        answer.raise_for_status()
        return answer.json()  # type: ignore[no-any-return]

    out = scratch / f"kernel-{index}.pid"
    sleeps = scratch / f"sleep-{index}.pid"
    content = base64.b64encode(NOTEBOOK.replace('"$OUT_SLEEP"', str(sleeps)).encode()).decode()
    call(
        "POST",
        "2.0/workspace/import",
        path=f"/b/cancel{index}",
        language="PYTHON",
        content=content,
        overwrite=True,
    )
    task = {
        "task_key": "t",
        "notebook_task": {
            "notebook_path": f"/b/cancel{index}",
            "base_parameters": {"out": str(out)},
        },
    }
    run_id = call("POST", "2.1/jobs/runs/submit", run_name="cancel", tasks=[task])["run_id"]
    _wait(lambda: sleeps.exists() and sleeps.read_text().strip() and out.exists())
    pids = [int(out.read_text()), int(sleeps.read_text().split()[0])]
    started = time.monotonic()
    call("POST", "2.1/jobs/runs/cancel", run_id=run_id)

    def terminated() -> bool:
        state = call("GET", "2.1/jobs/runs/get", run_id=run_id)["state"]
        return state["life_cycle_state"] == "TERMINATED"  # type: ignore[index]

    _wait(terminated)
    ended = time.monotonic() - started
    _wait(lambda: all(_gone(pid) for pid in pids))
    return ended, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cancel")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-cancel-") as tmp:
        scratch = Path(tmp)
        ws = start_local_workspace(scratch / "state", cluster_start_delay=0.0)
        try:
            ws.warm(["PYTHON"])
            call = requests.post(
                f"{ws.url}/api/2.0/workspace/mkdirs",
                json={"path": "/b"},
                headers={"Authorization": f"Bearer {ws.token}"},
                timeout=60,
            )
            call.raise_for_status()
            samples = [one_cancel(ws.url, ws.token, scratch, i) for i in range(args.runs)]
        finally:
            ws.stop()
    print("| measure | median | min | max | target |")
    print("|---|---:|---:|---:|---|")
    for name, values in (
        ("cancel -> TERMINATED", [s[0] for s in samples]),
        ("cancel -> kernel and %sh child gone", [s[1] for s in samples]),
    ):
        verdict = "met" if statistics.median(values) <= 2.0 else "MISSED"
        print(
            f"| {name} | {statistics.median(values):.2f} s | {min(values):.2f} s | "
            f"{max(values):.2f} s | ≤ 2 s: **{verdict}** |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
