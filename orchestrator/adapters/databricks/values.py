"""What the Databricks adapter hands to the stages: plain values with no SDK types inside.

The build and cleanup stages reason about these; only :mod:`orchestrator.adapters.databricks`
turns SDK objects into them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = [
    "ActiveRun",
    "DeployItem",
    "Entry",
    "Grant",
    "LoggedModel",
    "RegisteredVersion",
    "TaskOutput",
]


@dataclass(frozen=True)
class Entry:
    """One object in a workspace folder listing."""

    name: str
    is_dir: bool
    modified: datetime | None = None


@dataclass(frozen=True)
class ActiveRun:
    """An active (queued, pending, running) run of a repo's build: the run of the build's job
    (or a run of the repo's job, in earlier versions)."""

    run_id: int
    job_name: str
    repo: str
    build_id: str | None
    build_folder: str | None
    started: datetime | None
    url: str | None = None


@dataclass(frozen=True)
class BuildJob:
    """A build's own job (``build-<repo> <build_id>``, tagged ``managed-by: orchestrator``)."""

    repo: str
    build_id: str
    job_id: int
    created: datetime | None  # the job's created_time
    build_folder: str | None  # the build_folder its tasks are given


@dataclass(frozen=True)
class DeployItem:
    """A local file to import into the workspace: a notebook (with its language) or a file."""

    source: Path
    target: str  # absolute workspace path
    kind: str  # NOTEBOOK or FILE
    language: str | None
    size: int


@dataclass(frozen=True)
class TaskOutput:
    """What ``runs/get-output`` tells of a task run (a notebook task has no ``logs``)."""

    error: str = ""
    error_trace: str | None = None
    result: str | None = None  # the dbutils.notebook.exit value


@dataclass(frozen=True)
class Grant:
    """A principal's permission on a workspace object, and where it comes from."""

    principal: str  # a user name, a group name or a service principal's application id
    kind: str  # "user", "group" or "service_principal"
    level: str  # CAN_READ, CAN_RUN, CAN_EDIT, CAN_MANAGE
    inherited_from: str | None = None  # the object it is inherited from, e.g. /directories/3


@dataclass(frozen=True)
class LoggedModel:
    """A model an MLflow run logged, as a registry takes it: ``source`` is what
    ``model-versions/create`` gets (``models:/<model id>`` for an MLflow 3 logged model, the
    run's artifact URI of the model's folder otherwise); ``label`` names it in messages."""

    run_id: str
    source: str
    label: str
    model_id: str | None = None


@dataclass(frozen=True)
class RegisteredVersion:
    """A model version a build registered: its registry, name, version and page."""

    registry: str
    name: str
    version: str
    url: str
    source: str
    alias: str | None = None
