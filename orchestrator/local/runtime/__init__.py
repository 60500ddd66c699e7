"""The notebook runtime of the local workspace: run one notebook task in a Jupyter kernel.

The run scheduler calls :func:`execute_notebook` once per notebook task run (in a worker
thread). Everything the kernel side needs (``dbutils`` shims, ``%sh``/``%pip`` helpers) is in
the ``_kernel_*`` modules of this package; :mod:`.children` runs the child notebooks of
``dbutils.notebook.run`` and :mod:`.pool` keeps kernels warm.

The names below are imported on first access (module ``__getattr__``): every notebook kernel
imports ``orchestrator.local.runtime._kernel_dbutils``, which runs this ``__init__`` first,
and the kernel must not pay for importing the executor.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Where each public name of the package is defined.
_LAZY_NAMES = {
    "ExecutionRequest": "model",
    "NotebookNotFound": "resolver",
    "NotebookResolver": "model",
    "NotebookResult": "model",
    "NotebookSource": "model",
    "RunStatus": "model",
    "execute_notebook": "executor",
    "make_sqlite_resolver": "resolver",
}


def __getattr__(name: str) -> Any:
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
