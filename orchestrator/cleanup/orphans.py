"""Active runs of the repos' build jobs (``build-<repo>``), and cancelling them, as cleanup
sees them: the :class:`RunControl` interface.

The Databricks adapter (:class:`~orchestrator.adapters.databricks.DatabricksWorkspace`)
implements it over the Jobs API; tests pass a fake. Jobs are found by exact name and only read:
their definitions are never changed. Which runs are orphans is decided by
:func:`orchestrator.cleanup.policy.select_orphans`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from orchestrator.adapters.databricks.model import ActiveRun

__all__ = ["RunControl"]


class RunControl(Protocol):
    """Active runs of a repo's build job, and cancelling them."""

    def active(self, repo: str) -> list[ActiveRun]: ...

    def cancel(self, run_id: int) -> bool:
        """Ask the run to stop; False when it no longer exists."""
        ...

    def wait_ended(self, run_ids: Sequence[int], *, timeout: float) -> set[int]:
        """Wait (at most ``timeout`` seconds) until the runs end; returns those that did."""
        ...
