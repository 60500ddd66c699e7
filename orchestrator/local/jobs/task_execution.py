"""The contract between the scheduler and what executes a task: :class:`TaskSpec` in,
:class:`TaskOutcome` out, through a :class:`TaskExecutor` (a notebook in a kernel in
production, :mod:`.notebook_tasks`; a fake in the life-cycle tests)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.local.state.records import ResultState, TaskRunRecord

__all__ = ["TaskExecutor", "TaskOutcome", "TaskSpec"]


@dataclass(frozen=True)
class TaskSpec:
    """Everything a task executor needs; ``parameters`` already merged and resolved."""

    run_id: int
    task_run_id: int
    task_key: str
    task: TaskRunRecord
    parameters: dict[str, str]
    timeout_seconds: float | None


@dataclass(frozen=True)
class TaskOutcome:
    result_state: ResultState  # SUCCESS, FAILED, TIMEDOUT, CANCELED
    state_message: str = ""
    output: dict[str, Any] = field(default_factory=dict)


class TaskExecutor(Protocol):
    def __call__(self, spec: TaskSpec, cancel: threading.Event) -> TaskOutcome: ...
