"""Jobs API semantics of the local workspace through databricks-sdk: jobs CRUD, run life cycle,
parameters, queueing, DAGs, cancel, timeouts and idempotency (with a fake task executor)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from databricks.sdk.errors import NotFound
from databricks.sdk.errors.base import DatabricksError
from databricks.sdk.service import jobs

from orchestrator.local.server import LocalWorkspace, start_local_workspace
from orchestrator.services import LOCAL_CLUSTER_ID
from tests.conftest import TOKEN, sdk_client
from tests.fakes import FakeExecutor

CLUSTER = LOCAL_CLUSTER_ID
pytestmark = pytest.mark.ws(cluster_start_delay=0.3)


@pytest.fixture
def w(ws: LocalWorkspace):  # type: ignore[no-untyped-def]
    return sdk_client(ws)


def task(key: str, deps: tuple[str, ...] = (), **params: str) -> jobs.Task:
    return jobs.Task(
        task_key=key,
        existing_cluster_id=CLUSTER,
        notebook_task=jobs.NotebookTask(notebook_path=f"/nb/{key}", base_parameters=params),
        depends_on=[jobs.TaskDependency(task_key=d) for d in deps] or None,
    )


def wait(w, run_id: int) -> jobs.Run:  # type: ignore[no-untyped-def]
    return w.jobs.wait_get_run_job_terminated_or_skipped(run_id, timeout=timedelta(seconds=60))


def test_create_get_list_reset_update_delete(w) -> None:  # type: ignore[no-untyped-def]
    created = w.jobs.create(name="build-repo", tasks=[task("a")], max_concurrent_runs=3)
    job = w.jobs.get(created.job_id)
    assert job.settings.name == "build-repo" and job.settings.max_concurrent_runs == 3
    for i in range(3):
        w.jobs.create(name=f"other-{i}", tasks=[task("a")])
    assert [j.job_id for j in w.jobs.list(name="BUILD-REPO")] == [created.job_id]
    assert len(list(w.jobs.list(limit=2))) == 4  # the SDK follows page tokens
    w.jobs.reset(created.job_id, jobs.JobSettings(name="build-repo", tasks=[task("b")]))
    assert [t.task_key for t in w.jobs.get(created.job_id).settings.tasks] == ["b"]
    w.jobs.update(created.job_id, new_settings=jobs.JobSettings(tasks=[task("c")]))
    assert sorted(t.task_key for t in w.jobs.get(created.job_id).settings.tasks) == ["b", "c"]
    w.jobs.delete(created.job_id)
    with pytest.raises(NotFound):
        w.jobs.get(created.job_id)


def test_invalid_settings_are_rejected(w) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DatabricksError, match="depends on"):
        w.jobs.create(name="x", tasks=[task("a", deps=("missing",))])
    with pytest.raises(DatabricksError, match="cycle"):
        w.jobs.create(name="x", tasks=[task("a", deps=("b",)), task("b", deps=("a",))])


def test_long_chains_in_reverse_order_and_long_cycles(w, fake: FakeExecutor) -> None:  # type: ignore[no-untyped-def]
    """Dependencies are walked without recursion: 1,000 tasks (the service's limit), each
    depending on the next one listed, are accepted, and a cycle through all of them is 400.
    A run of such a chain runs its tasks in dependency order (100 of them: a run of 1,000
    takes tens of seconds here, each state change saving the whole run)."""
    chain = [task(f"t{i}", deps=(f"t{i + 1}",)) for i in range(999)] + [task("t999")]
    assert w.jobs.create(name="chain", tasks=chain).job_id
    cycle = [task(f"t{i}", deps=(f"t{(i + 1) % 1000}",)) for i in range(1000)]
    with pytest.raises(DatabricksError, match=r"cycle: t0 -> t1 .* tasks.* -> t0"):
        w.jobs.create(name="cycle", tasks=cycle)
    short = [task(f"t{i}", deps=(f"t{i + 1}",)) for i in range(99)] + [task("t99")]
    job = w.jobs.create(name="short chain", tasks=short)
    run = wait(w, w.jobs.run_now(job.job_id).run_id)
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert [c.task_key for c in fake.calls] == [f"t{i}" for i in range(99, -1, -1)]


def test_run_now_life_cycle_and_parameters(w, fake: FakeExecutor) -> None:  # type: ignore[no-untyped-def]
    job = w.jobs.create(
        name="p",
        tasks=[
            task("a", sleep="0.3", base="b", both="task", ref="{{job.run_id}}-{{job.parameters.x}}")
        ],
        parameters=[jobs.JobParameterDefinition(name="x", default="dx")],
    )
    started = w.jobs.run_now(job.job_id, job_parameters={"x": "vx"})
    first = w.jobs.get_run(started.run_id)
    assert first.state.life_cycle_state in (
        jobs.RunLifeCycleState.PENDING,
        jobs.RunLifeCycleState.RUNNING,
    )
    assert first.run_page_url.endswith(f"/jobs/{job.job_id}/runs/{started.run_id}")
    run = wait(w, started.run_id)
    assert run.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert run.status.state == jobs.RunLifecycleStateV2State.TERMINATED
    assert run.tasks[0].state.result_state == jobs.RunResultState.SUCCESS
    assert run.start_time <= run.end_time
    params = fake.calls[0].parameters
    assert params["base"] == "b" and params["x"] == "vx"
    assert params["ref"] == f"{started.run_id}-vx"


def test_notebook_params_override_base_parameters(w, fake: FakeExecutor) -> None:  # type: ignore[no-untyped-def]
    job = w.jobs.create(name="p", tasks=[task("a", k="base", keep="yes")])
    wait(w, w.jobs.run_now(job.job_id, notebook_params={"k": "run"}).run_id)
    assert fake.calls[0].parameters == {"k": "run", "keep": "yes"}


def test_same_idempotency_token_never_starts_a_second_run(w, fake: FakeExecutor) -> None:  # type: ignore[no-untyped-def]
    job = w.jobs.create(name="i", tasks=[task("a", sleep="0.2")], max_concurrent_runs=10)
    ids: list[int] = []

    def go() -> None:
        ids.append(w.jobs.run_now(job.job_id, idempotency_token="build-42").run_id)

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1
    wait(w, ids[0])
    assert len(list(w.jobs.list_runs(job_id=job.job_id))) == 1


def test_independent_tasks_run_in_parallel_and_dependents_after(w, fake: FakeExecutor) -> None:  # type: ignore[no-untyped-def]
    job = w.jobs.create(
        name="dag",
        tasks=[task("a", sleep="0.5"), task("b", sleep="0.5"), task("c", deps=("a", "b"))],
    )
    t0 = time.monotonic()
    run = wait(w, w.jobs.run_now(job.job_id).run_id)
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert fake.max_running == 2
    assert time.monotonic() - t0 < 3
    by_key = {t.task_key: t for t in run.tasks}
    assert by_key["c"].start_time >= max(by_key["a"].end_time, by_key["b"].end_time)


def test_failed_task_fails_run_and_skips_dependents(w) -> None:  # type: ignore[no-untyped-def]
    job = w.jobs.create(name="f", tasks=[task("a", result="FAILED"), task("b", deps=("a",))])
    run_id = w.jobs.run_now(job.job_id).run_id
    run = wait(w, run_id)
    assert run.state.result_state == jobs.RunResultState.FAILED
    by_key = {t.task_key: t for t in run.tasks}
    assert by_key["b"].state.result_state == jobs.RunResultState.UPSTREAM_FAILED
    output = w.jobs.get_run_output(by_key["a"].run_id)
    assert output.error == "Exception: boom"
    with pytest.raises(DatabricksError, match="multiple tasks"):
        w.jobs.get_run_output(run_id)


def test_cancel_ends_run_as_canceled(w) -> None:  # type: ignore[no-untyped-def]
    job = w.jobs.create(name="c", tasks=[task("a", sleep="30")])
    run_id = w.jobs.run_now(job.job_id).run_id
    time.sleep(0.5)
    t0 = time.monotonic()
    w.jobs.cancel_run(run_id)
    run = wait(w, run_id)
    # ended by the cancel, well before the task's 30 s (bench/cancel.py times a cancel)
    assert time.monotonic() - t0 < 15
    assert run.state.result_state == jobs.RunResultState.CANCELED
    assert run.status.termination_details.code == jobs.TerminationCodeCode.USER_CANCELED


def test_job_timeout_ends_run_as_timedout(w) -> None:  # type: ignore[no-untyped-def]
    job = w.jobs.create(name="t", tasks=[task("a", sleep="30")], timeout_seconds=1)
    run = wait(w, w.jobs.run_now(job.job_id).run_id)
    assert run.state.result_state == jobs.RunResultState.TIMEDOUT


def test_task_timeout_ends_task_as_timedout(w) -> None:  # type: ignore[no-untyped-def]
    t = task("a", sleep="30")
    t.timeout_seconds = 1
    job = w.jobs.create(name="t", tasks=[t])
    run = wait(w, w.jobs.run_now(job.job_id).run_id)
    assert run.tasks[0].state.result_state == jobs.RunResultState.TIMEDOUT
    assert run.state.result_state == jobs.RunResultState.TIMEDOUT


def test_max_concurrent_runs_queues_when_queue_enabled(w) -> None:  # type: ignore[no-untyped-def]
    job = w.jobs.create(
        name="q",
        tasks=[task("a", sleep="0.5")],
        max_concurrent_runs=1,
        queue=jobs.QueueSettings(enabled=True),
    )
    first = w.jobs.run_now(job.job_id).run_id
    second = w.jobs.run_now(job.job_id).run_id
    assert w.jobs.get_run(second).state.life_cycle_state == jobs.RunLifeCycleState.QUEUED
    active = list(w.jobs.list_runs(job_id=job.job_id, active_only=True))
    assert {r.run_id for r in active} == {first, second}
    a, b = wait(w, first), wait(w, second)
    assert a.state.result_state == b.state.result_state == jobs.RunResultState.SUCCESS
    assert b.start_time >= a.end_time


def test_max_concurrent_runs_skips_without_queue(w) -> None:  # type: ignore[no-untyped-def]
    job = w.jobs.create(name="s", tasks=[task("a", sleep="0.5")], max_concurrent_runs=1)
    first = w.jobs.run_now(job.job_id).run_id
    second = w.jobs.run_now(job.job_id).run_id
    skipped = w.jobs.get_run(second)
    assert skipped.state.life_cycle_state == jobs.RunLifeCycleState.SKIPPED
    wait(w, first)


def test_cancel_a_queued_run(w) -> None:  # type: ignore[no-untyped-def]
    job = w.jobs.create(
        name="q", tasks=[task("a", sleep="1")], queue=jobs.QueueSettings(enabled=True)
    )
    first = w.jobs.run_now(job.job_id).run_id
    second = w.jobs.run_now(job.job_id).run_id
    w.jobs.cancel_run(second)
    assert w.jobs.get_run(second).state.result_state == jobs.RunResultState.CANCELED
    assert wait(w, first).state.result_state == jobs.RunResultState.SUCCESS


def test_terminated_cluster_is_started_by_the_run(w, ws: LocalWorkspace) -> None:  # type: ignore[no-untyped-def]
    w.clusters.delete(CLUSTER)
    assert w.clusters.get(CLUSTER).state.value == "TERMINATED"
    job = w.jobs.create(name="cl", tasks=[task("a")])
    run = wait(w, w.jobs.run_now(job.job_id).run_id)
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert w.clusters.get(CLUSTER).state.value == "RUNNING"


def test_cluster_start_and_sdk_ensure_running(w) -> None:  # type: ignore[no-untyped-def]
    w.clusters.delete(CLUSTER)
    w.clusters.ensure_cluster_is_running(CLUSTER)
    assert w.clusters.get(CLUSTER).state.value == "RUNNING"
    assert [c.cluster_id for c in w.clusters.list()] == [CLUSTER]


def test_submit_run_and_delete(w) -> None:  # type: ignore[no-untyped-def]
    run = w.jobs.submit(
        run_name="one-off",
        tasks=[
            jobs.SubmitTask(
                task_key="a",
                existing_cluster_id=CLUSTER,
                notebook_task=jobs.NotebookTask(
                    notebook_path="/nb/a", base_parameters={"exit": "done"}
                ),
            )
        ],
    ).result(timeout=timedelta(seconds=30))
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert w.jobs.get_run_output(run.run_id).notebook_output.result == "done"
    w.jobs.delete_run(run.run_id)
    with pytest.raises(NotFound):
        w.jobs.get_run(run.run_id)


def test_legacy_api_paths_serve_the_same_runs(ws: LocalWorkspace) -> None:
    import requests

    headers = {"Authorization": f"Bearer {ws.token}"}
    body = {
        "name": "legacy",
        "tasks": [
            {
                "task_key": "a",
                "existing_cluster_id": CLUSTER,
                "notebook_task": {"notebook_path": "/nb/a"},
            }
        ],
    }
    job_id = requests.post(
        f"{ws.url}/api/2.0/jobs/create", json=body, headers=headers, timeout=5
    ).json()["job_id"]
    run_id = requests.post(
        f"{ws.url}/api/2.1/jobs/run-now", json={"job_id": job_id}, headers=headers, timeout=5
    ).json()["run_id"]
    for version in ("2.0", "2.1", "2.2"):
        got = requests.get(
            f"{ws.url}/api/{version}/jobs/runs/get",
            params={"run_id": run_id},
            headers=headers,
            timeout=5,
        )
        assert got.json()["run_id"] == run_id


def test_state_survives_restart_and_active_runs_end(tmp_path: Path, fake: FakeExecutor) -> None:
    state = tmp_path / "state"
    first = start_local_workspace(state, token=TOKEN, executor=fake)
    w = sdk_client(first)
    w.workspace.mkdirs("/kept")
    job = w.jobs.create(name="r", tasks=[task("a", sleep="30")])
    run_id = w.jobs.run_now(job.job_id).run_id
    time.sleep(0.5)
    # Simulate a crash: the process stops without a clean shutdown of its runs.
    first._server.shutdown()
    first._server.server_close()
    first.store.close()
    second = start_local_workspace(state, token=TOKEN, executor=fake)
    try:
        w2 = sdk_client(second)
        assert w2.workspace.get_status("/kept").path == "/kept"
        assert w2.jobs.get(job.job_id).settings.name == "r"
        run = w2.jobs.get_run(run_id)
        assert run.state.life_cycle_state == jobs.RunLifeCycleState.INTERNAL_ERROR
        assert list(w2.jobs.list_runs(active_only=True)) == []
    finally:
        second.stop()
        first.scheduler.shutdown(timeout=2)
