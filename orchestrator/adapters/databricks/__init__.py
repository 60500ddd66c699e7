"""The Databricks adapter: the only code outside ``orchestrator.local`` that imports
databricks-sdk. See :class:`DatabricksWorkspace`."""

from __future__ import annotations

from orchestrator.adapters.databricks.run_views import (
    PLATFORM_CODES,
    RunEnd,
    RunView,
    TaskView,
    parse_run,
    platform_failure,
    task_platform_failure,
)
from orchestrator.adapters.databricks.runs import Polling
from orchestrator.adapters.databricks.values import (
    ActiveRun,
    BuildJob,
    DeployItem,
    Entry,
    Grant,
    LoggedModel,
    RegisteredVersion,
    TaskOutput,
)
from orchestrator.adapters.databricks.workspace import (
    DatabricksWorkspace,
    open_workspace,
    preload_sdk,
)

__all__ = [
    "PLATFORM_CODES",
    "ActiveRun",
    "BuildJob",
    "DatabricksWorkspace",
    "DeployItem",
    "Entry",
    "Grant",
    "LoggedModel",
    "Polling",
    "RegisteredVersion",
    "RunEnd",
    "RunView",
    "TaskOutput",
    "TaskView",
    "open_workspace",
    "parse_run",
    "platform_failure",
    "preload_sdk",
    "task_platform_failure",
]
