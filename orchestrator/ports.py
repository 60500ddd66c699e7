"""What the build and cleanup ask of a Databricks workspace: the protocols the adapters implement.

The stages hold a :class:`Workspace`, never the concrete
:class:`~orchestrator.adapters.databricks.DatabricksWorkspace`; tests pass fakes that implement
just the part they exercise (:class:`WorkspaceTree` and :class:`RunControl` for cleanup's
property tests). :class:`LocalAdmin` is what only the local workspace answers (the test counts
its Jobs UI shows); a build against a real workspace has none, so no call of it reaches
Databricks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from orchestrator.adapters.databricks import (
        ActiveRun,
        BuildJob,
        DeployItem,
        Entry,
        Grant,
        LoggedModel,
        Polling,
        RegisteredVersion,
        RunView,
        TaskOutput,
    )
    from orchestrator.adapters.databricks.retries import RetryReporter
    from orchestrator.clock import Clock
    from orchestrator.ratelimit import TokenBucket

__all__ = [
    "BuildWorkspace",
    "LocalAdmin",
    "ModelRegistry",
    "RunControl",
    "Workspace",
    "WorkspaceTree",
]


class WorkspaceTree(Protocol):
    """The workspace's folders and files, as cleanup and the build's markers see them."""

    def list(self, path: str) -> list[Entry] | None:
        """The children of a folder; None when it does not exist."""
        ...

    def read_text(self, path: str) -> str | None:
        """A workspace file's text; None when it does not exist."""
        ...

    def write_text(self, path: str, text: str) -> None:
        """Write a workspace file (creating its folder), replacing any existing one."""
        ...

    def delete(self, path: str) -> bool:
        """Delete a folder recursively; False when it did not exist."""
        ...


class RunControl(Protocol):
    """Active runs of a repo's builds, cancelling them, and deleting a build's job."""

    def active(self, repo: str) -> list[ActiveRun]: ...

    def cancel(self, run_id: int) -> bool:
        """Ask the run to stop; False when it no longer exists."""
        ...

    def wait_ended(self, run_ids: Sequence[int], *, timeout: float) -> set[int]:
        """Wait (at most ``timeout`` seconds) until the runs end; returns those that did."""
        ...

    def build_jobs(self) -> list[BuildJob]:
        """Every build's job in the workspace."""
        ...

    def delete_build_jobs(self, repo: str, build_id: str) -> int:
        """Delete a build's job (found by its name); how many were deleted."""
        ...


class BuildWorkspace(Protocol):
    """The cluster, the build's job and its run, its files, and the build's identity."""

    clock: Clock
    retries: RetryReporter

    def ensure_cluster_running(
        self, cluster_id: str, *, timeout: float, on_wait: Callable[[str], None] | None = None
    ) -> bool: ...

    def create_build_job(self, settings: Mapping[str, Any]) -> tuple[int, str]:
        """The build's own job (made, or found by its name and reset): its id, and
        ``created`` or ``reused``."""
        ...

    def run_build_job(self, job_id: int, *, idempotency_token: str) -> int: ...

    def get_run(self, run_id: int) -> RunView: ...

    def wait_for_run(
        self,
        run_id: int,
        *,
        deadline: float | None,
        polling: Polling = ...,
        on_update: Callable[[RunView], None] | None = None,
    ) -> RunView: ...

    def cancel_run(self, run_id: int) -> RunView | None:
        """Cancel and wait until the run has ended; None if that could not be confirmed."""
        ...

    def find_build_run(self, repo: str, build_id: str) -> int | None:
        """The active run of a build's job, found by the job's name."""
        ...

    def task_output(self, run_id: int) -> TaskOutput: ...

    def export_views(self, run_id: int) -> list[str]: ...

    def deploy(
        self,
        folders: Sequence[str],
        items: Sequence[DeployItem],
        *,
        concurrency: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> None: ...

    def read_text(self, path: str) -> str | None: ...

    def mkdirs(self, path: str) -> None: ...

    def write_file(self, path: str, data: bytes, *, language: str | None = None) -> None: ...

    def delete(self, path: str) -> bool: ...

    def current_user(self) -> str: ...

    def put_dbfs(self, path: str, data: bytes) -> None:
        """A file in DBFS (the local workspace's seed data only)."""
        ...

    def git_credential_providers(self) -> set[str]:
        """The Git providers (lowercase) the build's identity has credentials for."""
        ...

    def add_git_credential(self, provider: str, username: str) -> None: ...

    def create_git_folder(
        self, *, url: str, provider: str, path: str, sparse: Sequence[str] = ()
    ) -> int: ...

    def check_out(self, repo_id: int, *, branch: str) -> str | None:
        """Check a Git folder out at ``branch``; its head commit after that."""
        ...

    def writers(self, path: str) -> list[Grant]: ...

    def restrict(self, path: str, principal: str) -> None: ...


class ModelRegistry(Protocol):
    """MLflow as the build's ``models.register`` step and cleanup's ``models.cleanup_runs``
    use it: the workspace's own MLflow, over its REST API."""

    def job_models(
        self, task_run_ids: Sequence[int], *, experiment: str | None
    ) -> list[LoggedModel]:
        """The models the MLflow runs of these task runs logged (MLflow's tag
        ``mlflow.databricks.jobRunID``), in ``experiment`` or in every experiment."""
        ...

    def log_model_file(
        self, *, experiment: str, file: Path, run_name: str, tags: Mapping[str, str]
    ) -> LoggedModel:
        """``file`` logged as an MLflow model by a run of its own in ``experiment``."""
        ...

    def register_model(
        self,
        *,
        registry: str,
        name: str,
        model: LoggedModel,
        tags: Mapping[str, str],
        alias: str | None,
    ) -> RegisteredVersion:
        """A new, tagged version of ``name`` (``workspace`` or ``unity-catalog`` registry),
        ready, with ``alias`` set on it."""
        ...

    def build_task_runs(self, repo: str, build_id: str) -> list[int]:
        """The task runs of the runs of a build's job."""
        ...

    def delete_mlflow_runs(self, task_run_ids: Sequence[int], *, experiment: str | None) -> int:
        """Delete the MLflow runs these task runs logged, keeping any a model version was
        registered from; how many were deleted."""
        ...


class Workspace(BuildWorkspace, WorkspaceTree, RunControl, ModelRegistry, Protocol):
    """Everything the build, the step commands and cleanup ask of a workspace."""

    #: throttles listing and reading (cleanup's discovery sets one: the service's rate limits)
    read_limiter: TokenBucket | None


class LocalAdmin(Protocol):
    """The local workspace's own API (``/local-admin``), which Databricks does not have."""

    def record_test_counts(
        self,
        run_id: int,
        counts: Mapping[str, int],
        failed: Sequence[Mapping[str, object]] = (),
    ) -> bool:
        """Give the Jobs UI the test counts a build collected for its run, and its failing
        tests (suite, name, message, task_run_id, cell); False when the workspace did not take
        them (never an error: the build's result stands)."""
        ...

    def register_git_source(self, url: str, path: str) -> bool:
        """Tell a workspace on this machine where the repository at ``url`` is checked out
        (it reaches no Git provider); False when it did not take it."""
        ...
