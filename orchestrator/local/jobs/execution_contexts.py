"""The execution contexts of each cluster, bounded as Databricks bounds them.

A Databricks cluster holds at most 150 execution contexts at once; the next notebook attached
to it fails with "Too many execution contexts are open right now. (Limit set to 150)". Every
notebook, Python file or wheel task of a job run takes one on its cluster from the moment it
starts until it ends, and so does every notebook it runs with ``dbutils.notebook.run``.

The service starts every task whose dependencies are done at once, so a job of 200
independent tasks on one cluster opens 200 contexts and some of its tasks fail. The local
workspace runs at most ``max_workers`` notebooks at a time, but it must not be more generous:
a task holds its context from the moment the service would have started it (when it is
dispatched, whether or not a worker slot is free yet), so the same job fails here the same way.
Job clusters are shared by the tasks of one run that name them (``job_cluster_key``); a task's
own ``new_cluster`` is a cluster of its own, which one task never fills.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["CONTEXT_LIMIT", "TOO_MANY_CONTEXTS", "ExecutionContexts", "cluster_of"]

#: execution contexts a cluster holds at once
CONTEXT_LIMIT = 150
#: the service's message when one more is asked for (``ExecutionContexts.refusal``)
TOO_MANY_CONTEXTS = "Too many execution contexts are open right now. (Limit set to {limit})"


def cluster_of(run_id: int, task: Mapping[str, Any]) -> str | None:
    """The cluster a task's context opens on: its existing cluster, its run's job cluster, or
    ``None`` for a cluster of its own (or no cluster: control-flow tasks take no context)."""
    existing = task.get("existing_cluster_id")
    if isinstance(existing, str) and existing:
        return existing
    job_cluster = task.get("job_cluster_key")
    if isinstance(job_cluster, str) and job_cluster:
        return f"run {run_id}/{job_cluster}"
    return None


class ExecutionContexts:
    """Open contexts per cluster, shared by a workspace's jobs engine and its notebook runs."""

    def __init__(self, limit: int = CONTEXT_LIMIT) -> None:
        self.limit = limit
        #: what a task or child that finds no context left fails with
        self.refusal = TOO_MANY_CONTEXTS.format(limit=limit)
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def open(self, cluster: str | None) -> bool:
        """Take a context on ``cluster``; False when it already holds :attr:`limit`."""
        if cluster is None:
            return True
        with self._lock:
            count = self._open.get(cluster, 0)
            if count >= self.limit:
                return False
            self._open[cluster] = count + 1
            return True

    def close(self, cluster: str | None) -> None:
        """Give back a context :meth:`open` took."""
        if cluster is None:
            return
        with self._lock:
            count = self._open.get(cluster, 0) - 1
            if count > 0:
                self._open[cluster] = count
            else:
                self._open.pop(cluster, None)

    def count(self, cluster: str) -> int:
        with self._lock:
            return self._open.get(cluster, 0)
