"""The values of a cleanup: its options, its plan, what it deleted and its report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from orchestrator.adapters.databricks.values import ActiveRun
from orchestrator.cleanup.policy import DataDecision, Decision, Policy
from orchestrator.errors import EXIT_INFRA, EXIT_OK
from orchestrator.signals import BuildCancelled

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_DELETE_RATE",
    "CleanupOptions",
    "CleanupPlan",
    "CleanupReport",
    "DataDeleted",
    "Deleted",
]

#: Workspace deletes per second. Databricks' resource-limits page lists 2 requests per second
#: per workspace for the Workspace API's delete (import 30/s, list 50/s, export 60/s); staying
#: at it leaves the SDK's 429 retries as a backstop rather than the mechanism.
DEFAULT_DELETE_RATE = 2.0
DEFAULT_CONCURRENCY = 16


@dataclass(frozen=True)
class CleanupOptions:
    policy: Policy
    repos: tuple[str, ...] = ()  # empty: every repo under the build root and the storage root
    dry_run: bool = False
    rate: float | None = DEFAULT_DELETE_RATE  # workspace deletes per second; None: no limit
    concurrency: int = DEFAULT_CONCURRENCY
    cancel_timeout: float = 120.0  # seconds to wait for cancelled runs to end
    #: ``models.cleanup_runs``: delete the MLflow runs a deleted build's task runs logged
    #: (never one a model version was registered from), searched in ``mlflow_experiment`` or
    #: in every experiment
    mlflow_runs: bool = False
    mlflow_experiment: str | None = None


@dataclass(frozen=True)
class CleanupPlan:
    root: str
    storage_root: str
    decisions: tuple[Decision, ...]
    orphans: tuple[tuple[ActiveRun, str], ...]
    journals: Mapping[str, frozenset[str]]
    notes: tuple[str, ...] = ()
    data: tuple[DataDecision, ...] = ()  # the shared test data (empty with --repo)
    data_journal: frozenset[str] = frozenset()

    def of(self, action: str) -> list[Decision]:
        return [d for d in self.decisions if d.action == action]

    def data_of(self, action: str) -> list[DataDecision]:
        return [d for d in self.data if d.action == action]


@dataclass(frozen=True)
class Deleted:
    """What happened to one selected build."""

    repo: str
    build_id: str
    folder: bool = False  # the workspace folder was deleted now
    prefix: bool = False  # the storage prefix was deleted now
    bytes: int = 0
    error: str | None = None
    job: bool = False  # the build's job was deleted now
    mlflow_runs: int = 0  # MLflow runs of the build's task runs deleted now

    @property
    def done(self) -> bool:
        """Nothing of the build is left (deleted now, or already gone)."""
        return self.error is None


@dataclass(frozen=True)
class DataDeleted:
    """What happened to one selected ``_data/<digest>`` copy."""

    digest: str
    deleted: bool = False  # deleted now (False: already gone, or kept after all)
    bytes: int = 0
    kept: str | None = None  # why it was left after all (used since the plan was made)
    error: str | None = None

    @property
    def done(self) -> bool:
        """Nothing is left to do for it (deleted, gone, or in use again)."""
        return self.error is None


@dataclass(frozen=True)
class CleanupReport:
    plan: CleanupPlan
    dry_run: bool
    deleted: tuple[Deleted, ...] = ()
    cancelled: tuple[int, ...] = ()
    unconfirmed: tuple[int, ...] = ()  # cancel sent, end not seen in time
    errors: tuple[str, ...] = ()
    seconds: float = 0.0
    interrupted: BuildCancelled | None = field(default=None, compare=False)
    data_deleted: tuple[DataDeleted, ...] = ()

    @property
    def folders_deleted(self) -> int:
        return sum(d.folder for d in self.deleted)

    @property
    def prefixes_deleted(self) -> int:
        return sum(d.prefix for d in self.deleted)

    @property
    def data_copies_deleted(self) -> int:
        return sum(d.deleted for d in self.data_deleted)

    @property
    def bytes_freed(self) -> int:
        return sum(d.bytes for d in self.deleted) + sum(d.bytes for d in self.data_deleted)

    @property
    def exit_code(self) -> int:
        if self.interrupted is not None:
            return self.interrupted.exit_code
        return EXIT_INFRA if self.errors else EXIT_OK
