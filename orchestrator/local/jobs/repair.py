"""``jobs/runs/repair``: which task runs of an ended job run run again, and the run's
``repair_history``.

As the Jobs API documents: a repair re-runs the tasks named by ``rerun_tasks``, or every task
that did not succeed (``rerun_all_failed_tasks``), with the tasks that depend on them when
``rerun_dependent_tasks`` is true (every failed task's dependents failed too, so they are
among the failed ones already). Only a job run that has ended can be repaired; from the second
repair on, ``latest_repair_id`` must name the latest one. The repaired tasks get new task run
ids; the others keep their runs and results. The run's ``repair_history`` (shown by
``runs/get`` with ``include_history``) starts with the ``ORIGINAL`` run and has one ``REPAIR``
item per repair, each with its own task run ids, times and state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from orchestrator.local.jobs.task_graph import dependencies
from orchestrator.local.state.api_error import bad_request, invalid_state
from orchestrator.local.state.records import RunRecord

__all__ = ["HISTORY", "RepairPlan", "history_of", "plan_repair", "set_history"]

#: the private key of a run document holding its repair history (``runs/get`` shows it as
#: ``repair_history`` when asked to)
HISTORY = "_repair_history"
_SUCCEEDED = ("SUCCESS", "EXCLUDED")


def history_of(doc: RunRecord) -> list[dict[str, Any]]:
    """A copy of the run's repair history (empty when it was never repaired)."""
    return [dict(item) for item in cast("dict[str, Any]", doc).get(HISTORY, [])]


def set_history(doc: RunRecord, history: list[dict[str, Any]]) -> None:
    cast("dict[str, Any]", doc)[HISTORY] = history


@dataclass(frozen=True)
class RepairPlan:
    rerun: tuple[str, ...]  # task keys, in the run's order


def plan_repair(doc: RunRecord, params: Mapping[str, Any], *, active: bool) -> RepairPlan:
    """The tasks to run again, or a 400 naming why the run cannot be repaired so."""
    run_id = doc["run_id"]
    if doc.get("job_id") is None:
        raise bad_request(f"Run {run_id} is not a job run: only runs of jobs can be repaired")
    if active:
        raise invalid_state(f"Run {run_id} has not ended: only ended runs can be repaired")
    history = history_of(doc)
    repairs = [h["id"] for h in history if h.get("type") == "REPAIR"]
    latest = params.get("latest_repair_id")
    if repairs and latest is None:
        raise bad_request(
            f"Run {run_id} has been repaired: latest_repair_id must name its latest repair "
            f"({repairs[-1]})"
        )
    if latest is not None and (not repairs or str(latest) != str(repairs[-1])):
        raise bad_request(
            f"latest_repair_id {str(latest)[:50]} is not the latest repair of run {run_id}"
        )
    tasks = doc.get("tasks", [])
    keys = [str(t["task_key"]) for t in tasks]
    named = params.get("rerun_tasks")
    all_failed = bool(params.get("rerun_all_failed_tasks"))
    if named is not None and (
        not isinstance(named, list) or not all(isinstance(k, str) for k in named)
    ):
        raise bad_request("rerun_tasks must be a list of task keys")
    if bool(named) == all_failed:
        raise bad_request("Give either rerun_tasks or rerun_all_failed_tasks")
    if named:
        unknown = sorted(set(named) - set(keys))
        if unknown:
            raise bad_request(f"Task(s) not in run {run_id}: {', '.join(unknown)}")
        chosen = set(named)
    else:
        chosen = {
            str(t["task_key"])
            for t in tasks
            if t.get("state", {}).get("result_state") not in _SUCCEEDED
        }
        if not chosen:
            raise bad_request(f"Run {run_id} has no failed task to repair")
    if params.get("rerun_dependent_tasks"):
        chosen |= _dependents(tasks, chosen)
    return RepairPlan(tuple(k for k in keys if k in chosen))


def _dependents(tasks: Sequence[Mapping[str, Any]], roots: set[str]) -> set[str]:
    """Every task that depends on one of ``roots``, directly or not (no recursion)."""
    below: dict[str, list[str]] = {}
    for key, deps in dependencies(tasks).items():
        for dep in deps:
            below.setdefault(dep, []).append(key)
    found: set[str] = set()
    stack = list(roots)
    while stack:
        for child in below.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found
