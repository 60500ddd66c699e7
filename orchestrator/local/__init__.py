"""The local Databricks-compatible workspace: Workspace, Jobs, Clusters, Secrets APIs over HTTP,
notebook tasks executed in Jupyter kernels on this machine.

The rest of the package uses only :func:`start_local_workspace` and :func:`prune_state_dir` from
here. Names are imported on first use: every notebook kernel imports
``orchestrator.local.runtime``, and loading the server there would only slow each kernel's start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.local.clusters import ClusterSpec
    from orchestrator.local.faults import FaultSettings
    from orchestrator.local.retention import PruneReport, Retention, prune_state_dir
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
    "PruneReport",
    "Retention",
    "prune_state_dir",
    "start_local_workspace",
    "temporary_workspace",
]

_HOME = {
    "ClusterSpec": "orchestrator.local.clusters",
    "FaultSettings": "orchestrator.local.faults",
    "LocalWorkspace": "orchestrator.local.server",
    "LocalWorkspaceSettings": "orchestrator.local.server",
    "PruneReport": "orchestrator.local.retention",
    "Retention": "orchestrator.local.retention",
    "prune_state_dir": "orchestrator.local.retention",
    "start_local_workspace": "orchestrator.local.server",
    "temporary_workspace": "orchestrator.local.server",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator.local' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
