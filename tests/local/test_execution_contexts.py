"""A cluster's 150 execution contexts, enforced as Databricks enforces them: a job that would
open more at once fails the tasks over the limit (though the local workspace runs only a few
notebooks at a time), the job a build makes of the same tasks runs green, a
``dbutils.notebook.run`` child takes a context too, and a job over 1000 tasks is refused."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service import jobs

from orchestrator.job.build_job import build_job
from orchestrator.local.jobs.execution_contexts import (
    CONTEXT_LIMIT,
    TOO_MANY_CONTEXTS,
    ExecutionContexts,
    cluster_of,
)
from orchestrator.local.jobs.notebook_tasks import ChildRunRecords
from orchestrator.local.runtime.clusters import DEFAULT_CLUSTER_ID
from orchestrator.local.runtime.execution import ChildRefused
from orchestrator.local.server import LocalWorkspace
from orchestrator.local.state.store import Store
from tests.conftest import sdk_client
from tests.fakes import FakeExecutor


def _tasks(count: int) -> list[dict[str, Any]]:
    return [
        {
            "task_key": f"nb{i:03d}",
            "existing_cluster_id": DEFAULT_CLUSTER_ID,
            "notebook_task": {"notebook_path": f"/Shared/repo/nb{i:03d}"},
        }
        for i in range(count)
    ]


def _results(ws: LocalWorkspace, settings: dict[str, Any]) -> list[jobs.RunTask]:
    w = sdk_client(ws)
    job_id = int(w.api_client.do("POST", "/api/2.2/jobs/create", body=settings)["job_id"])
    run = w.jobs.run_now(job_id).result()
    assert run.tasks is not None
    return run.tasks


def test_a_job_opening_more_contexts_than_its_cluster_holds_fails_the_rest(
    ws: LocalWorkspace, fake: FakeExecutor
) -> None:
    tasks = _results(ws, {"name": "flat", "tasks": _tasks(CONTEXT_LIMIT + 30)})
    failed = [t for t in tasks if t.state.result_state == jobs.RunResultState.FAILED]
    assert len(failed) == 30
    assert {t.state.state_message for t in failed} == {TOO_MANY_CONTEXTS.format(limit=150)}
    assert len(fake.calls) == CONTEXT_LIMIT  # the refused ones never ran
    assert ws.scheduler.contexts.count(DEFAULT_CLUSTER_ID) == 0  # every context given back


def test_the_job_a_build_makes_of_200_notebooks_on_one_cluster_runs_green(
    ws: LocalWorkspace, fake: FakeExecutor
) -> None:
    settings = build_job(
        {"name": "repo", "tasks": _tasks(200)},
        name="build-repo 1",
        tags={"build": "1"},
        build_folder="/Shared/repo",
        parameters={},
    )
    tasks = _results(ws, settings)
    assert {t.state.result_state for t in tasks} == {jobs.RunResultState.SUCCESS}
    assert len(fake.calls) == 200


def test_contexts_are_per_cluster_and_job_clusters_per_run() -> None:
    contexts = ExecutionContexts(limit=1)
    assert contexts.open("a") and not contexts.open("a") and contexts.open("b")
    contexts.close("a")
    assert contexts.open("a")
    assert contexts.open(None) and contexts.open(None)  # a cluster of its own: never full
    assert (
        cluster_of(7, {"job_cluster_key": "c"})
        == "run 7/c"
        != cluster_of(8, {"job_cluster_key": "c"})
    )
    assert cluster_of(7, {"new_cluster": {}}) is None


def test_a_notebook_run_child_takes_a_context_and_is_refused_when_none_is_left(
    tmp_path: Any,
) -> None:
    store = Store(tmp_path / "state")
    try:
        contexts = ExecutionContexts(limit=1)
        records = ChildRunRecords(
            store,
            run_url=lambda _job, run_id: f"/runs/{run_id}",
            creator="me",
            keep_scratch=False,
            contexts=contexts,
        )
        assert contexts.open("c1")  # the parent task's
        with pytest.raises(ChildRefused, match="Limit set to 1"):
            records.start(
                notebook_path="/Shared/child",
                parameters={},
                parent_environment={"ORCH_CLUSTER_ID": "c1"},
                cancel=threading.Event(),
            )
        assert contexts.count("c1") == 1  # the refused child holds none
    finally:
        store.close()


def test_a_job_of_more_than_1000_tasks_is_refused_at_create(ws: LocalWorkspace) -> None:
    w = sdk_client(ws)
    with pytest.raises(InvalidParameterValue, match="at most 1000 tasks"):
        w.api_client.do("POST", "/api/2.2/jobs/create", body={"tasks": _tasks(1001)})
