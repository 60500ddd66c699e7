"""The local workspace as a process: its assembly (:mod:`.local_workspace`), the HTTP listener
(:mod:`.listener`, with :mod:`.framing`, :mod:`.connections` and :mod:`.host_check`), fault
injection (:mod:`.faults`) and ``/local-admin`` (:mod:`.admin`).

The names a caller needs to start one are re-exported here; ``orchestrator.services`` is the
only module of the rest of the package that imports them.
"""

from __future__ import annotations

from orchestrator.local.runtime.clusters import ClusterSpec
from orchestrator.local.server.connections import ConnectionLimits
from orchestrator.local.server.faults import FaultSettings
from orchestrator.local.server.local_workspace import (
    LocalWorkspace,
    LocalWorkspaceSettings,
    ServicePrincipal,
    start_local_workspace,
    temporary_workspace,
)

__all__ = [
    "ClusterSpec",
    "ConnectionLimits",
    "FaultSettings",
    "LocalWorkspace",
    "LocalWorkspaceSettings",
    "ServicePrincipal",
    "start_local_workspace",
    "temporary_workspace",
]
