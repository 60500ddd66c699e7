"""``%pip`` across runs on the local workspace: ``python -m bench.pip_runs [--runs 10]``.

N runs, one after another, of a notebook that does ``%pip install <package>`` (default
``requests==2.32.3`` and its four dependencies, from PyPI) and imports it, on a local workspace
in this process with a fresh pip cache (``PIP_CACHE_DIR``, which every kernel shares). Each run
installs into its own folder, as notebook-scoped libraries are, and the folder goes when the run
ends. The table gives each run's time (the first one downloads, the others reuse the cache's
wheels), the disk each finished run keeps, the state dir's runs folder and the shared cache.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pip_runs")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--package", default="requests==2.32.3")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-pip-"))
    os.environ["PIP_CACHE_DIR"] = str(scratch / "pip-cache")

    from databricks.sdk import WorkspaceClient

    from bench.notebook_runs import submit_notebook, upload_notebook
    from orchestrator.local.server import start_local_workspace

    source = (
        "# Databricks notebook source\n"
        f"# MAGIC %pip install {args.package}\n\n"
        "# COMMAND ----------\n\n"
        f"import importlib.metadata\ndbutils.notebook.exit("
        f"importlib.metadata.version({args.package.split('==')[0]!r}))\n"
    )
    rows: list[tuple[int, float, str, int]] = []
    with start_local_workspace(scratch / "state") as ws:
        client = WorkspaceClient(host=ws.url, token=ws.token, auth_type="pat")
        upload_notebook(client, "/bench/pip", source)
        for number in range(1, args.runs + 1):
            started = time.perf_counter()
            run = submit_notebook(client, "/bench/pip", run_name=f"pip-{number}")
            seconds = time.perf_counter() - started
            task = run.tasks[0] if run.tasks else None
            result = task.state.result_state if task and task.state else None
            state = result.value if result else "?"
            kept = _size(ws.store.runs_root / str(task.run_id)) if task else 0
            rows.append((number, seconds, state, kept))
        runs_total = _size(ws.store.runs_root)
    cache = _size(scratch / "pip-cache")
    print(
        f"Measured with python -m bench.pip_runs: {args.runs} runs of %pip install {args.package}"
    )
    print("| run | time | result | disk kept by the finished run |")
    print("|---|---|---|---|")
    for number, seconds, state, kept in rows:
        print(f"| {number} | {seconds:.2f} s | {state} | {kept / 1024:.0f} KB |")
    print(
        f"\nruns folder after {args.runs} runs: {runs_total / 1024:.0f} KB; "
        f"shared pip cache: {cache / 1024 / 1024:.1f} MB; "
        f"first run / median of the others: "
        f"{rows[0][1]:.2f} s / {sorted(r[1] for r in rows[1:])[len(rows[1:]) // 2]:.2f} s"
        if len(rows) > 1
        else ""
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
