"""A repo of 500 small notebooks: ``python -m bench --only big`` (a scenario of the main table).

What a team with a big repo meets, each against its target:

* ``init --all-notebooks`` then ``plan`` on the generated repo, each in a fresh interpreter as
  CI runs them: together ≤ 2 s;
* the deploy of its 500 notebooks (25 folders of 20) through the build's deploy step, on the
  session's workspace with its injected latency: ≤ 1.5x of the latency bound at concurrency 16;
* a local build of the 500 notebooks against ``orchestrator local serve --max-workers 4`` (no
  injected latency: the build's own cost), its time per notebook against the same kind of
  build of 20 of the same notebooks: ≤ 1.3x;
* the build process's peak RSS (``ru_maxrss`` of the process, which runs no notebook itself):
  ≤ 300 MB;
* the Jobs UI page of that 500-task run, served by the workspace: < 300 ms (median of 5 after
  the first).

The 500-notebook build runs once per session (it takes minutes on 2 cores); the 20-notebook
build ``runs`` times, its median.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from bench.harness import Context, Row, bound, product_workspace, timed
from bench.kit.sample import command, in_subprocess, workspace_flags
from bench.local_speed import TOKEN_ENV, build_env, local_serve, settle

SCENARIO = "repo of 500 notebooks"
NOTEBOOKS = 500
SMALL = 20
FOLDERS = 25
CONCURRENCY = 16


def make_repo(root: Path, count: int) -> Path:
    """``count`` small Python notebooks under ``notebooks/``, no template yet (``init`` writes
    it)."""
    if root.exists():
        shutil.rmtree(root)
    folder = root / "notebooks"
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"nb_{i:03d}.py").write_text(
            "# Databricks notebook source\n"
            f"value = {i} + 1\n\n# COMMAND ----------\n\nassert value == {i + 1}\nprint(value)\n",
            encoding="utf-8",
        )
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def init_and_plan(root: Path, env: dict[str, str]) -> float:
    """Seconds for ``init --all-notebooks`` then ``plan``, each in a fresh interpreter."""
    for name in ("orchestrator.yml", "job-template.json"):
        (root / name).unlink(missing_ok=True)
    t0 = time.perf_counter()
    for args in (("init", "--all-notebooks"), ("plan", "--repo-name", "big")):
        subprocess.run(
            in_subprocess(*args), cwd=root, env=env, check=True, capture_output=True, timeout=120
        )
    return time.perf_counter() - t0


def deploy_rows(ctx: Context) -> Row:
    """The build's deploy step with 500 notebooks, against the latency bound."""
    from orchestrator.build.deploy_plan import plan_deploy

    src = ctx.scratch / "deploy-500"
    if not src.exists():
        for i in range(NOTEBOOKS):
            folder = src / f"package_{i % FOLDERS:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"nb_{i:03d}.py").write_text(
                "# Databricks notebook source\n" + f"x = {i}\n" * 40, encoding="utf-8"
            )
    client = ctx.client()
    workspace = product_workspace(ctx.workspace)  # as `orchestrator build` opens it
    client.workspace.get_status("/")
    row = Row("deploy 500 notebooks in 25 folders", "orchestrator (16 parallel)", [])
    for i in range(ctx.runs):
        target = f"/bench/deploy500/{i}"
        folders, items = plan_deploy(src, target)
        before = ctx.requests()
        row.samples.append(timed(workspace.deploy, folders, items, concurrency=CONCURRENCY))
        row.requests.append(ctx.requests() - before)
        with ctx.unthrottled():
            client.workspace.delete(target, recursive=True)
    made = int(max(row.requests))
    row.bound = bound(made, CONCURRENCY, ctx.rtt)
    row.bound_note = f"ceil({made}/{CONCURRENCY}) x {ctx.latency_ms:.0f} ms"
    row.target = "≤ 1.5x of the bound"
    of_bound = row.median / row.bound
    row.verdict = "met" if of_bound <= 1.5 else "MISSED"
    row.result = f"{of_bound:.2f}x of the bound"
    return row


def build_measured(argv: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one build process (its output drained meanwhile)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    tail: list[str] = []
    reader = threading.Thread(target=lambda: tail.extend(proc.stdout or ()), daemon=True)
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - t0
    reader.join(30)
    if proc.returncode != 0:
        raise RuntimeError(f"build failed ({proc.returncode}):\n{''.join(tail[-30:])}")
    return elapsed, usage.ru_maxrss / 1024  # KiB on Linux


def page_seconds(url: str, token: str) -> tuple[float, float]:
    """The first and the median of 5 more loads of the latest run's Jobs UI page."""
    headers = {"Authorization": f"Bearer {token}"}
    runs = requests.get(
        f"{url}/api/2.2/jobs/runs/list", params={"limit": 1}, headers=headers, timeout=30
    ).json()["runs"]
    page = f"{url}/jobs/{runs[0]['job_id']}/runs/{runs[0]['run_id']}"
    samples = []
    for _ in range(6):
        t0 = time.perf_counter()
        answer = requests.get(page, timeout=60)
        samples.append(time.perf_counter() - t0)
        answer.raise_for_status()
    rest = sorted(samples[1:])
    return samples[0], rest[len(rest) // 2]


def run(ctx: Context) -> list[Row]:
    env = build_env()
    big = make_repo(ctx.scratch / "big500", NOTEBOOKS)
    setup = Row(SCENARIO, "`init --all-notebooks` + `plan`", [])
    setup.samples = [init_and_plan(big, env) for _ in range(ctx.runs)]
    setup.target = "≤ 2 s"
    setup.verdict = "met" if setup.median <= 2.0 else "MISSED"
    rows = [setup, deploy_rows(ctx)]
    small = make_repo(ctx.scratch / "small20", SMALL)
    init_and_plan(small, env)
    with local_serve(ctx.scratch / "big-serve", max_workers=4) as (url, token):
        remote = workspace_flags(url, f"env:{TOKEN_ENV}")
        serve_env = build_env(**{TOKEN_ENV: token})

        def build(repo: Path, build_id: str) -> tuple[float, float]:
            settle()
            argv = in_subprocess(
                *command(repo, "build", "--build-id", build_id, *remote, repo_name=repo.name)
            )
            return build_measured(argv, cwd=repo, env=serve_env)

        build(small, "warm")  # the server's kernels and the build root, as between builds
        small_runs = [build(small, f"s{i}")[0] / SMALL for i in range(ctx.runs)]
        seconds, rss = build(big, "b1")
        first, page = page_seconds(url, token)
    per = Row(SCENARIO, "local build, time per notebook", [seconds / NOTEBOOKS])
    per.unit = "s/nb"
    base = sorted(small_runs)[len(small_runs) // 2]
    ratio = per.median / base
    per.target = f"≤ 1.3x of {SMALL} notebooks' ({base:.3f} s/nb)"
    per.verdict = "met" if ratio <= 1.3 else "MISSED"
    per.result = f"{ratio:.2f}x; the build took {seconds:.0f} s"
    memory = Row(SCENARIO, "build process peak RSS", [rss], unit="MB", target="≤ 300 MB")
    memory.verdict = "met" if rss <= 300 else "MISSED"
    ui = Row(SCENARIO, "Jobs UI page of the 500-task run", [page], target="< 0.3 s")
    ui.verdict = "met" if page < 0.3 else "MISSED"
    ui.result = f"first load {first:.3f} s"
    return [*rows, per, memory, ui]


if __name__ == "__main__":
    sys.exit("run it as: python -m bench --only big")
