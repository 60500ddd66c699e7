"""What the Databricks adapter hands to the stages: plain values with no SDK types inside.

The build and cleanup stages reason about these; only :mod:`orchestrator.adapters.databricks`
turns SDK objects into them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["ActiveRun", "DeployItem", "Entry"]


@dataclass(frozen=True)
class Entry:
    """One object in a workspace folder listing."""

    name: str
    is_dir: bool
    modified: datetime | None = None


@dataclass(frozen=True)
class ActiveRun:
    """An active (queued, pending, running) run of a repo's build job."""

    run_id: int
    job_name: str
    repo: str
    build_id: str | None
    build_folder: str | None
    started: datetime | None
    url: str | None = None


@dataclass(frozen=True)
class DeployItem:
    """A local file to import into the workspace: a notebook (with its language) or a file."""

    source: Path
    target: str  # absolute workspace path
    kind: str  # NOTEBOOK or FILE
    language: str | None
    size: int
