"""The demo build of the sample project end to end (``orchestrator build`` in a fresh process, real
R and Python kernels), with its two independent test notebooks run in parallel, beside a
sequential variant: the same build on a workspace that runs one task at a time
(``max_workers=1``). The target is the time, reported, and the speed-up of running in parallel.

The builds aim at a workspace process of the harness (``--set workspace.host=...``) so the
20 ms latency applies to them too. The sample project's copy and the build's command line are
the tests' own (bench/kit/sample.py).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bench.harness import Context, Row, timed
from bench.kit.sample import command, copy_sample_project, in_subprocess, workspace_flags
from bench.server import Server

SCENARIO = "demo build end to end (2 test notebooks)"
TOKEN_ENV = "BENCH_BUILD_TOKEN"


def build_argv(project: Path, server: Server, build_id: str, *flags: str) -> list[str]:
    remote = workspace_flags(server.url, f"env:{TOKEN_ENV}")
    return in_subprocess(*command(project, "build", "--build-id", build_id, *remote, *flags))


def build_env(server: Server, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "CI"))}
    env.update({TOKEN_ENV: server.token, "TF_BUILD": "", "GITHUB_ACTIONS": ""}, **extra)
    return env


def build(project: Path, server: Server, build_id: str) -> None:
    done = subprocess.run(
        build_argv(project, server, build_id),
        cwd=project,
        env=build_env(server),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"build {build_id} failed ({done.returncode}):\n{done.stdout[-2000:]}")


def run(ctx: Context) -> list[Row]:
    project = copy_sample_project(ctx.scratch / "demo-project")
    parallel = ctx.start_server("demo", max_workers=4)
    sequential = ctx.start_server("demo-seq", max_workers=1)
    par = Row(SCENARIO, "orchestrator build, test notebooks in parallel", [])
    seq = Row(SCENARIO, "same build, one task at a time (sequential variant)", [])
    build(project, parallel, "warm-up")  # warms the server: kernels, the build root
    build(project, sequential, "warm-up")
    for i in range(ctx.runs):
        for row, server in ((par, parallel), (seq, sequential)):
            before = server.requests()
            build_id = f"{'p' if row is par else 's'}{i}"
            row.samples.append(timed(build, project, server, build_id))
            row.requests.append(server.requests() - before)
    speedup = seq.median / par.median
    par.target = "time reported; parallel speed-up"
    par.result = f"{speedup:.2f}x faster than the sequential variant"
    par.verdict = "reported"
    return [par, seq]
