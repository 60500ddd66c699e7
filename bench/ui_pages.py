"""Render time of the local Jobs UI pages with a 200-run job (target: job page under 300 ms).

Run: ``.venv/bin/python -m bench.ui_pages [--runs 200] [--repeat 20]``

Seeds a local workspace with one job of two tasks and ``--runs`` finished builds (an instant
task executor; every task leaves an output with 64 KB of logs and a JSON exit value holding test
counts, as the sample runner notebooks do), then times ``GET`` of each page over a keep-alive
loopback connection: the first request (cold: outputs read from disk) and the median and worst
of the next ``--repeat``. Prints a table.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator.local.jobs.task_execution import TaskOutcome, TaskSpec
from orchestrator.local.server import LocalWorkspace, start_local_workspace

TARGET_MS = 300.0
TOKEN = "bench-token"
LOGS = "collected 9 items\n" + "." * 64 * 1024


def _instant(spec: TaskSpec, cancel: threading.Event) -> TaskOutcome:
    failed = spec.parameters.get("build_id", "0").endswith("7")
    counts = {"tests": 9, "failures": int(failed), "errors": 0, "skipped": 0}
    output = {"logs": LOGS, "notebook_output": {"result": json.dumps(counts)}}
    if failed:
        return TaskOutcome("FAILED", "AssertionError: 1 test failed", output)
    return TaskOutcome("SUCCESS", "", output)


def _request(ws: LocalWorkspace, method: str, path: str, body: object = None) -> bytes:
    split = urlsplit(ws.url)
    conn = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
    return data


def seed(ws: LocalWorkspace, runs: int) -> int:
    """One job, ``runs`` finished builds; returns the last run id."""
    names = ("build_id", "branch", "commit", "pull_request", "target")
    job = {
        "name": "build-bench",
        "tags": {"repo": "bench"},
        "max_concurrent_runs": 1000,
        "parameters": [{"name": n, "default": ""} for n in names],
        "tasks": [
            {"task_key": key, "notebook_task": {"notebook_path": "/nb"}}
            for key in ("run_pytest", "run_testthat")
        ],
    }
    job_id = json.loads(_request(ws, "POST", "/api/2.2/jobs/create", job))["job_id"]
    last = 0
    for n in range(runs):
        params = {
            "build_id": str(1000 + n),
            "branch": "main" if n % 3 else f"feature/{n}",
            "commit": f"{n:040x}",
            "pull_request": str(n) if n % 3 == 0 else "",
            "target": "local",
        }
        body = {"job_id": job_id, "job_parameters": params}
        last = json.loads(_request(ws, "POST", "/api/2.2/jobs/run-now", body))["run_id"]
    for doc in ws.store.list_runs(job_id=job_id, active_only=False):
        ws.scheduler.wait_idle(int(doc["run_id"]), 60)
    return int(last)


def _time(conn: http.client.HTTPConnection, path: str) -> tuple[float, int]:
    started = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status}")
    return elapsed, len(body)


def measure(ws: LocalWorkspace, paths: list[tuple[str, str]], repeat: int) -> list[list[str]]:
    split = urlsplit(ws.url)
    conn = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port)
    rows = []
    for label, path in paths:
        first, size = _time(conn, path)
        times = [_time(conn, path)[0] for _ in range(repeat)]
        rows.append(
            [
                label,
                path,
                f"{size / 1024:.0f} KB",
                f"{first:.1f}",
                f"{statistics.median(times):.1f}",
                f"{max(times):.1f}",
            ]
        )
    conn.close()
    return rows


def table(rows: list[list[str]]) -> str:
    head = ["page", "path", "size", "first ms", "median ms", "max ms"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui_pages")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        ws = start_local_workspace(
            Path(tmp), token=TOKEN, executor=_instant, cluster_start_delay=0.0, max_workers=8
        )
        try:
            last = seed(ws, args.runs)
            paths = [
                (f"job, all {args.runs} runs", f"/jobs/1?limit={args.runs}"),
                ("job, first page (25)", "/jobs/1"),
                ("job, filtered", "/jobs/1?state=failed&branch=main"),
                ("jobs list", "/jobs"),
                ("index", "/"),
                ("run", f"/jobs/1/runs/{last}"),
            ]
            rows = measure(ws, paths, args.repeat)
        finally:
            ws.stop()
    print(f"Local Jobs UI render time, one job with {args.runs} runs of 2 tasks")
    print(table(rows))
    cold, warm = float(rows[0][3]), float(rows[0][4])
    worst = max(cold, warm)
    verdict = "OK" if worst < TARGET_MS else "OVER"
    print(
        f"\njob page with {args.runs} runs: first {cold:.1f} ms, median {warm:.1f} ms "
        f"(target < {TARGET_MS:.0f} ms): {verdict}"
    )
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
