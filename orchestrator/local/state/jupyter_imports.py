"""The Jupyter packages (jupyter_client, nbformat, nbconvert), imported by one thread at a time.

They are imported lazily (``orchestrator[local]`` is an extra, and their first import takes
0.3-1.5 s), from several threads of the workspace: the kernel pool's launchers, the task that
warms the exporter, a run's executor. They import each other (nbconvert imports nbclient, which
imports jupyter_client), and CPython's per-module import locks do not make such overlapping
first imports safe: a thread may find a package another thread is still initializing missing
from ``sys.modules`` (``KeyError: 'jupyter_client'`` from importlib, seen when the pool's first
kernel start met the first task's exporter warm-up, and the pool's thread died with it). Every
lazy import of them goes through :func:`jupyter_module`, which takes one process-wide lock; once
a module is imported it is a dictionary lookup under an uncontended lock.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType

__all__ = ["jupyter_module"]

_LOCK = threading.RLock()


def jupyter_module(name: str) -> ModuleType:
    """``importlib.import_module(name)``, serialized with every other such import."""
    with _LOCK:
        return importlib.import_module(name)
