"""The contract between the scheduler and what executes a task: :class:`TaskSpec` in,
:class:`TaskOutcome` out, through a :class:`TaskExecutor` (a notebook in a kernel in
production, :mod:`.notebook_tasks`; a fake in the life-cycle tests)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.local.state.records import ResultState, TaskRunRecord
from orchestrator.local.state.redaction import redact, redact_json

__all__ = ["TaskExecutor", "TaskOutcome", "TaskSpec", "masked"]


@dataclass(frozen=True)
class TaskSpec:
    """Everything a task executor needs; ``parameters`` already merged and resolved."""

    run_id: int
    task_run_id: int
    task_key: str
    task: TaskRunRecord
    parameters: dict[str, str]
    timeout_seconds: float | None
    #: the run's job (None for a one-time run of ``runs/submit``)
    job_id: int | None = None


@dataclass(frozen=True)
class TaskOutcome:
    result_state: ResultState  # SUCCESS, FAILED, TIMEDOUT, CANCELED
    state_message: str = ""
    output: dict[str, Any] = field(default_factory=dict)


def masked(outcome: TaskOutcome, secrets: Sequence[str]) -> TaskOutcome:
    """``outcome`` with the secret values masked in its message and output (the exit value,
    the error and its trace), before anything records it (``state/redaction.py``)."""
    if not secrets:
        return outcome
    return TaskOutcome(
        outcome.result_state,
        redact(outcome.state_message, secrets),
        redact_json(outcome.output, secrets),
    )


class TaskExecutor(Protocol):
    def __call__(self, spec: TaskSpec, cancel: threading.Event) -> TaskOutcome: ...
