"""A run's tasks as a graph: dependencies, cycles, what ``run_if`` makes of a task, a run's result.

Graphs are walked without recursion, so a chain of 1,000 tasks (the service's limit) is as
safe as one of two.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from orchestrator.local.state.api_error import bad_request
from orchestrator.local.state.records import ResultState

__all__ = ["blocked_by", "check_acyclic", "dependencies", "run_result"]


def dependencies(tasks: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """``task_key -> the task keys it depends on``, for tasks already validated."""
    return {
        str(t["task_key"]): [str(d["task_key"]) for d in t.get("depends_on") or []] for t in tasks
    }


def check_acyclic(deps: Mapping[str, Sequence[str]]) -> None:
    """400 naming the cycle when the tasks' dependencies form one (of any length)."""
    done: set[str] = set()
    for root in deps:
        if root in done:
            continue
        # an explicit stack of (task, index of its next dependency): depth-first, no recursion
        trail: list[str] = [root]
        on_trail = {root}
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            key, index = stack[-1]
            if index == len(deps[key]):
                stack.pop()
                trail.pop()
                on_trail.discard(key)
                done.add(key)
                continue
            stack[-1] = (key, index + 1)
            dep = deps[key][index]
            if dep in on_trail:
                cycle = [*trail[trail.index(dep) :], dep]
                if len(cycle) > 12:  # a long one named by its ends, the message stays short
                    cycle = [*cycle[:6], f"... ({len(cycle) - 1} tasks) ...", *cycle[-5:]]
                raise bad_request(f"Task dependencies form a cycle: {' -> '.join(cycle)}")
            if dep not in done:
                trail.append(dep)
                on_trail.add(dep)
                stack.append((dep, 0))


def blocked_by(run_if: str, upstream: Sequence[str]) -> ResultState | None:
    """The result a task gets without running, per its ``run_if`` condition; None to run it."""
    ok = [r == "SUCCESS" for r in upstream]
    if run_if == "ALL_DONE":
        return None
    if run_if == "AT_LEAST_ONE_SUCCESS":
        return None if any(ok) or not upstream else "UPSTREAM_FAILED"
    if run_if == "NONE_FAILED":
        return None if all(r in ("SUCCESS", "EXCLUDED") for r in upstream) else "UPSTREAM_FAILED"
    if run_if == "ALL_FAILED":
        return None if not any(ok) else "EXCLUDED"
    if run_if == "AT_LEAST_ONE_FAILED":
        return None if not all(ok) else "EXCLUDED"
    if all(ok):
        return None
    return "UPSTREAM_CANCELED" if "CANCELED" in upstream else "UPSTREAM_FAILED"


def run_result(results: Iterable[str], *, cancelled: bool, timed_out: bool) -> ResultState:
    """A run's result from its tasks' results."""
    if timed_out:
        return "TIMEDOUT"
    if cancelled:
        return "CANCELED"
    ended = set(results)
    if ended <= {"SUCCESS", "EXCLUDED"}:
        return "SUCCESS"
    if ended & {"FAILED", "UPSTREAM_FAILED", "INTERNAL_ERROR"}:
        return "FAILED"
    if "TIMEDOUT" in ended:
        return "TIMEDOUT"
    return "FAILED"
