"""The local Databricks-compatible workspace: Workspace, Jobs, Clusters, Secrets APIs over HTTP,
notebook tasks executed in Jupyter kernels on this machine.

The rest of the package uses only :func:`start_local_workspace` from here.
"""

from __future__ import annotations

from orchestrator.local.clusters import ClusterSpec
from orchestrator.local.faults import FaultSettings
from orchestrator.local.server import (
    LocalWorkspace,
    LocalWorkspaceSettings,
    start_local_workspace,
    temporary_workspace,
)

__all__ = [
    "ClusterSpec",
    "FaultSettings",
    "LocalWorkspace",
    "LocalWorkspaceSettings",
    "start_local_workspace",
    "temporary_workspace",
]
