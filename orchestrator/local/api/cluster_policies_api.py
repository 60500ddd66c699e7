"""Cluster Policies API 2.0 of the local workspace (``policies/clusters/*``) and the Policy
Families API (``policy-families``), in the shapes of databricks-sdk's ``Policy``,
``ListPoliciesResponse`` and ``ListPolicyFamiliesResponse``.

A policy is stored with its ``definition`` checked (a JSON object of attribute rules of the
documented types) and a unique name, and applied wherever a cluster names it
(``runtime/compute_specs.py``: fixed values and defaults filled in, every rule checked). This
workspace has no policy families: they list empty, and a policy naming one is refused.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from orchestrator.local.api.principals import Principals
from orchestrator.local.api.routing import Request, Router
from orchestrator.local.runtime.compute_specs import check_policy_definition
from orchestrator.local.state.api_error import already_exists, bad_request, not_found
from orchestrator.local.state.documents import Documents
from orchestrator.local.state.store import now_ms

__all__ = ["ClusterPoliciesApi"]

_KIND = "cluster-policy"
_FIELDS = ("name", "definition", "description", "max_clusters_per_user", "libraries")


class ClusterPoliciesApi:
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
        router.api("POST", "policies/clusters/create", v, self.create)
        router.api("POST", "policies/clusters/edit", v, self.edit)
        router.api("POST", "policies/clusters/delete", v, self.delete)
        router.api("GET", "policies/clusters/get", v, self.get)
        router.api("GET", "policies/clusters/list", v, self.list)
        router.api("GET", "policy-families", v, self.families)
        router.api_prefix("GET", "policy-families/", v, self.family)

    def _policy(self, policy_id: str) -> dict[str, Any]:
        policy = self.documents.get(_KIND, policy_id)
        if policy is None:
            raise not_found(f"Cluster policy {policy_id[:100]} does not exist")
        return policy

    def _checked(self, given: dict[str, Any], *, policy_id: str | None) -> dict[str, Any]:
        if given.get("policy_family_id") is not None:
            family = str(given["policy_family_id"])[:100]
            raise bad_request(f"Policy family {family} does not exist: this workspace has none")
        settings = {k: given[k] for k in _FIELDS if given.get(k) is not None}
        name = settings.get("name")
        if not isinstance(name, str) or not name.strip():
            raise bad_request("Missing required field: name")
        if len(name) > 100:
            raise bad_request("A policy name is at most 100 characters")
        check_policy_definition(settings.get("definition"))
        limit = settings.get("max_clusters_per_user")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise bad_request("max_clusters_per_user must be a positive integer")
        for other_id, other in self.documents.items(_KIND):
            if other_id != policy_id and other.get("name") == name:
                raise already_exists(f"Policy with name {name} already exists")
        settings.setdefault("definition", "{}")
        return settings

    def create(self, req: Request) -> dict[str, Any]:
        settings = self._checked(req.params, policy_id=None)
        policy_id = secrets.token_hex(8).upper()
        self.documents.put(
            _KIND,
            policy_id,
            {
                "policy_id": policy_id,
                **settings,
                "creator_user_name": self.principals.caller,
                "created_at_timestamp": now_ms(),
                "is_default": False,
            },
        )
        return {"policy_id": policy_id}

    def edit(self, req: Request) -> dict[str, Any]:
        policy_id = req.required_text("policy_id")
        policy = self._policy(policy_id)
        settings = self._checked(req.params, policy_id=policy_id)
        kept = {k: v for k, v in policy.items() if k not in _FIELDS}
        self.documents.put(_KIND, policy_id, {**kept, **settings})
        return {}

    def delete(self, req: Request) -> dict[str, Any]:
        policy_id = req.required_text("policy_id")
        self._policy(policy_id)
        self.documents.delete(_KIND, policy_id)
        if self.on_delete is not None:
            self.on_delete(policy_id)
        return {}

    def get(self, req: Request) -> dict[str, Any]:
        return self._policy(req.required_text("policy_id"))

    def list(self, req: Request) -> dict[str, Any]:
        policies = [p for _, p in self.documents.items(_KIND)]
        column = (req.text("sort_column") or "POLICY_CREATION_TIME").upper()
        order = (req.text("sort_order") or "DESC").upper()
        if column not in ("POLICY_CREATION_TIME", "POLICY_NAME") or order not in ("ASC", "DESC"):
            raise bad_request(
                "sort_column must be POLICY_CREATION_TIME or POLICY_NAME, sort_order ASC or DESC"
            )
        key = "name" if column == "POLICY_NAME" else "created_at_timestamp"
        policies.sort(key=lambda p: (p.get(key), p["policy_id"]), reverse=order == "DESC")
        return {"policies": policies} if policies else {}

    def families(self, req: Request) -> dict[str, Any]:
        return {}

    def family(self, req: Request) -> dict[str, Any]:
        family = req.route[len("policy-families/") :]
        raise not_found(f"Policy family {family[:100]} does not exist")
