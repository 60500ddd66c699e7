"""The Permissions API for jobs and compute objects: ``GET/PUT/PATCH
/api/2.0/permissions/{jobs|clusters|instance-pools|cluster-policies}/{id}`` and
``GET .../{id}/permissionLevels`` (:class:`~orchestrator.local.api.permissions_api.
PermissionsApi` hands these routes here; folders and notebooks stay there).

Shapes are databricks-sdk's ``JobPermissions``, ``ClusterPermissions``,
``InstancePoolPermissions`` and ``ClusterPolicyPermissions``: ``object_id`` ``/jobs/<id>``,
``object_type`` ``job`` (``cluster``, ``instance-pool``, ``cluster-policy``). What the service
shows on its own is built in: group ``admins`` has CAN_MANAGE on every job, cluster and pool,
inherited from the type's root (``/jobs/``, ``/clusters/``...); a job has exactly one owner
(IS_OWNER, its creator until a request gives it to another user or service principal); a
cluster's or pool's creator has CAN_MANAGE. ``PUT`` replaces the direct grants (the owner stays
unless another is named), ``PATCH`` adds or changes those of the principals it names. Levels
are checked per type, principals must exist, groups cannot own a job.

Kept in the state database (``state/documents.py``, kind ``acl``) and dropped with their
object. Nothing is enforced: the local workspace's one caller is an admin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.local.api.principals import Principals
from orchestrator.local.api.routing import Request
from orchestrator.local.state.api_error import bad_request, not_found
from orchestrator.local.state.documents import Documents

__all__ = ["ResourceKind", "ResourcePermissions", "job_kind"]

_PRINCIPALS = (("user_name", "user"), ("group_name", "group"), ("service_principal_name", "sp"))
_NAMES = {"user": "UserName", "group": "GroupName", "sp": "ServicePrincipalName"}


@dataclass(frozen=True)
class ResourceKind:
    """One type of object: its route name, ``object_type``, levels (lowest first, with their
    descriptions), and how to find an object's creator (None when it does not exist)."""

    route: str
    object_type: str
    noun: str
    levels: dict[str, str]
    creator: Callable[[str], str | None]
    creator_level: str
    admins_level: str = "CAN_MANAGE"


def job_kind(creator: Callable[[str], str | None]) -> ResourceKind:
    return ResourceKind(
        "jobs",
        "job",
        "Job",
        {
            "CAN_VIEW": "Can view the job and its runs",
            "CAN_MANAGE_RUN": "Can view, start and cancel runs of the job",
            "IS_OWNER": "Owns the job: its runs run as the owner",
            "CAN_MANAGE": "Can edit, delete and change the permissions of the job",
        },
        creator,
        "IS_OWNER",
    )


class ResourcePermissions:
    def __init__(
        self, documents: Documents, principals: Principals, kinds: tuple[ResourceKind, ...]
    ) -> None:
        self.documents = documents
        self.principals = principals
        self.kinds = {kind.route: kind for kind in kinds}

    def serves(self, route: str) -> bool:
        return route in self.kinds

    def forget(self, route: str, object_id: str) -> None:
        """Drop an object's grants (the object was deleted)."""
        self.documents.delete("acl", f"{route}/{object_id}")

    # --- answers -------------------------------------------------------------------------
    def _find(self, route: str, object_id: str) -> tuple[ResourceKind, str]:
        kind = self.kinds[route]
        creator = kind.creator(object_id)
        if creator is None:
            raise not_found(f"{kind.noun} {object_id[:100]} does not exist.")
        return kind, creator

    def _stored(self, kind: ResourceKind, object_id: str, creator: str) -> dict[str, Any]:
        stored = self.documents.get("acl", f"{kind.route}/{object_id}")
        if stored is None:
            owner_kind = self.principals.kind_of(creator) or "user"
            stored = {"grants": [[owner_kind, creator, kind.creator_level]]}
        return stored

    def levels(self, route: str, object_id: str) -> dict[str, Any]:
        kind, _ = self._find(route, object_id)
        return {
            "permission_levels": [
                {"permission_level": level, "description": text}
                for level, text in kind.levels.items()
            ]
        }

    def get(self, route: str, object_id: str) -> dict[str, Any]:
        kind, creator = self._find(route, object_id)
        return self._answer(kind, object_id, self._stored(kind, object_id, creator))

    def _answer(self, kind: ResourceKind, object_id: str, stored: dict[str, Any]) -> dict[str, Any]:
        entries: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for principal_kind, name, level in stored["grants"]:
            entries.setdefault((principal_kind, name), []).append(
                {"permission_level": level, "inherited": False}
            )
        admins = entries.setdefault(("group", "admins"), [])
        admins.append(
            {
                "permission_level": kind.admins_level,
                "inherited": True,
                "inherited_from_object": [f"/{kind.route}/"],
            }
        )
        return {
            "object_id": f"/{kind.route}/{object_id}",
            "object_type": kind.object_type,
            "access_control_list": [
                {**self._principal(p_kind, name), "all_permissions": permissions}
                for (p_kind, name), permissions in entries.items()
            ],
        }

    def _principal(self, kind: str, name: str) -> dict[str, str]:
        if kind == "group":
            return {"group_name": name}
        field = "service_principal_name" if kind == "sp" else "user_name"
        return {field: name, "display_name": self.principals.display(kind, name)}

    # --- changes -------------------------------------------------------------------------
    def change(self, route: str, object_id: str, req: Request, *, replace: bool) -> dict[str, Any]:
        kind, creator = self._find(route, object_id)
        requested = self._requested(kind, req.get("access_control_list"))
        current = self._stored(kind, object_id, creator)
        grants: dict[tuple[str, str], str] = {}
        owner = next(((k, n) for k, n, lvl in current["grants"] if lvl == "IS_OWNER"), None)
        if not replace:
            grants = {(k, n): lvl for k, n, lvl in current["grants"]}
        new_owner = [key for key, level in requested.items() if level == "IS_OWNER"]
        if owner is not None and not new_owner:
            grants[owner] = "IS_OWNER"  # a job always keeps one owner
        elif new_owner and owner is not None and owner != new_owner[0]:
            grants.pop(owner, None)
        grants.update(requested)
        stored = {"grants": [[k, n, level] for (k, n), level in grants.items()]}
        self.documents.put("acl", f"{kind.route}/{object_id}", stored)
        return self._answer(kind, object_id, stored)

    def _requested(self, kind: ResourceKind, value: Any) -> dict[tuple[str, str], str]:
        """The request's grants checked whole: one level per principal (the highest)."""
        if value is None:
            value = []
        if not isinstance(value, list):
            raise bad_request("access_control_list must be a list")
        order = list(kind.levels)
        chosen: dict[tuple[str, str], str] = {}
        for entry in value:
            if not isinstance(entry, dict):
                raise bad_request("Each access control entry must be an object")
            named = [(k, entry[f]) for f, k in _PRINCIPALS if entry.get(f) is not None]
            if len(named) != 1 or not isinstance(named[0][1], str) or not named[0][1]:
                raise bad_request(
                    "Each access control entry must name exactly one of user_name, group_name "
                    "and service_principal_name"
                )
            principal_kind, name = named[0]
            level = entry.get("permission_level")
            if level not in kind.levels:
                raise bad_request(
                    f"Invalid permission level {str(level)[:50]!r} for a {kind.object_type}: "
                    f"it must be one of {', '.join(kind.levels)}"
                )
            if not self.principals.exists(principal_kind, name):
                raise bad_request(
                    f"Principal: {_NAMES[principal_kind]}({name[:200]}) does not exist"
                )
            if principal_kind == "group" and name == "admins" and level != kind.admins_level:
                raise bad_request(f"Cannot change admins's {kind.admins_level} permission")
            if level == "IS_OWNER" and principal_kind == "group":
                raise bad_request(
                    "Groups cannot own a job: give IS_OWNER to a user or a service principal"
                )
            key = (principal_kind, name)
            if key not in chosen or order.index(str(level)) > order.index(chosen[key]):
                chosen[key] = str(level)
        if sum(1 for level in chosen.values() if level == "IS_OWNER") > 1:
            raise bad_request("A job has exactly one owner: IS_OWNER given more than once")
        return chosen
