"""``jobs/runs/repair`` through databricks-sdk, on the fake executor (the life cycle; a repair
of a real notebook is in tests/local/test_python_tasks.py): failed tasks and their
dependents run again with new task run ids, the others keep their results, the run shows its
``repair_history``, and a second repair must name the latest one."""

from __future__ import annotations

import pytest
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service import jobs

from orchestrator.local.server import LocalWorkspace
from tests.conftest import sdk_client
from tests.fakes import FakeExecutor


def _task(key: str, result: str, *deps: str) -> jobs.Task:
    return jobs.Task(
        task_key=key,
        depends_on=[jobs.TaskDependency(task_key=d) for d in deps],
        notebook_task=jobs.NotebookTask(notebook_path="/x", base_parameters={"result": result}),
    )


def test_repair_reruns_failed_tasks_and_their_dependents(
    ws: LocalWorkspace, fake: FakeExecutor
) -> None:
    w = sdk_client(ws)
    job_id = w.jobs.create(
        name="r",
        tasks=[
            _task("ok", "SUCCESS"),
            _task("bad", "FAILED"),
            _task("after", "SUCCESS", "bad"),
        ],
    ).job_id
    run = w.jobs.run_now(job_id).result()
    results = {t.task_key: t.state.result_state.value for t in run.tasks}
    assert results == {"ok": "SUCCESS", "bad": "FAILED", "after": "UPSTREAM_FAILED"}
    first_ids = {t.task_key: t.run_id for t in run.tasks}
    # the notebook is "fixed": the repaired task now succeeds
    fixed = w.jobs.get(job_id).settings
    w.jobs.reset(job_id, fixed)
    fake.calls.clear()
    repaired = w.jobs.repair_run(
        run.run_id,
        rerun_tasks=["bad"],
        rerun_dependent_tasks=True,
        notebook_params={"result": "SUCCESS"},
    ).result()
    assert {c.task_key for c in fake.calls} == {"bad", "after"}
    assert repaired.state.result_state == jobs.RunResultState.SUCCESS
    ids = {t.task_key: t.run_id for t in repaired.tasks}
    assert ids["ok"] == first_ids["ok"] and ids["bad"] != first_ids["bad"]
    history = w.jobs.get_run(run.run_id, include_history=True).repair_history
    assert [h.type.value for h in history] == ["ORIGINAL", "REPAIR"]
    assert history[0].state.result_state == jobs.RunResultState.FAILED
    assert sorted(history[1].task_run_ids) == sorted([ids["bad"], ids["after"]])
    assert history[1].state.result_state == jobs.RunResultState.SUCCESS and history[1].end_time
    assert not w.jobs.get_run(run.run_id).repair_history  # only when asked for
    with pytest.raises(InvalidParameterValue, match="latest_repair_id"):
        w.jobs.repair_run(run.run_id, rerun_tasks=["ok"])
    again = w.jobs.repair_run(run.run_id, rerun_tasks=["ok"], latest_repair_id=history[1].id)
    again.result()
    history = w.jobs.get_run(run.run_id, include_history=True).repair_history
    assert len(history) == 3 and history[2].id == again.response.repair_id


def test_rerun_all_failed_tasks(ws: LocalWorkspace) -> None:
    w = sdk_client(ws)
    job_id = w.jobs.create(name="r", tasks=[_task("a", "FAILED"), _task("b", "SUCCESS")]).job_id
    run = w.jobs.run_now(job_id).result()
    w.jobs.repair_run(run.run_id, rerun_all_failed_tasks=True).result()
    history = w.jobs.get_run(run.run_id, include_history=True).repair_history
    (a,) = [t for t in w.jobs.get_run(run.run_id).tasks if t.task_key == "a"]
    assert history[1].task_run_ids == [a.run_id]
    with pytest.raises(InvalidParameterValue):
        w.jobs.repair_run(run.run_id, latest_repair_id=history[1].id)  # neither way given
    submitted = w.jobs.submit(run_name="s", tasks=[_task("a", "FAILED")]).result()
    with pytest.raises(InvalidParameterValue, match="not a job run"):
        w.jobs.repair_run(submitted.run_id, rerun_all_failed_tasks=True)
