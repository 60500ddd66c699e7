"""The local workspace's clusters: engine configurations with a life cycle, each with its Spark
engine.

Tasks run in kernels on this machine; a cluster is a configuration of how they run (its
runtime profile, its Spark engine, its environment variables) with the service's life cycle,
so clients exercise their checks (the Clusters API, :mod:`orchestrator.local.api.clusters_api`,
reads and drives it): PENDING -> RUNNING on ``create`` and ``start``, RESTARTING and RESIZING
back to RUNNING, TERMINATING -> TERMINATED on ``delete``, gone on ``permanent-delete``. Each
change is an event (``clusters/events``). Jobs whose cluster is terminated start it and wait,
as on the service.

The clusters of the workspace's settings (:class:`ClusterSpec`) are made at every start;
clusters created through the API are kept in the state database and come back TERMINATED
after a restart, as a cluster does when its workspace's machines went away.

With ``spark_state_dir`` and the ``orchestrator[spark]`` extra installed, each cluster has a
Spark engine (:mod:`.spark_engines`): starting the cluster starts it, so PENDING lasts for the
engine's real start (at least ``start_delay``); terminating stops it, as does
:meth:`Clusters.close`. A cluster RUNNING from the start gets its engine when a run first uses
it (:meth:`Clusters.wait_running`), in the background; kernels wait for its endpoint.
"""

from __future__ import annotations

import copy
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.local.runtime.node_types import LOCAL_NODE_TYPE
from orchestrator.local.runtime.spark_locations import DEFAULT_CLUSTER_ID
from orchestrator.local.runtime.spark_versions import DEFAULT_SPARK_VERSION
from orchestrator.local.state.api_error import ApiError, bad_request, invalid_state
from orchestrator.local.state.store import now_ms

if TYPE_CHECKING:
    from collections.abc import Callable

    from orchestrator.local.runtime.spark_engines import SparkEngines
    from orchestrator.local.state.documents import Documents

__all__ = ["DEFAULT_CLUSTER_ID", "ClusterSpec", "Clusters"]

log = logging.getLogger(__name__)

#: keys of a cluster's record that the API never shows
_PRIVATE = ("_events", "_pinned", "_configured")
#: the fields of a cluster's settings that ``create``/``edit`` take as given
SETTING_FIELDS = (
    "cluster_name",
    "spark_version",
    "node_type_id",
    "driver_node_type_id",
    "num_workers",
    "autoscale",
    "autotermination_minutes",
    "spark_conf",
    "spark_env_vars",
    "custom_tags",
    "instance_pool_id",
    "driver_instance_pool_id",
    "policy_id",
    "data_security_mode",
    "single_user_name",
    "runtime_engine",
    "enable_elastic_disk",
    "enable_local_disk_encryption",
    "init_scripts",
    "cluster_log_conf",
    "azure_attributes",
    "aws_attributes",
    "gcp_attributes",
    "ssh_public_keys",
    "docker_image",
    "workload_type",
    "is_single_node",
    "kind",
    "use_ml_runtime",
    "apply_policy_default_values",
)


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
        documents: Documents | None = None,
        creator: str = "local",
    ) -> None:
        self.start_delay = start_delay
        self.engines: SparkEngines | None = None
        self.documents = documents
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
                "spark_version": DEFAULT_SPARK_VERSION,
                "node_type_id": LOCAL_NODE_TYPE,
                "driver_node_type_id": LOCAL_NODE_TYPE,
                "num_workers": 0,
                "cluster_source": "UI",
                "creator_user_name": creator,
                "start_time": stamp,
                "data_security_mode": "SINGLE_USER",
                "spark_conf": {"spark.master": "local[*]"},
                "_events": [],
                "_configured": True,
            }
        for cluster_id, doc in documents.items("cluster") if documents else ():
            if cluster_id in self._clusters:
                continue
            if doc.get("state") != "TERMINATED":
                doc["state"] = "TERMINATED"
                doc["state_message"] = "The local workspace stopped"
                doc["terminated_time"] = stamp
                doc["termination_reason"] = {"code": "UNKNOWN", "type": "SERVICE_FAULT"}
            self._clusters[cluster_id] = doc

    # --- reading -------------------------------------------------------------------------
    def exists(self, cluster_id: str) -> bool:
        with self._cond:
            return cluster_id in self._clusters

    def state(self, cluster_id: str) -> str:
        with self._cond:
            return str(self._clusters[cluster_id]["state"])

    def environment(self, cluster_id: str) -> dict[str, str]:
        """The cluster's ``spark_env_vars``: set in the environment of its tasks' kernels;
        and ``ORCH_SPARK_VERSION``, its runtime, whose profile's interpreter they run on."""
        with self._cond:
            cluster = self._clusters.get(cluster_id) or {}
            env = cluster.get("spark_env_vars") or {}
            out = {str(k): str(v) for k, v in env.items()}
            out["ORCH_SPARK_VERSION"] = str(cluster.get("spark_version") or DEFAULT_SPARK_VERSION)
            return out

    def _info(self, cluster_id: str) -> dict[str, Any]:
        cluster = self._clusters.get(cluster_id)
        if cluster is None:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Cluster {cluster_id} does not exist")
        return cluster

    def info(self, cluster_id: str) -> dict[str, Any]:
        """A copy of the cluster's document (``clusters/get``); a RUNNING one warms the pool."""
        with self._cond:
            info = _public(self._info(cluster_id))
        if info["state"] == "RUNNING":
            self._notify_running()
        return info

    def infos(self) -> list[dict[str, Any]]:
        with self._cond:
            return [_public(c) for c in self._clusters.values()]

    def pinned(self, cluster_id: str) -> bool:
        with self._cond:
            return bool(self._info(cluster_id).get("_pinned"))

    def events(self, cluster_id: str) -> list[dict[str, Any]]:
        """The cluster's events, oldest first."""
        with self._cond:
            return copy.deepcopy(self._info(cluster_id)["_events"])

    # --- changes -------------------------------------------------------------------------
    def _event(
        self, cluster: dict[str, Any], kind: str, details: dict[str, Any] | None = None
    ) -> None:
        """Record an event (under the lock) and keep the cluster (when it is not configured)."""
        cluster["_events"].append(
            {
                "cluster_id": cluster["cluster_id"],
                "timestamp": now_ms(),
                "type": kind,
                "details": details or {},
            }
        )
        self._save(cluster)

    def _save(self, cluster: dict[str, Any]) -> None:
        if self.documents is not None and not cluster.get("_configured"):
            self.documents.put("cluster", cluster["cluster_id"], cluster)

    def create(self, settings: dict[str, Any], *, creator: str) -> str:
        """A new cluster from checked settings; it starts at once (PENDING, then RUNNING)."""
        cluster_id = f"{time.strftime('%m%d-%H%M%S')}-{secrets.token_hex(4)}"
        cluster: dict[str, Any] = {
            "cluster_id": cluster_id,
            **copy.deepcopy(settings),
            "state": "TERMINATED",
            "state_message": "",
            "cluster_source": "API",
            "creator_user_name": creator,
            "start_time": now_ms(),
            "default_tags": {
                "Vendor": "Databricks",
                "Creator": creator,
                "ClusterName": str(settings.get("cluster_name", "")),
                "ClusterId": cluster_id,
            },
            "_events": [],
        }
        cluster.setdefault("driver_node_type_id", cluster.get("node_type_id", LOCAL_NODE_TYPE))
        with self._cond:
            self._clusters[cluster_id] = cluster
            self._event(cluster, "CREATING", {"user": creator})
        self.start(cluster_id)
        return cluster_id

    def edit(self, cluster_id: str, settings: dict[str, Any], *, user: str) -> None:
        """``clusters/edit``: the settings are replaced; a RUNNING cluster restarts with them.
        Only a RUNNING or TERMINATED cluster can be edited."""
        with self._cond:
            cluster = self._info(cluster_id)
            state = cluster["state"]
            if state not in ("RUNNING", "TERMINATED"):
                raise invalid_state(f"Cluster {cluster_id} is in unexpected state {state}.")
            previous = {k: cluster[k] for k in SETTING_FIELDS if k in cluster}
            for key in SETTING_FIELDS:
                cluster.pop(key, None)
            cluster.update(copy.deepcopy(settings))
            cluster.setdefault("driver_node_type_id", cluster.get("node_type_id", LOCAL_NODE_TYPE))
            self._event(cluster, "EDITED", {"user": user, "previous_attributes": previous})
        if state == "RUNNING":
            self.restart(cluster_id, user=user)

    def request_start(self, cluster_id: str) -> None:
        """``clusters/start``: only a TERMINATED (or starting) cluster may be started."""
        with self._cond:
            state = self._info(cluster_id)["state"]
            if state not in ("TERMINATED", "PENDING"):
                raise invalid_state(f"Cluster {cluster_id} is in unexpected state {state}.")
        self.start(cluster_id)

    def restart(self, cluster_id: str, *, user: str) -> None:
        """``clusters/restart``: a RUNNING cluster goes through RESTARTING (its Spark engine
        stops) back to RUNNING."""
        with self._cond:
            cluster = self._info(cluster_id)
            if cluster["state"] != "RUNNING":
                raise invalid_state(
                    f"Cluster {cluster_id} is in unexpected state {cluster['state']}."
                )
            cluster["state"] = "RESTARTING"
            cluster["state_message"] = "Restarting the local cluster"
            self._event(cluster, "RESTARTING", {"user": user})
        if self.engines is not None:
            self.engines.stop(cluster_id)
        self._come_up(cluster_id, from_state="RESTARTING", restarted=True)

    def resize(self, cluster_id: str, size: dict[str, Any], *, user: str) -> None:
        """``clusters/resize``: a RUNNING cluster's ``num_workers`` or ``autoscale`` changes
        (this machine is every worker: nothing else changes)."""
        with self._cond:
            cluster = self._info(cluster_id)
            if cluster["state"] != "RUNNING":
                raise invalid_state(
                    f"Cluster {cluster_id} is in unexpected state {cluster['state']}."
                )
            previous = {"num_workers": cluster.get("num_workers", 0)}
            cluster.pop("num_workers", None)
            cluster.pop("autoscale", None)
            cluster.update(copy.deepcopy(size))
            cluster["state"] = "RESIZING"
            self._event(
                cluster,
                "RESIZING",
                {
                    "user": user,
                    "current_num_workers": previous["num_workers"],
                    "target_num_workers": int(size.get("num_workers", 0)),
                },
            )
        self._come_up(cluster_id, from_state="RESIZING", restarted=False, delay=0.0)

    def set_pinned(self, cluster_id: str, pinned: bool, *, user: str) -> None:
        with self._cond:
            cluster = self._info(cluster_id)
            cluster["_pinned"] = pinned
            self._event(cluster, "PINNED" if pinned else "UNPINNED", {"user": user})

    def change_owner(self, cluster_id: str, owner: str) -> None:
        with self._cond:
            cluster = self._info(cluster_id)
            cluster["creator_user_name"] = owner
            self._save(cluster)

    def terminate(self, cluster_id: str, *, user: str = "local") -> None:
        """``clusters/delete``: TERMINATED at once; its Spark engine stops."""
        with self._cond:
            cluster = self._info(cluster_id)
            if cluster["state"] != "TERMINATED":
                self._event(cluster, "TERMINATING", {"reason": _user_request(user)})
            cluster["state"] = "TERMINATED"
            cluster["state_message"] = "Terminated by user"
            cluster["terminated_time"] = now_ms()
            cluster["termination_reason"] = _user_request(user)
            self._save(cluster)
            self._cond.notify_all()
        if self.engines is not None:
            self.engines.stop(cluster_id)

    def permanent_delete(self, cluster_id: str, *, user: str) -> None:
        """``clusters/permanent-delete``: terminated, then gone with its events."""
        self.terminate(cluster_id, user=user)
        with self._cond:
            cluster = self._clusters.pop(cluster_id)
            self._cond.notify_all()
        if self.documents is not None and not cluster.get("_configured"):
            self.documents.delete("cluster", cluster_id)

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
            cluster.pop("termination_reason", None)
            cluster.pop("terminated_time", None)
            self._event(cluster, "STARTING")
        self._come_up(cluster_id, from_state="PENDING", restarted=False)

    def _come_up(
        self, cluster_id: str, *, from_state: str, restarted: bool, delay: float | None = None
    ) -> None:
        """In the background: start the cluster's engine, wait the start delay, RUNNING."""
        wait = self.start_delay if delay is None else delay

        def finish() -> None:
            started = time.monotonic()
            if from_state != "RESIZING":
                self._start_engine(cluster_id)
            time.sleep(max(0.0, wait - (time.monotonic() - started)))
            with self._cond:
                cluster = self._clusters.get(cluster_id)
                if cluster is not None and cluster["state"] == from_state:
                    cluster["state"] = "RUNNING"
                    cluster["state_message"] = ""
                    if restarted:
                        cluster["last_restarted_time"] = now_ms()
                    else:
                        cluster.setdefault("start_time", now_ms())
                    self._event(
                        cluster, "RUNNING" if from_state != "RESIZING" else "UPSIZE_COMPLETED"
                    )
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
            while (self._clusters.get(cluster_id) or {}).get("state") != "RUNNING":
                if (
                    cancel.is_set()
                    or time.monotonic() > deadline
                    or cluster_id not in self._clusters
                ):
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


def _public(cluster: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in cluster.items() if k not in _PRIVATE}


def _user_request(user: str) -> dict[str, Any]:
    return {"code": "USER_REQUEST", "type": "SUCCESS", "parameters": {"username": user}}
