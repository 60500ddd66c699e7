"""Detect run completion for runs of 5 s, 30 s and 75 s: ``orchestrator.jobs.wait_for_run`` (the
build's waiter, with the build's default poll cap) beside the SDK's default waiter
(``jobs.wait_get_run_job_terminated_or_skipped``) and a legacy polling loop
(``databricks runs get`` every 10 s, one CLI process per poll, as a bash loop does it).

The lag is the time from the run's ``end_time`` (the server's clock, this machine) to the moment
the waiter returns. Runs are exact-duration runs (``bench_sleep`` tasks, no kernel); repetition
``i`` of ``n`` lasts ``d + i x cap / n`` (``cap``: the build's poll cap, ``timeouts.poll``)
so the run ends fall evenly across one of our poll intervals instead of all at the same point
of every waiter's schedule. Each waiter
polls its own workspace process so the workspace's counters tell its requests apart; for one
duration every repetition of every waiter runs at the same time, so the 75 s case costs 75 s
once rather than 15 times (the repetitions run in parallel, not one after another). Our waiter and
the SDK's run ``3 x runs`` repetitions (threads; the legacy loop, a process per poll, ``runs``).

Targets (ours): median lag at most 1 s, fewer than 2 requests a second on average.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bench.harness import LEGACY, Context, Row, client_for

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

    from bench.legacy import LegacyCli
    from bench.server import Server

SCENARIO = "detect completion of a {d} s run"
LEGACY_SLEEP = 10.0  # seconds between two `databricks runs get` in the legacy loop
REPEAT = 3  # repetitions of our waiter and the SDK's per ``runs`` (see _phase)
TERMINAL = ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")
CLUSTER = "0000-000000-local"


def submit(client: WorkspaceClient, seconds: float) -> int:
    body = {
        "run_name": f"bench-{seconds:g}s",
        "tasks": [
            {
                "task_key": "sleep",
                "existing_cluster_id": CLUSTER,
                "notebook_task": {
                    "notebook_path": "/bench/sleep",
                    "base_parameters": {"bench_sleep": str(seconds)},
                },
            }
        ],
    }
    response = client.api_client.do("POST", "/api/2.1/jobs/runs/submit", body=body)
    assert isinstance(response, dict)
    return int(response["run_id"])


def end_time(client: WorkspaceClient, run_id: int) -> float:
    run = client.jobs.get_run(run_id)
    assert run.end_time, f"run {run_id} has not ended"
    return run.end_time / 1000.0


def ours(client: WorkspaceClient, run_id: int) -> None:
    from orchestrator.adapters.databricks.runs import Polling, wait_for_run
    from orchestrator.config.schema import TimeoutsConfig

    wait_for_run(client, run_id, deadline=None, polling=Polling(cap=TimeoutsConfig().poll))


def sdk(client: WorkspaceClient, run_id: int) -> None:
    import datetime

    client.jobs.wait_get_run_job_terminated_or_skipped(
        run_id=run_id, timeout=datetime.timedelta(minutes=10)
    )


def legacy_loop(cli: LegacyCli) -> Callable[[WorkspaceClient, int], None]:
    def wait(_: WorkspaceClient, run_id: int) -> None:
        while True:
            run = json.loads(cli.run("runs", "get", "--run-id", str(run_id)))
            if run["state"]["life_cycle_state"] in TERMINAL:
                return
            time.sleep(LEGACY_SLEEP)

    return wait


def run(ctx: Context) -> list[Row]:
    from orchestrator.config.schema import TimeoutsConfig

    durations = (5.0, 30.0) if ctx.quick else (5.0, 30.0, 75.0)
    cap = TimeoutsConfig().poll
    waiters: list[tuple[str, Server, Callable[[WorkspaceClient, int], None]]] = [
        (
            f"orchestrator `jobs.wait_for_run` (0.5 s x1.5, cap {cap:g} s)",
            ctx.start_server("ours"),
            ours,
        ),
        ("databricks-sdk default waiter", ctx.start_server("sdk"), sdk),
    ]
    if ctx.legacy is not None:
        waiters.append(
            (
                f"{LEGACY} `runs get` loop, sleep {LEGACY_SLEEP:g} s",
                ctx.workspace,
                legacy_loop(ctx.legacy),
            )
        )
    rows: list[Row] = []
    for seconds in durations:
        rows.extend(_phase(ctx, seconds, waiters, spread=cap))
    return rows


def _phase(
    ctx: Context,
    seconds: float,
    waiters: list[tuple[str, Server, Callable[[WorkspaceClient, int], None]]],
    *,
    spread: float,
) -> list[Row]:
    """Every repetition of every waiter at once, for runs of ``seconds`` (repetition ``i``
    ``i x spread / runs`` longer)."""
    results: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in waiters}

    def reps(name: str) -> int:
        # threads polling their workspace: more of them cost no time, and the median of 15
        # lags spread over one poll interval is not a coin-flip of 5; the legacy loop starts a
        # CLI process per poll, so it keeps ``runs``
        return ctx.runs if name.startswith(LEGACY) else ctx.runs * REPEAT

    errors: list[BaseException] = []
    before = {name: server.requests("jobs/runs/get") for name, server, _ in waiters}
    threads = []
    lock = threading.Lock()

    def one(
        name: str, server: Server, wait: Callable[[WorkspaceClient, int], None], extra: float
    ) -> None:
        try:
            client = client_for(server)
            run_id = submit(client, seconds + extra)
            started = time.time()
            wait(client, run_id)
            returned = time.time()
            ended = end_time(client, run_id)
            with lock:
                results[name].append((returned - ended, returned - started))
        except Exception as exc:  # noqa: BLE001 - re-raised after the phase
            errors.append(exc)

    for name, server, wait in waiters:
        for i in range(reps(name)):
            extra = i * spread / reps(name)
            thread = threading.Thread(target=one, args=(name, server, wait, extra), daemon=True)
            threads.append(thread)
            thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    rows = []
    for name, server, _ in waiters:
        count = reps(name)
        polls = server.requests("jobs/runs/get") - before[name] - count  # minus end_time reads
        lags = [lag for lag, _ in results[name]]
        waited = sum(w for _, w in results[name])
        per_run = polls / count
        rate = polls / waited
        row = Row(
            SCENARIO.format(d=f"{seconds:g}"),
            name,
            lags,
            requests=[per_run],
            bound_note="lag: 0 (+1 RTT)",
            extra=f"{rate:.2f}/s",
        )
        if name.startswith("orchestrator"):
            row.target = "median lag ≤ 1 s; < 2 requests/s"
            ok = statistics.median(lags) <= 1.0 and rate < 2.0
            row.verdict = "met" if ok else "MISSED"
            row.result = f"median lag {statistics.median(lags):.2f} s, {rate:.2f} requests/s"
        rows.append(row)
    return rows
