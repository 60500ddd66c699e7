"""Active runs of the repos' build jobs (``build-<repo>``), and cancelling them.

Cleanup reads the runs through :class:`RunControl` (tests pass a fake); :class:`SdkRuns` is the
databricks-sdk implementation. Jobs are found by exact name and only read: their definitions
are never changed. Which runs are orphans is decided by :func:`orchestrator.retention.
select_orphans`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from orchestrator.adapters import databricks_jobs as jobs
from orchestrator.adapters.databricks_jobs import sdk_errors
from orchestrator.cleanup.policy import ActiveRun
from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import InfrastructureError, TimeoutExpired

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.jobs import BaseRun

__all__ = ["RunControl", "SdkRuns", "job_name"]


def job_name(repo: str) -> str:
    """The name of a repo's job, as ``orchestrator build`` creates it."""
    return f"build-{repo}"


class RunControl(Protocol):
    """Active runs of a repo's build job, and cancelling them."""

    def active(self, repo: str) -> list[ActiveRun]: ...

    def cancel(self, run_id: int) -> bool:
        """Ask the run to stop; False when it no longer exists."""
        ...

    def wait_ended(self, run_ids: Sequence[int], *, timeout: float) -> set[int]:
        """Wait (at most ``timeout`` seconds) until the runs end; returns those that did."""
        ...


def _parameter(run: BaseRun, name: str) -> str | None:
    for p in run.job_parameters or []:
        if p.name == name:
            value = p.value if p.value is not None else p.default
            return value or None
    return None


class SdkRuns:
    """:class:`RunControl` over databricks-sdk."""

    def __init__(self, client: WorkspaceClient, *, clock: Clock | None = None) -> None:
        self.client = client
        self.clock = clock or SystemClock()

    def active(self, repo: str) -> list[ActiveRun]:
        name = job_name(repo)
        with sdk_errors(f"listing active runs of {name}"):
            job_ids = sorted(
                j.job_id
                for j in self.client.jobs.list(name=name)
                if j.job_id is not None and j.settings is not None and j.settings.name == name
            )
            found = [
                run
                for job_id in job_ids
                for run in self.client.jobs.list_runs(job_id=job_id, active_only=True)
            ]
        out = []
        for run in found:
            if run.run_id is None:
                continue
            started = datetime.fromtimestamp(run.start_time / 1000, UTC) if run.start_time else None
            out.append(
                ActiveRun(
                    int(run.run_id),
                    name,
                    repo,
                    _parameter(run, "build_id"),
                    _parameter(run, "build_folder"),
                    started,
                    run.run_page_url,
                )
            )
        return out

    def cancel(self, run_id: int) -> bool:
        from databricks.sdk.errors import NotFound

        with sdk_errors(f"cancelling run {run_id}"):
            try:
                self.client.jobs.cancel_run(run_id)
            except NotFound:
                return False
        return True

    def wait_ended(self, run_ids: Sequence[int], *, timeout: float) -> set[int]:
        deadline = self.clock.monotonic() + timeout
        ended: set[int] = set()
        for run_id in run_ids:
            try:
                jobs.wait_for_run(
                    self.client,
                    run_id,
                    deadline=deadline,
                    clock=self.clock,
                    polling=jobs.Polling(0.25, 1.5, 2.0),
                )
            except TimeoutExpired:
                continue  # not confirmed before the deadline
            except InfrastructureError as exc:
                from databricks.sdk.errors import NotFound

                if not isinstance(exc.__cause__, NotFound):
                    continue  # gone counts as ended; anything else is not confirmed
            ended.add(run_id)
        return ended
