"""Instance Pools API 2.0 of the local workspace: ``create``, ``edit``, ``get``, ``list``,
``delete``, in the shapes of databricks-sdk's ``CreateInstancePoolResponse``,
``GetInstancePool`` and ``ListInstancePools``.

A pool is stored and checked, never filled: every cluster runs on this machine, so its stats
stay zero and it is always ``ACTIVE``. What is checked is what the service checks: a name, the
node type (this machine's, ``local``), ``preloaded_spark_versions`` among the runtime profiles,
``min_idle_instances <= max_capacity``; a pool's node type cannot change. Pools live in the
state database (kind ``instance-pool``); a cluster or job naming a pool that does not exist is
refused (``runtime/compute_specs.py``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from orchestrator.local.api.principals import Principals
from orchestrator.local.api.routing import Request, Router
from orchestrator.local.runtime.node_types import LOCAL_NODE_TYPE
from orchestrator.local.runtime.spark_versions import profile
from orchestrator.local.state.api_error import bad_request, not_found
from orchestrator.local.state.documents import Documents

__all__ = ["InstancePoolsApi"]

_KIND = "instance-pool"
_FIELDS = (
    "instance_pool_name",
    "node_type_id",
    "min_idle_instances",
    "max_capacity",
    "idle_instance_autotermination_minutes",
    "custom_tags",
    "preloaded_spark_versions",
    "enable_elastic_disk",
    "disk_spec",
    "azure_attributes",
    "aws_attributes",
    "gcp_attributes",
    "preloaded_docker_images",
)
_EDITABLE = (
    "instance_pool_name",
    "node_type_id",
    "min_idle_instances",
    "max_capacity",
    "idle_instance_autotermination_minutes",
    "custom_tags",
)


class InstancePoolsApi:
    def __init__(
        self,
        documents: Documents,
        *,
        principals: Principals,
        on_delete: Callable[[str], None] | None = None,
    ) -> None:
        self.documents = documents
        self.principals = principals
        self.on_delete = on_delete

    def register(self, router: Router) -> None:
        v = ("2.0",)
        router.api("POST", "instance-pools/create", v, self.create)
        router.api("POST", "instance-pools/edit", v, self.edit)
        router.api("POST", "instance-pools/delete", v, self.delete)
        router.api("GET", "instance-pools/get", v, self.get)
        router.api("GET", "instance-pools/list", v, self.list)

    def _pool(self, pool_id: str) -> dict[str, Any]:
        pool = self.documents.get(_KIND, pool_id)
        if pool is None:
            raise not_found(f"Can't find an instance pool with id: {pool_id[:100]}.")
        return pool

    def _checked(self, given: dict[str, Any]) -> dict[str, Any]:
        settings = {k: given[k] for k in _FIELDS if given.get(k) is not None}
        name = settings.get("instance_pool_name")
        if not isinstance(name, str) or not name.strip():
            raise bad_request("Missing required field: instance_pool_name")
        if len(name) > 100:
            raise bad_request("instance_pool_name must be at most 100 characters")
        node = settings.get("node_type_id")
        if node is None:
            raise bad_request("Missing required field: node_type_id")
        if node != LOCAL_NODE_TYPE:
            raise bad_request(
                f"Node type {str(node)[:100]} is not supported: this workspace's one node type "
                f"is {LOCAL_NODE_TYPE!r}"
            )
        numbers = ("min_idle_instances", "max_capacity", "idle_instance_autotermination_minutes")
        for field in numbers:
            value = settings.get(field)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                raise bad_request(f"{field} must be a non-negative integer")
        low, high = settings.get("min_idle_instances", 0), settings.get("max_capacity")
        if high is not None and low > high:
            raise bad_request("min_idle_instances must not be greater than max_capacity")
        versions = settings.get("preloaded_spark_versions") or []
        if not isinstance(versions, list) or len(versions) > 1:
            raise bad_request("preloaded_spark_versions takes at most one runtime")
        for version in versions:
            if not isinstance(version, str) or profile(version) is None:
                raise bad_request(f"Invalid spark version {str(version)[:100]}.")
        tags = settings.get("custom_tags")
        if tags is not None and not isinstance(tags, dict):
            raise bad_request("Invalid custom_tags: expected an object")
        return settings

    def create(self, req: Request) -> dict[str, Any]:
        settings = self._checked(req.params)
        pool_id = (
            f"{time.strftime('%m%d-%H%M%S')}-{secrets.token_hex(3)}-pool-{secrets.token_hex(4)}"
        )
        creator = self.principals.caller
        pool = {
            "instance_pool_id": pool_id,
            **settings,
            "default_tags": {
                "Vendor": "Databricks",
                "DatabricksInstancePoolCreatorId": creator,
                "DatabricksInstancePoolId": pool_id,
            },
            "state": "ACTIVE",
            "stats": {
                "used_count": 0,
                "idle_count": 0,
                "pending_used_count": 0,
                "pending_idle_count": 0,
            },
        }
        self.documents.put(_KIND, pool_id, pool)
        return {"instance_pool_id": pool_id}

    def edit(self, req: Request) -> dict[str, Any]:
        pool_id = req.required_text("instance_pool_id")
        pool = self._pool(pool_id)
        given = {k: req.get(k) for k in _EDITABLE}
        merged = {**{k: v for k, v in pool.items() if k in _FIELDS and k not in _EDITABLE}}
        merged.update({k: v for k, v in given.items() if v is not None})
        settings = self._checked(merged)
        if settings["node_type_id"] != pool["node_type_id"]:
            raise bad_request("The node type of an instance pool cannot be changed")
        kept = {k: v for k, v in pool.items() if k not in _FIELDS}
        self.documents.put(_KIND, pool_id, {**kept, **settings})
        return {}

    def delete(self, req: Request) -> dict[str, Any]:
        pool_id = req.required_text("instance_pool_id")
        self._pool(pool_id)
        self.documents.delete(_KIND, pool_id)
        if self.on_delete is not None:
            self.on_delete(pool_id)
        return {}

    def get(self, req: Request) -> dict[str, Any]:
        return self._pool(req.required_text("instance_pool_id"))

    def list(self, req: Request) -> dict[str, Any]:
        pools = [pool for _, pool in self.documents.items(_KIND)]
        return {"instance_pools": pools} if pools else {}
