"""How a run's or a task run's state is written: the 2.1 ``state`` and the 2.2 ``status``.

Both are set together, from one life-cycle state and one result, so they never disagree. The
termination details of an ended run are those the Jobs API documents for its result
(``TerminationCodeCode`` and ``TerminationTypeType``).
"""

from __future__ import annotations

import copy
from typing import TypeVar

from orchestrator.local.state.records import (
    LifeCycleState,
    ResultState,
    RunRecord,
    RunState,
    RunStatus,
    TaskRunRecord,
)
from orchestrator.local.state.store import now_ms

__all__ = ["copy_record", "finish", "set_state"]

_Record = TypeVar("_Record", RunRecord, TaskRunRecord)

#: result state -> (termination code, termination type)
_TERMINATION: dict[str, tuple[str, str]] = {
    "SUCCESS": ("SUCCESS", "SUCCESS"),
    "FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "TIMEDOUT": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "CANCELED": ("USER_CANCELED", "SUCCESS"),
    "UPSTREAM_FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "UPSTREAM_CANCELED": ("USER_CANCELED", "SUCCESS"),
    "MAXIMUM_CONCURRENT_RUNS_REACHED": ("MAX_CONCURRENT_RUNS_EXCEEDED", "CLIENT_ERROR"),
    "INTERNAL_ERROR": ("INTERNAL_ERROR", "INTERNAL_ERROR"),
}
_ENDED: frozenset[LifeCycleState] = frozenset(("TERMINATED", "SKIPPED", "INTERNAL_ERROR"))


def set_state(
    doc: RunRecord | TaskRunRecord,
    life_cycle: LifeCycleState,
    result: ResultState | None = None,
    message: str = "",
) -> None:
    """Set both the 2.1 ``state`` and the 2.2 ``status`` of a run or task run."""
    state: RunState = {
        "life_cycle_state": life_cycle,
        "state_message": message,
        "user_cancelled_or_timedout": result in ("CANCELED", "TIMEDOUT"),
    }
    if result is not None:
        state["result_state"] = result
    doc["state"] = state
    status: RunStatus = {"state": "TERMINATED" if life_cycle in _ENDED else life_cycle}
    if life_cycle == "INTERNAL_ERROR":
        code, kind = "INTERNAL_ERROR", "INTERNAL_ERROR"
        status["termination_details"] = {"code": code, "type": kind, "message": message}
    elif result is not None:
        code, kind = _TERMINATION.get(result, ("INTERNAL_ERROR", "INTERNAL_ERROR"))
        status["termination_details"] = {"code": code, "type": kind, "message": message}
    if life_cycle == "QUEUED":
        status["queue_details"] = {"code": "ACTIVE_RUNS_LIMIT_REACHED", "message": message}
    doc["status"] = status


def finish(doc: RunRecord | TaskRunRecord, result: ResultState, message: str) -> None:
    """End a run or task run now with ``result`` (``INTERNAL_ERROR`` is a life-cycle state)."""
    stamp = now_ms()
    if not doc.get("start_time"):
        doc["start_time"] = stamp
    doc["end_time"] = stamp
    doc["run_duration"] = stamp - doc["start_time"]
    if result == "INTERNAL_ERROR":
        set_state(doc, "INTERNAL_ERROR", "FAILED", message)
    else:
        set_state(doc, "TERMINATED", result, message)


def copy_record(doc: _Record) -> _Record:
    """A deep copy, for a reader outside the scheduler's lock."""
    return copy.deepcopy(doc)
