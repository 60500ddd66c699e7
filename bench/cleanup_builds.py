"""The ``cleanup`` scenario of ``python -m bench``: clean up 500 old builds with
``orchestrator.cleanup.cleanup`` (the code behind ``orchestrator cleanup``: discovery,
retention, journal, parallel deletes) against the legacy loop (``workspace ls`` once, then
``workspace rm -r`` for each build folder, one at a time).

Every build is a workspace folder ``/Shared/builds/<repo>/<build_id>`` holding its
``_build.json`` marker (30 days old) and a notebook, plus a model file and the same marker in a
local storage folder (the build writes both; storage is read first and is not throttled): the
scenario ``python -m bench.cleanup`` measures too (bench/old_builds.py).

- Unthrottled (no client or server rate limit): target at least 10x faster than the sequential
  loop. The loop runs databricks-cli 0.18.0's own ``WorkspaceApi`` in one process: a bash loop
  would also start one CLI process per folder (see the start-up rows), so this peer is the
  fastest form of the legacy loop. A what-if row shows ``--concurrency 16``.
- At the default rate (``DEFAULT_DELETE_RATE`` deletes per second, which the workspace also
  enforces on ``POST workspace/delete``, as the service does): target within 1.2x of N / rate.
  500 builds at 2/s take 250 s a run, so this variant runs on :data:`RATED_BUILDS` builds; the
  fixed costs (listing, journal) weigh more on fewer builds, so the ratio is not flattered.

(``python -m bench.cleanup``, from the cleanup work, compares the cleanup's own modes:
sequential, default rate, 8 and 16 in flight, one run each.)
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bench.harness import LEGACY, Context, Row, bound, client_for, product_workspace, timed
from bench.old_builds import REPO_NAME, ROOT, clean_up, make_old_builds

if TYPE_CHECKING:
    from orchestrator.adapters.databricks import DatabricksWorkspace

SCENARIO = "clean up {n} old builds{how}"
BUILDS = 500
WHAT_IF_CONCURRENCY = 16
RATED_BUILDS = 100  # at the default 2 deletes/s: 50 s a run (20 builds with --quick)

LEGACY_LOOP = """
import sys, time
from databricks_cli.sdk.api_client import ApiClient
from databricks_cli.workspace.api import WorkspaceApi
host, token, folder = sys.argv[1:4]
api = WorkspaceApi(ApiClient(host=host, token=token))
t0 = time.perf_counter()
for item in api.list_objects(folder):   # databricks workspace ls
    api.delete(item.path, True)         # databricks workspace rm -r, one folder at a time
print(time.perf_counter() - t0)
"""


def ours(
    workspace: DatabricksWorkspace,
    storage: Path,
    *,
    rate: float | None,
    n: int,
    repo: str = REPO_NAME,
    concurrency: int | None = None,
) -> None:
    """What ``orchestrator cleanup --older-than 14d --repo <repo>`` does."""
    clean_up(workspace, storage, expect=n, rate=rate, concurrency=concurrency, repos=(repo,))


def legacy_loop(ctx: Context) -> float:
    assert ctx.legacy is not None
    python = ctx.legacy.exe.parent / "python"
    done = subprocess.run(
        [str(python), "-c", LEGACY_LOOP, ctx.legacy.host, ctx.legacy.token, f"{ROOT}/{REPO_NAME}"],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def _measure(ctx: Context, row: Row, n: int, action: str, concurrency: int | None = None) -> None:
    server = ctx.workspace
    client = client_for(server)
    storage = ctx.scratch / "cleanup-storage"
    make_old_builds(server, storage, n)
    before = ctx.requests()
    if action == "legacy":
        row.samples.append(legacy_loop(ctx))
    else:
        workspace = product_workspace(server)
        row.samples.append(timed(ours, workspace, storage, rate=None, n=n, concurrency=concurrency))
    row.requests.append(ctx.requests() - before)
    shutil.rmtree(storage, ignore_errors=True)
    with ctx.unthrottled():
        client.workspace.delete(f"{ROOT}/{REPO_NAME}", recursive=True)


def run(ctx: Context) -> list[Row]:
    from orchestrator.cleanup.model import DEFAULT_CONCURRENCY

    n = 60 if ctx.quick else BUILDS
    name = SCENARIO.format(n=n, how="")
    mine = Row(name, f"orchestrator `cleanup` (unthrottled, {DEFAULT_CONCURRENCY} in flight)", [])
    peer = Row(name, f"{LEGACY} `workspace rm -r` loop", [])
    what_if = Row(name, f"what-if: `cleanup --concurrency {WHAT_IF_CONCURRENCY}`", [])
    for _ in range(ctx.runs):
        _measure(ctx, mine, n, "ours")
        if ctx.legacy is not None:
            _measure(ctx, peer, n, "legacy")
        _measure(ctx, what_if, n, "ours", WHAT_IF_CONCURRENCY)
    for row, c in ((mine, DEFAULT_CONCURRENCY), (what_if, WHAT_IF_CONCURRENCY)):
        reqs = int(max(row.requests))
        row.bound = bound(reqs, c, ctx.rtt)
        row.bound_note = f"ceil({reqs}/{c}) x {ctx.latency_ms:.0f} ms"
    mine.target = "≥ 10x faster than the sequential loop"
    rows = [mine]
    if peer.samples:
        speedup = peer.median / mine.median
        mine.verdict = "met" if speedup >= 10 else "MISSED"
        mine.result = (
            f"{speedup:.1f}x faster than the loop; {mine.median / mine.bound:.2f}x of the bound"
            if mine.bound
            else f"{speedup:.1f}x faster than the loop"
        )
        p_reqs = int(max(peer.requests))
        peer.bound = bound(p_reqs, 1, ctx.rtt)
        peer.bound_note = f"{p_reqs} x {ctx.latency_ms:.0f} ms (sequential)"
        peer.result = "one process; a bash loop adds one CLI start-up per folder"
        what_if.result = f"{peer.median / what_if.median:.1f}x faster than the loop"
        rows.append(peer)
    else:
        mine.result = f"peer not run: {ctx.legacy_problem}"
    rows.append(what_if)
    return rows


def rate_limited(ctx: Context) -> Callable[[], list[Row]]:
    """The default rate, on a workspace of its own. It waits on its rate limit most of the
    time, so the harness runs it beside the other scenarios: this makes every run's builds now
    (before the others measure) and returns the measurement to run in the background."""
    from orchestrator.cleanup.model import DEFAULT_DELETE_RATE

    server = ctx.start_server("cleanup-rated")
    n = 20 if ctx.quick else RATED_BUILDS
    storage = ctx.scratch / "cleanup-rated"
    for i in range(ctx.runs):
        make_old_builds(server, storage, n, repo=f"{REPO_NAME}{i}")
    limits = {"POST workspace/delete": DEFAULT_DELETE_RATE}
    server.set_faults(server.faults() | {"rate_limits": limits})

    def measure() -> list[Row]:
        row = Row(
            SCENARIO.format(n=n, how=f" at the default {DEFAULT_DELETE_RATE:g} deletes/s"),
            "orchestrator `cleanup` (default rate)",
            [],
        )
        workspace = product_workspace(server)
        for i in range(ctx.runs):
            before = server.requests()
            row.samples.append(
                timed(
                    ours, workspace, storage, rate=DEFAULT_DELETE_RATE, n=n, repo=f"{REPO_NAME}{i}"
                )
            )
            row.requests.append(server.requests() - before)
        row.bound = n / DEFAULT_DELETE_RATE
        row.bound_note = f"N / rate = {n} / {DEFAULT_DELETE_RATE:g}"
        ratio = row.median / row.bound
        row.target = "≤ 1.2x of N / rate"
        row.verdict = "met" if ratio <= 1.2 else "MISSED"
        row.result = f"{ratio:.2f}x of N / rate"
        injected = server.counters().get("injected", {})
        if injected:
            row.result += f"; 429s answered by the workspace (retried): {sum(injected.values())}"
        return [row]

    return measure
