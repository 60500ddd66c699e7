"""The control-flow task types, done by the jobs engine itself, without a kernel:
``condition_task`` (If/else) and ``run_job_task`` (run another job).

:class:`ControlFlowTasks` wraps the workspace's task executor: these two types are done here,
every other task goes to the wrapped executor. As Databricks documents for If/else tasks,
``EQUAL_TO`` and ``NOT_EQUAL`` compare their operands as strings (``12.0 == 12`` is false),
the other operators as numbers (a non-numeric operand fails the task); the task succeeds with
``outcome`` ``"true"`` or ``"false"``, and a task that depends on it with another ``outcome``
is excluded (the scheduler reads ``condition_task.outcome``). The operands' references
(``{{job.parameters.x}}``...) are resolved when the run is made (:func:`resolve_operands`).

A ``run_job_task`` starts a run of its job (trigger ``RUN_JOB_TASK``) with the task's
``job_parameters``, waits for it and ends with its result; ``runs/get-output`` shows
``run_job_output.run_id``. Cancelling the task cancels that run. These tasks take no worker
slot while they wait, so a job of jobs cannot starve its own tasks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.local.jobs import run_documents as runs
from orchestrator.local.jobs.task_execution import TaskExecutor, TaskOutcome, TaskSpec
from orchestrator.local.state.api_error import ApiError
from orchestrator.local.state.records import RunRecord

__all__ = ["CONTROL_TYPES", "OUTCOME", "ControlFlowTasks", "resolve_operands"]

#: the task types done here
CONTROL_TYPES = ("condition_task", "run_job_task")
#: the key of a condition task's output that carries its outcome to the scheduler (private:
#: ``runs/get-output`` never shows keys that start with ``_``)
OUTCOME = "_outcome"
_NUMERIC = {
    "GREATER_THAN": lambda a, b: a > b,
    "GREATER_THAN_OR_EQUAL": lambda a, b: a >= b,
    "LESS_THAN": lambda a, b: a < b,
    "LESS_THAN_OR_EQUAL": lambda a, b: a <= b,
}

StartJob = Callable[[int, Mapping[str, str]], int]
AwaitRun = Callable[[int, threading.Event], "RunRecord | None"]


def _refuse_start(job_id: int, parameters: Mapping[str, str]) -> int:
    raise RuntimeError("this workspace does not run jobs from tasks")


def _no_wait(run_id: int, cancel: threading.Event) -> RunRecord | None:
    return None


class ControlFlowTasks:
    def __init__(self, inner: TaskExecutor) -> None:
        self.inner = inner
        #: starts a run of a job with job parameters, returns its run id (the Jobs API's)
        self.start_job: StartJob = _refuse_start
        #: waits for a run to end (cancelling it when the event is set), returns its record
        self.await_run: AwaitRun = _no_wait

    def __call__(self, spec: TaskSpec, cancel: threading.Event) -> TaskOutcome:
        if isinstance(spec.task.get("condition_task"), dict):
            return condition_outcome(spec.task["condition_task"])
        if isinstance(spec.task.get("run_job_task"), dict):
            return self._run_job(spec.task["run_job_task"], cancel)
        return self.inner(spec, cancel)

    def _run_job(self, task: Mapping[str, Any], cancel: threading.Event) -> TaskOutcome:
        params = {str(k): str(v) for k, v in (task.get("job_parameters") or {}).items()}
        try:
            run_id = self.start_job(int(task["job_id"]), params)
        except (ApiError, RuntimeError) as exc:  # the job was deleted since: say so
            message = exc.message if isinstance(exc, ApiError) else str(exc)
            return TaskOutcome("FAILED", message, {"error": message})
        output: dict[str, Any] = {"run_job_output": {"run_id": run_id}}
        doc = self.await_run(run_id, cancel)
        state = (doc or {}).get("state", {})
        result = state.get("result_state", "FAILED")
        if result == "SUCCESS":
            return TaskOutcome("SUCCESS", "", output)
        message = f"The run {run_id} of job {task['job_id']} ended {result}"
        output["error"] = message
        return TaskOutcome("CANCELED" if result == "CANCELED" else "FAILED", message, output)


def condition_outcome(task: Mapping[str, Any]) -> TaskOutcome:
    op, left, right = str(task.get("op")), str(task.get("left")), str(task.get("right"))
    if op in ("EQUAL_TO", "NOT_EQUAL"):
        value = (left == right) == (op == "EQUAL_TO")
    else:
        try:
            a, b = float(left), float(right)
        except ValueError:
            message = f"Cannot compare {left!r} and {right!r} with {op}: both must be numbers"
            return TaskOutcome("FAILED", message, {"error": message})
        value = _NUMERIC[op](a, b)
    return TaskOutcome("SUCCESS", "", {OUTCOME: "true" if value else "false"})


def resolve_operands(doc: RunRecord, *, job_params: Mapping[str, str]) -> None:
    """Resolve the references in the run's condition operands and run-job parameters."""
    for task in doc.get("tasks", []):
        lookup = runs.task_lookup(doc, task, job_params)
        record: dict[str, Any] = task  # type: ignore[assignment]
        condition = record.get("condition_task")
        if isinstance(condition, dict):
            for side in ("left", "right"):
                condition[side] = runs.resolve_references(str(condition.get(side, "")), lookup)
        run_job = record.get("run_job_task")
        if isinstance(run_job, dict) and isinstance(run_job.get("job_parameters"), dict):
            run_job["job_parameters"] = {
                k: runs.resolve_references(str(v), lookup)
                for k, v in run_job["job_parameters"].items()
            }
