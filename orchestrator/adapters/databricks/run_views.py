"""Runs as the stages see them: :class:`RunView` and :class:`TaskView`, read from the Jobs API's
raw JSON (``runs/get`` 2.2), never through the SDK's enums.

The SDK turns a value its enum does not know into ``None`` (``CLUSTER_TERMINATED_BY_USER`` is
documented and missing from its ``TerminationCodeCode``), so the adapter reads runs as JSON and
keeps every code as the string the service sent. The 2.2 ``status`` is read first and the
deprecated 2.1 ``state`` second, field by field, so a run that carries only one of them is read
the same way.

:func:`platform_failure` says whether a run ended by the platform's fault (exit 3): a life cycle
of ``INTERNAL_ERROR``, a termination type of ``INTERNAL_ERROR`` or ``CLOUD_FAILURE``, or one of
the termination codes the Jobs API documents as the platform's (:data:`PLATFORM_CODES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PLATFORM_CODES",
    "RunEnd",
    "RunView",
    "TaskView",
    "parse_run",
    "platform_failure",
    "task_platform_failure",
]

#: Life cycles a run or task is over in (2.1 ``life_cycle_state``; 2.2 ``status.state``).
TERMINAL = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})
PLATFORM_LIFE_CYCLES = frozenset({"INTERNAL_ERROR"})
PLATFORM_TYPES = frozenset({"INTERNAL_ERROR", "CLOUD_FAILURE"})
#: ``TerminationCodeCode`` values the Jobs API reference puts on the platform, not the notebook:
#: retrying the build may pass.
PLATFORM_CODES = frozenset(
    {
        "INTERNAL_ERROR",  # an unexpected error in the platform
        "DRIVER_ERROR",  # could not talk to the Spark driver
        "CLUSTER_ERROR",  # the cluster failed
        "CLOUD_FAILURE",  # the cloud provider failed
        "WORKSPACE_RUN_LIMIT_EXCEEDED",  # the workspace's quota of active runs
        "CLUSTER_REQUEST_LIMIT_EXCEEDED",  # cluster requests rate-limited
        "MAX_SPARK_CONTEXTS_EXCEEDED",  # the cluster has too many execution contexts
        "MAX_JOB_QUEUE_SIZE_EXCEEDED",  # skipped: the queue was full
        "REPOSITORY_CHECKOUT_FAILED",  # a third-party Git service failed
        "STORAGE_ACCESS_ERROR",  # the customer's blob storage failed
        "BREAKING_CHANGE",  # a Spark change the service retries with a mitigation
        "CLUSTER_TERMINATED_BY_USER",  # the cluster was terminated or restarted under the run
    }
)
#: a termination code -> the result state a 2.1 ``result_state`` would give (for a run that
#: has only ``status``)
_RESULT_OF_CODE = {
    "SUCCESS": "SUCCESS",
    "SUCCESS_WITH_FAILURES": "SUCCESS",
    "USER_CANCELED": "CANCELED",
    "CANCELED": "CANCELED",
    "SKIPPED": "SKIPPED",
    "DISABLED": "DISABLED",
    "MAX_CONCURRENT_RUNS_EXCEEDED": "MAXIMUM_CONCURRENT_RUNS_REACHED",
}


@dataclass(frozen=True)
class RunEnd:
    """Where a run or task run stands: its life cycle and, once over, how it ended."""

    life_cycle: str | None = None  # QUEUED, PENDING, RUNNING, TERMINATING, TERMINATED...
    result: str | None = None  # SUCCESS, FAILED, TIMEDOUT, CANCELED, UPSTREAM_FAILED...
    message: str = ""
    code: str | None = None  # termination_details.code, as sent
    type: str | None = None  # termination_details.type, as sent

    @property
    def over(self) -> bool:
        return self.life_cycle in TERMINAL

    @property
    def shown(self) -> str:
        """The state a person reads: the result once over, else the life cycle."""
        return self.result or self.life_cycle or "UNKNOWN"


@dataclass(frozen=True)
class TaskView:
    task_key: str
    run_id: int | None
    end: RunEnd
    start_time: int | None = None  # epoch ms
    end_time: int | None = None
    run_page_url: str | None = None
    notebook_path: str | None = None
    depends_on: tuple[str, ...] = ()

    @property
    def seconds(self) -> float | None:
        """How long the task ran (start to end), when it ran."""
        if self.start_time and self.end_time and self.end_time >= self.start_time:
            return (self.end_time - self.start_time) / 1000
        return None


@dataclass(frozen=True)
class RunView:
    run_id: int
    end: RunEnd
    run_name: str = ""
    run_page_url: str | None = None
    run_type: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    tasks: tuple[TaskView, ...] = ()
    used_commit: str | None = None  # git_source.git_snapshot.used_commit
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def over(self) -> bool:
        return self.end.over


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def mapping(value: object) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one (a field absent or of a shape the
    reference does not give is read as absent)."""
    return value if isinstance(value, Mapping) else {}


def parse_end(item: Mapping[str, Any]) -> RunEnd:
    """A run's or task run's end from its ``status`` (2.2), falling back to ``state`` (2.1)."""
    status, state = mapping(item.get("status")), mapping(item.get("state"))
    details = mapping(status.get("termination_details"))
    life_cycle = _text(status.get("state")) or _text(state.get("life_cycle_state"))
    old_life_cycle = _text(state.get("life_cycle_state"))
    if life_cycle == "TERMINATED" and old_life_cycle in TERMINAL:
        life_cycle = old_life_cycle  # keeps SKIPPED, INTERNAL_ERROR
    code = _text(details.get("code"))
    result = _text(state.get("result_state"))
    if result is None and code is not None:
        result = _RESULT_OF_CODE.get(code, "FAILED")
    message = _text(details.get("message")) or _text(state.get("state_message")) or ""
    return RunEnd(life_cycle, result, message, code, _text(details.get("type")))


def _task(item: Mapping[str, Any]) -> TaskView:
    notebook = item.get("notebook_task")
    path = notebook.get("notebook_path") if isinstance(notebook, Mapping) else None
    depends = item.get("depends_on") or []
    return TaskView(
        task_key=_text(item.get("task_key")) or "task",
        run_id=_int(item.get("run_id")),
        end=parse_end(item),
        start_time=_int(item.get("start_time")) or None,
        end_time=_int(item.get("end_time")) or None,
        run_page_url=_text(item.get("run_page_url")),
        notebook_path=_text(path),
        depends_on=tuple(
            str(d["task_key"]) for d in depends if isinstance(d, Mapping) and d.get("task_key")
        ),
    )


def parse_run(data: Mapping[str, Any]) -> RunView:
    """A :class:`RunView` from ``runs/get``'s JSON (all task pages already joined)."""
    snapshot = mapping(mapping(data.get("git_source")).get("git_snapshot"))
    tasks = data.get("tasks")
    tasks = tasks if isinstance(tasks, list) else []
    return RunView(
        run_id=_int(data.get("run_id")) or 0,
        end=parse_end(data),
        run_name=_text(data.get("run_name")) or "",
        run_page_url=_text(data.get("run_page_url")),
        run_type=_text(data.get("run_type")),
        start_time=_int(data.get("start_time")) or None,
        end_time=_int(data.get("end_time")) or None,
        tasks=tuple(_task(t) for t in tasks if isinstance(t, Mapping)),
        used_commit=_text(snapshot.get("used_commit")),
        raw=data,
    )


def _platform_end(end: RunEnd) -> str | None:
    """Why a run or task ended by the platform's fault, or None."""
    if (
        end.life_cycle in PLATFORM_LIFE_CYCLES
        or end.code in PLATFORM_CODES
        or end.type in PLATFORM_TYPES
    ):
        what = end.code or end.life_cycle or end.type
        return f"{what}: {end.message}" if end.message else str(what)
    return None


def task_platform_failure(task: TaskView) -> str | None:
    return _platform_end(task.end)


def platform_failure(run: RunView) -> str | None:
    """Why the run (or one of its tasks) ended by the platform's fault (a lost cluster or
    driver, a workspace that stopped, an internal error), or None when it did not."""
    for task in run.tasks:
        reason = _platform_end(task.end)
        if reason is not None:
            return f"task {task.task_key}: {reason}"
    reason = _platform_end(run.end)
    return f"run {run.run_id}: {reason}" if reason is not None else None
