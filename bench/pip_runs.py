"""``%pip install -r requirements.txt`` across builds, pip against uv with the environment
cache: ``python -m bench.pip_runs [--runs 10] [--requirements "pandas numpy pytest"]``.

Each way gets a local workspace of its own in this process (a fresh state dir) and a fresh
pip cache (``PIP_CACHE_DIR``, which pip's kernels share), and runs a runner notebook N times,
one after another, through runs/submit: its first cell is ``%pip install -r
requirements.txt``, its second imports every package. ``pip`` is the local workspace with
``ORCHESTRATOR_LOCAL_INSTALLER=pip`` (``pip install --target``, as the runtime did before
uv); ``uv`` is the default (resolve, then the environment built for that resolution, from
the cache when an earlier build made it). The install's time is the first cell's, from the
executed notebook's cell metadata; the run's is the submit-to-result time. The disk is what
the state dir and the pip cache hold after the N builds (each run's scratch, with its
installs, is gone when it ends; hard links counted once).

Both ways download from the index (PyPI): the machine's pip configuration (``pip.conf``, and
``PIP_FIND_LINKS``/``PIP_EXTRA_INDEX_URL``/``PIP_CONSTRAINT`` in the environment: a local
mirror would make pip's first install a copy, not a download) is not read by pip here, as uv
does not read it; ``PIP_CERT`` (a TLS-inspecting proxy's CA) is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from orchestrator.local.runtime.env_cache import tree_bytes
from orchestrator.local.runtime.installs import INSTALLER_VARIABLE
from orchestrator.local.state.notebook_format import CELL_RUN_METADATA


def _install_seconds(executed: Path) -> float:
    cell = json.loads(executed.read_text(encoding="utf-8"))["cells"][0]
    timing = cell["metadata"][CELL_RUN_METADATA]
    return float(timing["finish_ms"] - timing["start_ms"]) / 1000


def _measure(
    way: str, scratch: Path, requirements: list[str], runs: int
) -> tuple[list[tuple[float, float, str]], int]:
    """``(install s, run s, result)`` of each build, and the disk used after them."""
    from databricks.sdk import WorkspaceClient

    from bench.notebook_runs import submit_notebook, upload_notebook
    from orchestrator.local.server import start_local_workspace

    os.environ["PIP_CACHE_DIR"] = str(scratch / f"pip-cache-{way}")
    os.environ["PIP_CONFIG_FILE"] = os.devnull
    for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL", "PIP_CONSTRAINT"):
        os.environ.pop(name, None)
    if way == "pip":
        os.environ[INSTALLER_VARIABLE] = "pip"
    else:
        os.environ.pop(INSTALLER_VARIABLE, None)
    imports = ", ".join(r.replace("-", "_") for r in requirements)
    source = (
        "# Databricks notebook source\n"
        "# MAGIC %pip install -r requirements.txt\n\n"
        "# COMMAND ----------\n\n"
        f"import {imports}\ndbutils.notebook.exit('ok')\n"
    )
    rows: list[tuple[float, float, str]] = []
    state = scratch / f"state-{way}"
    with start_local_workspace(state) as ws:
        client = WorkspaceClient(host=ws.url, token=ws.token, auth_type="pat")
        upload_notebook(client, "/bench/runner", source)
        (ws.store.workspace_root / "bench" / "requirements.txt").write_text(
            "".join(f"{r}\n" for r in requirements), encoding="utf-8"
        )
        for number in range(1, runs + 1):
            started = time.perf_counter()
            run = submit_notebook(client, "/bench/runner", run_name=f"{way}-{number}")
            seconds = time.perf_counter() - started
            task = run.tasks[0] if run.tasks else None
            result = task.state.result_state if task and task.state else None
            executed = ws.store.runs_root / str(task.run_id if task else 0)
            notebook = executed / "executed_notebook.ipynb"
            install = _install_seconds(notebook) if notebook.exists() else float("nan")
            rows.append((install, seconds, result.value if result else "?"))
    disk = tree_bytes(state) + tree_bytes(scratch / f"pip-cache-{way}")
    return rows, disk


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pip_runs")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--requirements", default="pandas numpy pytest")
    parser.add_argument("--ways", default="pip,uv", help="pip, uv or both (pip,uv)")
    args = parser.parse_args(argv)
    requirements = args.requirements.split()
    scratch = Path(tempfile.mkdtemp(prefix="bench-pip-"))
    results = {way: _measure(way, scratch, requirements, args.runs) for way in args.ways.split(",")}
    print(
        f"Measured with python -m bench.pip_runs: {args.runs} builds of a runner notebook "
        f"whose first cell is %pip install -r requirements.txt ({', '.join(requirements)})"
    )
    print()
    print(
        "| way | first install | repeated install (median, max) | first run | repeated run "
        f"(median) | results | disk after {args.runs} builds |"
    )
    print("|---|---|---|---|---|---|---|")
    for way, (rows, disk) in results.items():
        installs = [r[0] for r in rows[1:]] or [float("nan")]
        run_times = [r[1] for r in rows[1:]] or [float("nan")]
        states = ", ".join(sorted({r[2] for r in rows}))
        print(
            f"| {way} | {rows[0][0]:.1f} s | {statistics.median(installs):.2f} s, "
            f"{max(installs):.2f} s | {rows[0][1]:.1f} s | {statistics.median(run_times):.1f} s "
            f"| {states} | {disk / 1024**2:.0f} MB |"
        )
    print()
    print("each build's install, in order:")
    for way, (rows, _disk) in results.items():
        print(f"  {way}: " + ", ".join(f"{r[0]:.2f}" for r in rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
