"""``orchestrator cleanup`` as a library call: from the command's flags to a finished report.

:func:`run_cleanup_command` checks the flags, loads the target's configuration (found as
``orchestrator build`` finds it), assembles the retention policy and runs
:func:`run_cleanup` against the configured workspace and storage. The CLI only parses arguments
and prints the report (:mod:`orchestrator.cleanup.report`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from orchestrator.cleanup.discovery import DEFAULT_READ_BURST, DEFAULT_READ_RATE
from orchestrator.cleanup.execute import cleanup
from orchestrator.cleanup.model import (
    DEFAULT_CONCURRENCY,
    DEFAULT_DELETE_RATE,
    CleanupOptions,
    CleanupReport,
)
from orchestrator.cleanup.policy import Policy, check_storage_root, check_workspace_root, parse_age
from orchestrator.config.loader import load_config
from orchestrator.config.schema import BuildConfig
from orchestrator.errors import UsageError
from orchestrator.layout import HOME, is_build_name, resolve_home
from orchestrator.ratelimit import TokenBucket
from orchestrator.services import open_services

__all__ = ["CleanupRequest", "default_orphan_after", "run_cleanup_command"]


@dataclass(frozen=True)
class CleanupRequest:
    """The ``orchestrator cleanup`` flags, as given (None: the default)."""

    config_path: Path | None = None
    target: str | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)
    repos: tuple[str, ...] = ()
    older_than: str | None = None
    keep_last: int | None = None
    include_unmarked: bool = False
    orphan_after: str | None = None
    orphan_sweep: bool = True
    dry_run: bool = False
    rate: float | None = None
    concurrency: int | None = None


def run_cleanup_command(
    request: CleanupRequest,
    *,
    environ: Mapping[str, str],
    cwd: Path,
    on_event: Callable[[str], None] | None = None,
) -> CleanupReport:
    """Check the flags (before the config, so a flag error is named first), then clean up."""
    for name in request.repos:
        if not is_build_name(name):
            raise UsageError(f"--repo {name!r}: not a repo name (letters, digits, '.', '_', '-')")
    rate = DEFAULT_DELETE_RATE if request.rate is None else request.rate
    concurrency = DEFAULT_CONCURRENCY if request.concurrency is None else request.concurrency
    if rate < 0 or concurrency < 1:
        raise UsageError("--rate must be 0 or more and --concurrency at least 1")
    older_than = parse_age(request.older_than, flag="--older-than") if request.older_than else None
    Policy(older_than=older_than, keep_last=request.keep_last)  # flag errors first
    config = load_config(
        request.config_path,
        target=request.target,
        overrides=request.overrides,
        environ=environ,
        cwd=cwd,
    )
    if not request.orphan_sweep:
        orphan_after = None
    elif request.orphan_after:
        orphan_after = parse_age(request.orphan_after, flag="--orphan-after")
    else:
        orphan_after = default_orphan_after(config)
    policy = Policy(
        older_than=older_than,
        keep_last=request.keep_last,
        include_unmarked=request.include_unmarked,
        orphan_after=orphan_after,
    )
    options = CleanupOptions(
        policy,
        repos=request.repos,
        dry_run=request.dry_run,
        rate=rate or None,
        concurrency=concurrency,
        mlflow_runs=config.models.cleanup_runs,
        mlflow_experiment=_job_experiment(config),
    )
    # checked before any remote call; a root under ``~`` again once the user is known
    check_workspace_root(resolve_home(config.build_root, "user@example.com"))
    storage_root = check_storage_root(config.storage.root, repo_root=config.root)
    with open_services(config, environ=environ) as (conn, storage):
        conn.workspace.read_limiter = TokenBucket(DEFAULT_READ_RATE, burst=DEFAULT_READ_BURST)
        root = config.build_root
        if root == HOME or root.startswith(HOME + "/"):
            root = resolve_home(root, conn.workspace.current_user())
        root = check_workspace_root(root)
        return cleanup(
            tree=conn.workspace,
            storage=storage,
            runs=conn.workspace,
            root=root,
            storage_root=storage_root,
            options=options,
            on_event=on_event,
            models=conn.workspace,
        )


def _job_experiment(config: BuildConfig) -> str | None:
    """Where the notebooks' MLflow runs are, when ``models.register`` says so (``source:
    job`` with an ``experiment``); None: every experiment."""
    register = config.models.register_
    return register.experiment if register is not None and register.source == "job" else None


def default_orphan_after(config: BuildConfig) -> timedelta:
    """6 hours, or twice the longest a build may legitimately take when that is longer."""
    longest = timedelta(seconds=config.timeouts.build + config.timeouts.cluster_start)
    return max(timedelta(hours=6), 2 * longest)
