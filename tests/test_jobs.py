"""The build's Databricks steps against the local workspace, with an injected clock for waits:
adaptive polling, the build deadline, cancel-and-wait, cluster start, ensure-job convergence."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from databricks.sdk.service import jobs as sdk_jobs

from orchestrator.adapters.databricks import runs as jobs
from orchestrator.errors import TimeoutExpired
from orchestrator.local.server import LocalWorkspace, start_local_workspace
from orchestrator.services import LOCAL_CLUSTER_ID
from tests.conftest import TOKEN, sdk_client
from tests.fakes import FakeClock, FakeExecutor

CLUSTER = LOCAL_CLUSTER_ID
pytestmark = pytest.mark.ws(cluster_start_delay=0.2)


def settings(name: str = "build-x", sleep: str = "0") -> dict[str, object]:
    return {
        "name": name,
        "max_concurrent_runs": 4,
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


def test_ensure_job_creates_then_leaves_alone_then_resets(ws: LocalWorkspace) -> None:
    client = sdk_client(ws)
    job_id, action = jobs.ensure_job(client, settings())
    assert action == "created"
    assert jobs.ensure_job(client, settings()) == (job_id, "unchanged")
    changed = settings()
    changed["max_concurrent_runs"] = 9
    assert jobs.ensure_job(client, changed) == (job_id, "reset")
    assert client.jobs.get(job_id).settings.max_concurrent_runs == 9


def test_racing_ensure_job_converges_on_one_job(ws: LocalWorkspace) -> None:
    client = sdk_client(ws)
    results: list[tuple[int, str]] = []
    barrier = threading.Barrier(6)

    def race() -> None:
        barrier.wait()
        results.append(jobs.ensure_job(sdk_client(ws), settings("build-race")))

    threads = [threading.Thread(target=race) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({job_id for job_id, _ in results}) == 1
    assert len([j for j in client.jobs.list(name="build-race")]) == 1


def test_wait_times_out_on_the_injected_clock_and_cancel_ends_the_run(ws: LocalWorkspace) -> None:
    client = sdk_client(ws)
    job_id, _ = jobs.ensure_job(client, settings(sleep="60"))
    run_id = jobs.start_run(client, job_id, job_parameters={}, idempotency_token="tok-1")
    clock = FakeClock()
    with pytest.raises(TimeoutExpired):
        jobs.wait_for_run(client, run_id, deadline=clock.now + 5, clock=clock)
    assert sum(clock.sleeps) == pytest.approx(5.0)
    assert clock.sleeps[0] == 0.5 and max(clock.sleeps) <= 1.5
    run = jobs.cancel_run(client, run_id)
    assert run is not None
    assert run.state.result_state == sdk_jobs.RunResultState.CANCELED


def test_the_same_token_gives_the_same_run(ws: LocalWorkspace) -> None:
    client = sdk_client(ws)
    job_id, _ = jobs.ensure_job(client, settings())
    first = jobs.start_run(client, job_id, job_parameters={}, idempotency_token="same")
    assert jobs.start_run(client, job_id, job_parameters={}, idempotency_token="same") == first


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


def test_a_run_is_found_by_its_build_id_when_its_run_id_was_lost(ws: LocalWorkspace) -> None:
    client = sdk_client(ws)
    with_parameter = settings(sleep="30") | {"parameters": [{"name": "build_id", "default": ""}]}
    job_id, _ = jobs.ensure_job(client, with_parameter)
    run_id = jobs.start_run(
        client, job_id, job_parameters={"build_id": "b-9"}, idempotency_token="x"
    )
    assert jobs.find_build_run(client, job_id, "b-9") == run_id
    assert jobs.find_build_run(client, job_id, "other") is None
    jobs.cancel_run(client, run_id)
    assert jobs.find_build_run(client, job_id, "b-9") is None
