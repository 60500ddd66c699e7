"""The notebook runtime of the local workspace: run one notebook task in a Jupyter kernel.

The run scheduler calls :func:`execute_notebook` once per notebook task run (in a worker
thread). Everything the kernel side needs (``dbutils`` shims, ``%sh``/``%pip`` helpers) is in
the ``_kernel_*`` modules of this package; ``python -m orchestrator.local.runtime.child`` runs
a child notebook for ``dbutils.notebook.run``.
"""

from __future__ import annotations

from orchestrator.local.runtime.executor import execute_notebook
from orchestrator.local.runtime.model import (
    ExecutionRequest,
    NotebookResolver,
    NotebookResult,
    NotebookSource,
    RunStatus,
)
from orchestrator.local.runtime.resolver import NotebookNotFound, make_sqlite_resolver

__all__ = [
    "ExecutionRequest",
    "NotebookNotFound",
    "NotebookResolver",
    "NotebookResult",
    "NotebookSource",
    "RunStatus",
    "execute_notebook",
    "make_sqlite_resolver",
]
