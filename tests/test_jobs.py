"""The build's Databricks steps against the local workspace, with an injected clock for waits:
adaptive polling, the build deadline, cancel-and-wait, cluster start, a build's own job (made
once, found again by its name, deleted with the build) and its run, started with an
idempotency token."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.databricks import runs as jobs
from orchestrator.errors import TimeoutExpired
from orchestrator.layout import build_job_name
from orchestrator.local.server import LocalWorkspace, start_local_workspace
from orchestrator.services import LOCAL_CLUSTER_ID
from tests.conftest import TOKEN, sdk_client
from tests.fakes import FakeClock, FakeExecutor

CLUSTER = LOCAL_CLUSTER_ID
pytestmark = pytest.mark.ws(cluster_start_delay=0.2)


def settings(name: str = build_job_name("x", "b-1"), sleep: str = "0") -> dict[str, Any]:
    return {
        "name": name,
        "tasks": [
            {
                "task_key": "t",
                "existing_cluster_id": CLUSTER,
                "notebook_task": {"notebook_path": "/x", "base_parameters": {"sleep": sleep}},
            }
        ],
    }


def test_polling_starts_fast_and_backs_off_to_the_cap() -> None:
    it = jobs.Polling(initial=0.5, factor=1.5, cap=2.0).intervals()
    assert [round(next(it), 3) for _ in range(6)] == [0.5, 0.75, 1.125, 1.688, 2.0, 2.0]


def start(
    client: Any, name: str = build_job_name("x", "b-1"), sleep: str = "0", token: str = "t"
) -> int:
    job_id, _ = jobs.create_build_job(client, settings(name, sleep))
    return jobs.run_build_job(client, job_id, idempotency_token=token)


def test_a_builds_job_is_made_once_and_its_run_read_back(ws: LocalWorkspace) -> None:
    client = sdk_client(ws)
    job_id, action = jobs.create_build_job(client, settings())
    assert action == "created"
    assert jobs.create_build_job(client, settings(sleep="5")) == (job_id, "reused")
    assert client.jobs.get(job_id).settings.tasks[0].notebook_task.base_parameters == {"sleep": "5"}
    run_id = jobs.run_build_job(client, job_id, idempotency_token="tok-0")
    run = jobs.wait_for_run(client, run_id, deadline=None)
    assert run.run_type == "JOB_RUN" and run.run_name == "build-x b-1"
    assert run.end.result == "SUCCESS" and run.over
    (task,) = run.tasks
    assert task.task_key == "t" and task.notebook_path == "/x" and task.run_id is not None


def test_racing_creates_converge_on_one_job(ws: LocalWorkspace) -> None:
    results: list[tuple[int, str]] = []
    barrier = threading.Barrier(6)

    def race() -> None:
        barrier.wait()
        results.append(jobs.create_build_job(sdk_client(ws), settings(build_job_name("r", "1"))))

    threads = [threading.Thread(target=race) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({job_id for job_id, _ in results}) == 1
    assert len(jobs.jobs_named(sdk_client(ws), build_job_name("r", "1"))) == 1


def test_a_builds_job_is_deleted_by_its_name(ws: LocalWorkspace) -> None:
    client = sdk_client(ws)
    jobs.create_build_job(client, settings(build_job_name("x", "b-2")))
    other, _ = jobs.create_build_job(client, settings(build_job_name("x", "b-3")))
    assert jobs.delete_build_jobs(client, "x", "b-2") == 1
    assert jobs.delete_build_jobs(client, "x", "b-2") == 0
    assert jobs.jobs_named(client, build_job_name("x", "b-3")) == [other]


def test_wait_times_out_on_the_injected_clock_and_cancel_ends_the_run(ws: LocalWorkspace) -> None:
    client = sdk_client(ws)
    run_id = start(client, sleep="60", token="tok-1")
    clock = FakeClock()
    with pytest.raises(TimeoutExpired):
        jobs.wait_for_run(client, run_id, deadline=clock.now + 5, clock=clock)
    assert sum(clock.sleeps) == pytest.approx(5.0)
    assert clock.sleeps[0] == 0.5 and max(clock.sleeps) <= 1.5
    run = jobs.cancel_run(client, run_id)
    assert run is not None
    assert run.end.result == "CANCELED"


def test_the_same_token_gives_the_same_run(ws: LocalWorkspace) -> None:
    client = sdk_client(ws)
    first = start(client, token="same")
    assert start(client, token="same") == first
    assert start(client, token="other") != first


def test_a_terminated_cluster_is_started_under_its_own_timeout(ws: LocalWorkspace) -> None:
    client = sdk_client(ws)
    client.clusters.delete(CLUSTER)
    assert jobs.ensure_cluster_running(client, CLUSTER, timeout=60) is True
    assert client.clusters.get(CLUSTER).state.value == "RUNNING"
    assert jobs.ensure_cluster_running(client, CLUSTER, timeout=60) is False


def test_cluster_start_timeout_on_the_injected_clock(tmp_path: Path) -> None:
    with start_local_workspace(
        tmp_path / "slow", token=TOKEN, executor=FakeExecutor(), cluster_start_delay=3600
    ) as w:
        client = sdk_client(w)
        client.clusters.delete(CLUSTER)
        clock = FakeClock()
        with pytest.raises(TimeoutExpired, match="not running"):
            jobs.ensure_cluster_running(client, CLUSTER, timeout=30, clock=clock)
        assert sum(clock.sleeps) == pytest.approx(30.0)


def test_a_run_is_found_by_its_name_when_its_run_id_was_lost(ws: LocalWorkspace) -> None:
    """A build interrupted around run-now finds its run through its job's name (another repo's
    build of the same id is never taken for it)."""
    client = sdk_client(ws)
    run_id = start(client, build_job_name("x", "b-9"), sleep="30", token="x")
    start(client, build_job_name("y", "b-9"), sleep="30", token="y")
    assert jobs.find_build_run(client, "x", "b-9") == run_id
    assert jobs.find_build_run(client, "x", "other") is None
    active = jobs.active_runs(client, "x")
    assert [(r.run_id, r.build_id) for r in active] == [(run_id, "b-9")]
    jobs.cancel_run(client, run_id)
    assert jobs.find_build_run(client, "x", "b-9") is None


def test_runs_list_filters_by_run_type(ws: LocalWorkspace) -> None:
    client = sdk_client(ws)
    run_id = start(client)
    jobs.wait_for_run(client, run_id, deadline=None)
    listed = client.api_client.do("GET", "/api/2.2/jobs/runs/list", query={"run_type": "JOB_RUN"})
    assert [r["run_id"] for r in listed["runs"]] == [run_id]
    submitted = client.api_client.do(
        "GET", "/api/2.2/jobs/runs/list", query={"run_type": "SUBMIT_RUN"}
    )
    assert "runs" not in submitted
