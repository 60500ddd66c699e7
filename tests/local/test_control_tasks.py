"""If/else condition tasks and run-job tasks through databricks-sdk, on the fake executor: the
branch a condition's outcome names runs and the other is excluded (a run with excluded tasks
succeeds), operands are compared as Databricks documents, and a run-job task runs its job and
ends with that run's result."""

from __future__ import annotations

import pytest
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service import jobs

from orchestrator.local.server import LocalWorkspace
from tests.conftest import sdk_client
from tests.fakes import FakeExecutor

Op = jobs.ConditionTaskOp


def _nb(key: str, *deps: jobs.TaskDependency, result: str = "SUCCESS") -> jobs.Task:
    return jobs.Task(
        task_key=key,
        depends_on=list(deps),
        notebook_task=jobs.NotebookTask(notebook_path="/x", base_parameters={"result": result}),
    )


def _branching(left: str, op: Op, right: str) -> list[jobs.Task]:
    return [
        jobs.Task(
            task_key="check", condition_task=jobs.ConditionTask(op=op, left=left, right=right)
        ),
        _nb("yes", jobs.TaskDependency(task_key="check", outcome="true")),
        _nb("no", jobs.TaskDependency(task_key="check", outcome="false")),
        _nb("after_yes", jobs.TaskDependency(task_key="yes")),
    ]


@pytest.mark.parametrize(
    ("left", "op", "right", "outcome"),
    [
        ("{{job.parameters.n}}", Op.GREATER_THAN, "10", "true"),
        ("12.0", Op.EQUAL_TO, "12", "false"),  # == compares strings
        ("12.0", Op.GREATER_THAN_OR_EQUAL, "12", "true"),  # >= compares numbers
        ("a", Op.NOT_EQUAL, "b", "true"),
    ],
)
def test_a_condition_runs_one_branch_and_excludes_the_other(
    ws: LocalWorkspace, fake: FakeExecutor, left: str, op: Op, right: str, outcome: str
) -> None:
    w = sdk_client(ws)
    job_id = w.jobs.create(
        name="branch",
        tasks=_branching(left, op, right),
        parameters=[jobs.JobParameterDefinition(name="n", default="42")],
    ).job_id
    run = w.jobs.run_now(job_id).result()
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    tasks = {t.task_key: t for t in run.tasks}
    assert tasks["check"].condition_task.outcome == outcome
    ran, skipped = ("yes", "no") if outcome == "true" else ("no", "yes")
    assert tasks[ran].state.result_state == jobs.RunResultState.SUCCESS
    assert tasks[skipped].state.result_state == jobs.RunResultState.EXCLUDED
    after = "SUCCESS" if outcome == "true" else "EXCLUDED"  # all its dependencies excluded
    assert tasks["after_yes"].state.result_state.value == after
    assert "check" not in {c.task_key for c in fake.calls}  # no kernel for a condition
    if left.startswith("{{"):
        assert tasks["check"].condition_task.left == "42"


def test_a_condition_on_words_with_a_numeric_operator_fails(ws: LocalWorkspace) -> None:
    w = sdk_client(ws)
    run = w.jobs.submit(
        run_name="bad",
        tasks=[
            jobs.SubmitTask(
                task_key="c",
                condition_task=jobs.ConditionTask(op=Op.LESS_THAN, left="a", right="1"),
            )
        ],
    ).result()
    assert run.state.result_state == jobs.RunResultState.FAILED
    assert "both must be numbers" in w.jobs.get_run_output(run.tasks[0].run_id).error


def test_a_run_job_task_runs_its_job(ws: LocalWorkspace, fake: FakeExecutor) -> None:
    w = sdk_client(ws)
    inner = w.jobs.create(
        name="inner",
        tasks=[_nb("work")],
        parameters=[jobs.JobParameterDefinition(name="who", default="nobody")],
    ).job_id
    failing = w.jobs.create(name="failing", tasks=[_nb("work", result="FAILED")]).job_id
    outer = w.jobs.create(
        name="outer",
        tasks=[
            jobs.Task(
                task_key="call",
                run_job_task=jobs.RunJobTask(job_id=inner, job_parameters={"who": "{{job.id}}"}),
            )
        ],
    ).job_id
    run = w.jobs.run_now(outer).result()
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    child_id = w.jobs.get_run_output(run.tasks[0].run_id).run_job_output.run_id
    child = w.jobs.get_run(child_id)
    assert child.job_id == inner and child.trigger == jobs.TriggerType.RUN_JOB_TASK
    assert {c.parameters.get("who") for c in fake.calls if c.run_id == child_id} == {str(outer)}
    bad = w.jobs.submit(
        run_name="s",
        tasks=[jobs.SubmitTask(task_key="call", run_job_task=jobs.RunJobTask(job_id=failing))],
    ).result()
    assert bad.state.result_state == jobs.RunResultState.FAILED
    with pytest.raises(InvalidParameterValue, match="does not exist"):
        w.jobs.create(
            name="x", tasks=[jobs.Task(task_key="c", run_job_task=jobs.RunJobTask(job_id=987654))]
        )
    with pytest.raises(InvalidParameterValue, match="not a condition task"):
        w.jobs.create(
            name="x", tasks=[_nb("a"), _nb("b", jobs.TaskDependency(task_key="a", outcome="true"))]
        )
