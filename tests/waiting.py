"""The suite's one way to wait: for a condition, and for a run to be running.

Both poll with a deadline and never sleep a fixed time before asserting, so a slow machine
makes a test slower, not wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["running_run", "wait_until"]


def wait_until(
    condition: Callable[[], object], timeout: float = 60.0, interval: float = 0.05
) -> bool:
    """Poll ``condition`` until it is true (True) or ``timeout`` seconds pass (its last value,
    as a bool)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


def running_run(client: Any, *, run_id: int | None = None, timeout: float = 60.0) -> int:
    """The id of a run (``run_id``, or any active one) with a task RUNNING, through an SDK
    ``WorkspaceClient``; AssertionError when none is within ``timeout``."""
    from databricks.sdk.service import jobs

    def running(run: Any) -> bool:
        return any(
            t.state is not None and t.state.life_cycle_state == jobs.RunLifeCycleState.RUNNING
            for t in run.tasks or []
        )

    found: list[int] = []

    def look() -> bool:
        candidates = (
            [client.jobs.get_run(run_id)]
            if run_id is not None
            else client.jobs.list_runs(active_only=True, expand_tasks=True)
        )
        found[:] = [int(r.run_id) for r in candidates if running(r)]
        return bool(found)

    if not wait_until(look, timeout=timeout, interval=0.1):
        raise AssertionError(f"run {run_id} did not start" if run_id else "no run started")
    return found[0]
