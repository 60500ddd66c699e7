"""Clusters API 2.0/2.1 of the local workspace, over
:class:`~orchestrator.local.runtime.clusters.Clusters`.

``spark-versions`` lists the runtime profiles (``runtime/spark_versions.py``),
``list-node-types`` this machine (``runtime/node_types.py``); ``create``, ``edit`` and
``update`` check the settings as the service does (``runtime/compute_specs.py``: runtime,
node type, instance pools, policy) before a cluster is made or changed; ``start``,
``restart``, ``resize``, ``delete`` (terminate), ``permanent-delete``, ``pin``, ``unpin``,
``change-owner`` and ``events`` drive and read a cluster's life cycle. Shapes are
databricks-sdk's ``compute`` dataclasses. ``list-zones`` is AWS's and is not served.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.local.api.principals import Principals
from orchestrator.local.api.routing import Request, Router
from orchestrator.local.runtime.clusters import SETTING_FIELDS, Clusters
from orchestrator.local.runtime.compute_specs import check_cluster
from orchestrator.local.runtime.node_types import node_type
from orchestrator.local.runtime.spark_versions import PROFILES
from orchestrator.local.state.api_error import bad_request
from orchestrator.local.state.documents import Documents

__all__ = ["ClustersApi"]

_EVENT_LIMIT = 500


class ClustersApi:
    def __init__(
        self,
        clusters: Clusters,
        *,
        documents: Documents,
        principals: Principals,
        on_delete: Callable[[str], None] | None = None,
    ) -> None:
        self.clusters = clusters
        self.documents = documents
        self.principals = principals
        #: called with a cluster's id once it is permanently deleted (its permissions go)
        self.on_delete = on_delete

    def register(self, router: Router) -> None:
        versions = ("2.0", "2.1")
        for method, route, handler in (
            ("GET", "clusters/get", self.get),
            ("GET", "clusters/list", self.list),
            ("GET", "clusters/spark-versions", self.spark_versions),
            ("GET", "clusters/list-node-types", self.list_node_types),
            ("POST", "clusters/create", self.create),
            ("POST", "clusters/edit", self.edit),
            ("POST", "clusters/update", self.update),
            ("POST", "clusters/start", self.start),
            ("POST", "clusters/restart", self.restart),
            ("POST", "clusters/resize", self.resize),
            ("POST", "clusters/delete", self.delete),
            ("POST", "clusters/permanent-delete", self.permanent_delete),
            ("POST", "clusters/pin", self.pin),
            ("POST", "clusters/unpin", self.unpin),
            ("POST", "clusters/change-owner", self.change_owner),
            ("POST", "clusters/events", self.events),
        ):
            router.api(method, route, versions, handler)

    # --- reading -------------------------------------------------------------------------
    def get(self, req: Request) -> dict[str, Any]:
        return self.clusters.info(req.required_text("cluster_id"))

    def list(self, req: Request) -> dict[str, Any]:
        found = self.clusters.infos()
        states = _query_list(req, "filter_by.cluster_states")
        sources = _query_list(req, "filter_by.cluster_sources")
        policy = req.text("filter_by.policy_id")
        if states:
            found = [c for c in found if c["state"] in states]
        if sources:
            found = [c for c in found if c.get("cluster_source") in sources]
        if policy is not None:
            found = [c for c in found if c.get("policy_id") == policy]
        if req.text("filter_by.is_pinned") is not None:
            pinned = req.flag("filter_by.is_pinned")
            found = [c for c in found if self.clusters.pinned(c["cluster_id"]) == pinned]
        return {"clusters": found} if found else {}

    def spark_versions(self, req: Request) -> dict[str, Any]:
        return {"versions": [{"key": p.key, "name": p.name} for p in PROFILES]}

    def list_node_types(self, req: Request) -> dict[str, Any]:
        return {"node_types": [node_type(self.documents.store.state_dir)]}

    def events(self, req: Request) -> dict[str, Any]:
        cluster_id = req.required_text("cluster_id")
        events = self.clusters.events(cluster_id)
        start, end = req.integer("start_time"), req.integer("end_time")
        kinds = req.get("event_types")
        if kinds is not None and not isinstance(kinds, list):
            raise bad_request("event_types must be a list")
        events = [
            e
            for e in events
            if (start is None or e["timestamp"] >= start)
            and (end is None or e["timestamp"] <= end)
            and (not kinds or e["type"] in kinds)
        ]
        order = (req.text("order") or "DESC").upper()
        if order not in ("ASC", "DESC"):
            raise bad_request(f"Invalid order: {order}")
        if order == "DESC":
            events.reverse()
        offset = req.integer("offset", default=0) or 0
        limit = req.integer("limit", default=50) or 50
        if offset < 0 or not 1 <= limit <= _EVENT_LIMIT:
            raise bad_request(f"offset must not be negative and limit between 1 and {_EVENT_LIMIT}")
        page = events[offset : offset + limit]
        out: dict[str, Any] = {"total_count": len(events)}
        if page:
            out["events"] = page
        if offset + limit < len(events):
            out["next_page"] = {**req.params, "offset": offset + limit, "limit": limit}
        return out

    # --- changes -------------------------------------------------------------------------
    def _settings(self, req: Request, source: dict[str, Any] | None = None) -> dict[str, Any]:
        given = dict(req.params if source is None else source)
        settings = {k: given[k] for k in SETTING_FIELDS if k in given}
        return check_cluster(settings, self.documents)

    def create(self, req: Request) -> dict[str, Any]:
        source = req.get("clone_from")
        if isinstance(source, dict) and source.get("source_cluster_id"):
            base = self.clusters.info(str(source["source_cluster_id"]))
            params = {**{k: base[k] for k in SETTING_FIELDS if k in base}, **req.params}
            settings = self._settings(req, params)
        else:
            settings = self._settings(req)
        cluster_id = self.clusters.create(settings, creator=self.principals.caller)
        return {"cluster_id": cluster_id}

    def edit(self, req: Request) -> dict[str, Any]:
        cluster_id = req.required_text("cluster_id")
        self.clusters.info(cluster_id)  # 400 when it does not exist, before the settings
        self.clusters.edit(cluster_id, self._settings(req), user=self.principals.caller)
        return {}

    def update(self, req: Request) -> dict[str, Any]:
        cluster_id = req.required_text("cluster_id")
        mask = req.required_text("update_mask")
        current = self.clusters.info(cluster_id)
        changes = req.obj("cluster")
        fields = [f.strip() for f in mask.split(",") if f.strip()]
        unknown = [f for f in fields if f.split(".")[0] not in SETTING_FIELDS]
        if unknown:
            raise bad_request(f"Invalid update_mask: {', '.join(unknown)[:200]}")
        merged = {k: current[k] for k in SETTING_FIELDS if k in current}
        for name in fields:
            top = name.split(".")[0]
            if top in changes:
                merged[top] = changes[top]
            else:
                merged.pop(top, None)
        self.clusters.edit(cluster_id, self._settings(req, merged), user=self.principals.caller)
        return {}

    def start(self, req: Request) -> dict[str, Any]:
        self.clusters.request_start(req.required_text("cluster_id"))
        return {}

    def restart(self, req: Request) -> dict[str, Any]:
        self.clusters.restart(req.required_text("cluster_id"), user=self.principals.caller)
        return {}

    def resize(self, req: Request) -> dict[str, Any]:
        cluster_id = req.required_text("cluster_id")
        size: dict[str, Any] = {}
        if req.get("num_workers") is not None:
            size["num_workers"] = req.get("num_workers")
        if req.get("autoscale") is not None:
            size["autoscale"] = req.get("autoscale")
        if len(size) != 1:
            raise bad_request("Exactly one of num_workers and autoscale must be given")
        check_cluster(size, self.documents, require_version=False)
        self.clusters.resize(cluster_id, size, user=self.principals.caller)
        return {}

    def delete(self, req: Request) -> dict[str, Any]:
        self.clusters.terminate(req.required_text("cluster_id"), user=self.principals.caller)
        return {}

    def permanent_delete(self, req: Request) -> dict[str, Any]:
        cluster_id = req.required_text("cluster_id")
        self.clusters.permanent_delete(cluster_id, user=self.principals.caller)
        if self.on_delete is not None:
            self.on_delete(cluster_id)
        return {}

    def pin(self, req: Request) -> dict[str, Any]:
        self.clusters.set_pinned(req.required_text("cluster_id"), True, user=self.principals.caller)
        return {}

    def unpin(self, req: Request) -> dict[str, Any]:
        self.clusters.set_pinned(
            req.required_text("cluster_id"), False, user=self.principals.caller
        )
        return {}

    def change_owner(self, req: Request) -> dict[str, Any]:
        cluster_id = req.required_text("cluster_id")
        owner = req.required_text("owner_username")
        self.clusters.info(cluster_id)
        if self.principals.kind_of(owner) not in ("user", "sp"):
            raise bad_request(f"User {owner[:200]} does not exist in the workspace")
        self.clusters.change_owner(cluster_id, owner)
        return {}


def _query_list(req: Request, name: str) -> list[str]:
    """A list given in the query (repeated) or the body."""
    if name in req.query:
        return [v for value in req.query[name] for v in value.split(",") if v]
    value = req.get(name)
    return [str(v) for v in value] if isinstance(value, list) else []
