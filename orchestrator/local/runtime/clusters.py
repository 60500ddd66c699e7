"""The local workspace's clusters: configured "clusters" with a life cycle, each with its Spark
engine.

Tasks run in kernels on this machine; a cluster has a state so clients can exercise their
checks (the Clusters API, :mod:`orchestrator.local.api.clusters_api`, reads and drives it):
``start`` (PENDING, then RUNNING), ``terminate``. Jobs whose cluster is terminated start it and
wait, as on the service.

With ``spark_state_dir`` and the ``orchestrator[spark]`` extra installed, each cluster has a
Spark engine (:mod:`.spark_engines`): ``start`` starts it, so PENDING lasts for the engine's
real start (at least ``start_delay``); ``terminate`` and :meth:`Clusters.close` stop it. A
cluster RUNNING from the start gets its engine when a run first uses it
(:meth:`Clusters.wait_running`), in the background; kernels wait for its endpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.local.runtime.spark_locations import DEFAULT_CLUSTER_ID
from orchestrator.local.state.api_error import ApiError, bad_request, invalid_state
from orchestrator.local.state.store import now_ms

if TYPE_CHECKING:
    from collections.abc import Callable

    from orchestrator.local.runtime.spark_engines import SparkEngines

__all__ = ["DEFAULT_CLUSTER_ID", "ClusterSpec", "Clusters"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterSpec:
    cluster_id: str = DEFAULT_CLUSTER_ID
    cluster_name: str = "Local cluster"
    state: str = "RUNNING"  # initial state: RUNNING or TERMINATED


class Clusters:
    def __init__(
        self,
        specs: tuple[ClusterSpec, ...],
        *,
        start_delay: float,
        spark_state_dir: Path | None = None,
    ) -> None:
        self.start_delay = start_delay
        self.engines: SparkEngines | None = None
        if spark_state_dir is not None:
            from orchestrator.local.runtime.spark_engines import SparkEngines, engine_available

            if engine_available():
                self.engines = SparkEngines(spark_state_dir)
        self._cond = threading.Condition()
        #: called (without arguments, must return at once) whenever a RUNNING cluster is read
        #: or comes up: the workspace warms its kernel pool then, before runs need kernels
        self.on_running: Callable[[], None] | None = None
        self._clusters: dict[str, dict[str, Any]] = {}
        stamp = now_ms()
        for spec in specs:
            self._clusters[spec.cluster_id] = {
                "cluster_id": spec.cluster_id,
                "cluster_name": spec.cluster_name,
                "state": spec.state,
                "state_message": "",
                "spark_version": "15.4.x-scala2.12",
                "node_type_id": "local",
                "driver_node_type_id": "local",
                "num_workers": 0,
                "cluster_source": "UI",
                "creator_user_name": "local",
                "start_time": stamp,
                "data_security_mode": "SINGLE_USER",
                "spark_conf": {"spark.master": "local[*]"},
            }

    def exists(self, cluster_id: str) -> bool:
        with self._cond:
            return cluster_id in self._clusters

    def state(self, cluster_id: str) -> str:
        with self._cond:
            return str(self._clusters[cluster_id]["state"])

    def _info(self, cluster_id: str) -> dict[str, Any]:
        cluster = self._clusters.get(cluster_id)
        if cluster is None:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Cluster {cluster_id} does not exist")
        return cluster

    def info(self, cluster_id: str) -> dict[str, Any]:
        """A copy of the cluster's document (``clusters/get``); a RUNNING one warms the pool."""
        with self._cond:
            info = dict(self._info(cluster_id))
        if info["state"] == "RUNNING":
            self._notify_running()
        return info

    def infos(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(c) for c in self._clusters.values()]

    def request_start(self, cluster_id: str) -> None:
        """``clusters/start``: only a TERMINATED (or starting) cluster may be started."""
        with self._cond:
            state = self._info(cluster_id)["state"]
            if state not in ("TERMINATED", "PENDING"):
                raise invalid_state(f"Cluster {cluster_id} is in unexpected state {state}.")
        self.start(cluster_id)

    def terminate(self, cluster_id: str) -> None:
        """``clusters/delete``: TERMINATED at once; its Spark engine stops."""
        with self._cond:
            cluster = self._info(cluster_id)
            cluster["state"] = "TERMINATED"
            cluster["state_message"] = "Terminated by user"
            cluster["terminated_time"] = now_ms()
            self._cond.notify_all()
        if self.engines is not None:
            self.engines.stop(cluster_id)

    def _notify_running(self) -> None:
        if self.on_running is not None:
            self.on_running()

    def start(self, cluster_id: str) -> None:
        """TERMINATED -> PENDING -> (after the start delay) RUNNING. Idempotent while PENDING."""
        with self._cond:
            cluster = self._info(cluster_id)
            if cluster["state"] != "TERMINATED":
                return
            cluster["state"] = "PENDING"
            cluster["state_message"] = "Starting local cluster"

        def finish() -> None:
            started = time.monotonic()
            self._start_engine(cluster_id)
            time.sleep(max(0.0, self.start_delay - (time.monotonic() - started)))
            with self._cond:
                if cluster["state"] == "PENDING":
                    cluster["state"] = "RUNNING"
                    cluster["state_message"] = ""
                    cluster["start_time"] = now_ms()
                self._cond.notify_all()
            self._notify_running()

        thread = threading.Thread(target=finish, name=f"cluster-start-{cluster_id}", daemon=True)
        thread.start()

    def _start_engine(self, cluster_id: str) -> None:
        if self.engines is None:
            return
        from orchestrator.local.runtime.spark_engines import SparkEngineError

        try:
            self.engines.start(cluster_id)
        except SparkEngineError as exc:
            log.warning("cluster %s starts without Spark: %s", cluster_id, exc)

    def ensure_engine(self, cluster_id: str | None) -> None:
        """Start a cluster's Spark engine in the background if it does not run. Tasks on job
        or serverless compute (``None``) use the engine of the default cluster id."""
        if self.engines is not None:
            self.engines.start_in_background(cluster_id or DEFAULT_CLUSTER_ID)

    def begin_close(self) -> None:
        """Tell every cluster's Spark engine to end, without waiting (:meth:`close` waits)."""
        if self.engines is not None:
            self.engines.signal_stop_all()

    def close(self) -> None:
        """Stop every cluster's Spark engine (the workspace is stopping)."""
        if self.engines is not None:
            self.engines.stop_all()

    def wait_running(self, cluster_id: str, cancel: threading.Event) -> bool:
        """Start the cluster if needed and wait until RUNNING; False when cancelled."""
        if not self.exists(cluster_id):
            raise bad_request(f"Cluster {cluster_id} does not exist")
        self.start(cluster_id)
        deadline = time.monotonic() + self.start_delay + 600
        with self._cond:
            while self._clusters[cluster_id]["state"] != "RUNNING":
                if cancel.is_set() or time.monotonic() > deadline:
                    return False
                if self._clusters[cluster_id]["state"] == "TERMINATED":
                    self._cond.release()
                    try:
                        self.start(cluster_id)
                    finally:
                        self._cond.acquire()
                self._cond.wait(0.05)
        self._notify_running()
        if self.engines is not None:
            self.engines.start_in_background(cluster_id)
        return True
