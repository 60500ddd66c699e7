"""The Databricks adapter: the only code outside ``orchestrator.local`` that imports
databricks-sdk. See :class:`DatabricksWorkspace`."""

from __future__ import annotations

from orchestrator.adapters.databricks.values import ActiveRun, DeployItem, Entry
from orchestrator.adapters.databricks.runs import Polling, is_terminal, platform_failure
from orchestrator.adapters.databricks.workspace import (
    DatabricksWorkspace,
    open_workspace,
    preload_sdk,
)

__all__ = [
    "ActiveRun",
    "DatabricksWorkspace",
    "DeployItem",
    "Entry",
    "Polling",
    "is_terminal",
    "open_workspace",
    "platform_failure",
    "preload_sdk",
]
