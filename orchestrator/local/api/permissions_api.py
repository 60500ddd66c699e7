"""Permissions API of the local workspace for folders and notebooks:
``GET/PUT/PATCH /api/2.0/permissions/{directories|notebooks}/{object_id}`` and
``GET .../{object_id}/permissionLevels``.

Shapes are databricks-sdk's ``iam.ObjectPermissions`` (``object_id`` ``"/directories/<id>"``,
``object_type`` ``"directory"``; notebooks alike), ``AccessControlRequest`` and
``PermissionsDescription``. The id is the workspace object's ``object_id``. What an object
grants directly is kept per object in the store; ``GET`` lists every principal with
``all_permissions``: its direct levels (``inherited`` false) and what it inherits from the
folders above (``inherited_from_object``: ``["/directories/<id>"]``, the root being
``"/directories/"`` as the service spells it). A workspace's own grants are built in and
cannot be removed or lowered: group ``admins`` CAN_MANAGE on the root (so everywhere), group
``users`` CAN_MANAGE on ``/Shared``, the user CAN_MANAGE on their home ``/Users/<user>``.

``PUT`` replaces an object's direct grants, ``PATCH`` adds or changes those of the principals
it names; both answer the object's permissions. A request is checked whole before anything
is written: the levels (CAN_READ, CAN_RUN, CAN_EDIT, CAN_MANAGE), the principals (the
workspace's one user, the groups ``users`` and ``admins``, the service principal when the
token is configured as one), the object (404 when no folder or notebook has the id). As on
the service, ``/Shared``'s permissions cannot be modified (500 ``INTERNAL_ERROR`` "Cannot
modify permissions of directory <id>") and ``admins`` cannot lose CAN_MANAGE.

Nothing is enforced: with one user, every request is the user's, who may do anything.
Jobs, clusters, instance pools and cluster policies are answered by
:mod:`.resource_permissions`, to which this API hands their routes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from orchestrator.local.api.principals import Principals
from orchestrator.local.api.resource_permissions import ResourcePermissions
from orchestrator.local.api.routing import Request, Router
from orchestrator.local.state.api_error import ApiError, bad_request, not_found
from orchestrator.local.state.store import Grant, ObjectRow, Store, parent_of

__all__ = ["LEVELS", "PermissionsApi"]

#: the levels of folders and notebooks, lowest first, with what each allows
LEVELS = {
    "CAN_READ": "Can view and comment on the object",
    "CAN_RUN": "Can run the object (attach, run commands) and read it",
    "CAN_EDIT": "Can edit the object and run it",
    "CAN_MANAGE": "Can manage the object: edit, delete, move and change its permissions",
}
_TYPES = {"directories": ("DIRECTORY", "directory"), "notebooks": ("NOTEBOOK", "notebook")}
_ROUTE = re.compile(r"permissions/(?P<type>[a-z-]+)/(?P<id>[^/]+)(?P<levels>/permissionLevels)?")
_PRINCIPALS = (("user_name", "user"), ("group_name", "group"), ("service_principal_name", "sp"))
_NAMES = {"user": "UserName", "group": "GroupName", "sp": "ServicePrincipalName"}


@dataclass(frozen=True)
class _Target:
    kind: str  # the route's type: directories, notebooks
    row: ObjectRow

    @property
    def object_key(self) -> str:
        return _object_key(self.kind, self.row)


def _object_key(kind: str, row: ObjectRow) -> str:
    """``/directories/<id>``; the root folder is ``/directories/``."""
    return f"/{kind}/" if row.path == "/" else f"/{kind}/{row.object_id}"


class PermissionsApi:
    def __init__(
        self,
        store: Store,
        *,
        principals: Principals,
        resources: ResourcePermissions | None = None,
    ) -> None:
        self.store = store
        self.principals = principals
        self.user_name = principals.user_name
        self.resources = resources

    def _resource(self, req: Request) -> tuple[str, str, bool] | None:
        """``(type, id, levels)`` when the route names an object :mod:`.resource_permissions`
        serves."""
        match = _ROUTE.fullmatch(req.route)
        if match is None or self.resources is None or not self.resources.serves(match["type"]):
            return None
        return match["type"], match["id"], bool(match["levels"])

    def register(self, router: Router) -> None:
        router.api_prefix("GET", "permissions/", ("2.0",), self.get)
        router.api_prefix("PUT", "permissions/", ("2.0",), self.put)
        router.api_prefix("PATCH", "permissions/", ("2.0",), self.patch)

    # --- the object ----------------------------------------------------------------------
    def _target(self, req: Request, *, levels: bool = False) -> _Target:
        match = _ROUTE.fullmatch(req.route)
        if match is None or bool(match["levels"]) != levels:
            raise ApiError(
                404, "ENDPOINT_NOT_FOUND", f"No API found for '{req.method} /{req.route}'"
            )
        kind = match["type"]
        if kind not in _TYPES:
            raise ApiError(
                404,
                "ENDPOINT_NOT_FOUND",
                f"Permissions of {kind} are not served by the local workspace "
                "(directories, notebooks, jobs, clusters, instance pools and cluster policies "
                "are)",
            )
        object_type, label = _TYPES[kind]
        raw = match["id"]
        # an object id is an int64 (ASCII digits); anything else names no object
        number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 19 else None
        row = self.store.object_by_id(number) if number is not None and number < 2**63 else None
        if row is None or row.object_type != object_type:
            raise not_found(f"{label.capitalize()} {raw[:100]} does not exist.")
        return _Target(kind, row)

    def _built_in(self, row: ObjectRow) -> list[Grant]:
        """What every workspace grants on its own folders."""
        if row.path == "/":
            return [Grant("group", "admins", "CAN_MANAGE")]
        if row.path == "/Shared":
            return [Grant("group", "users", "CAN_MANAGE")]
        if row.path == f"/Users/{self.user_name}":
            return [Grant("user", self.user_name, "CAN_MANAGE")]
        sp = self.principals.service_principal
        if sp is not None and row.path == f"/Users/{sp.application_id}":
            return [Grant("sp", sp.application_id, "CAN_MANAGE")]
        return []

    def _direct(self, row: ObjectRow) -> list[Grant]:
        built_in = self._built_in(row)
        return built_in + [g for g in self.store.grants(row.object_id) if g not in built_in]

    def _ancestors(self, row: ObjectRow) -> Iterator[ObjectRow]:
        """The folders above ``row``, the root first."""
        chain = []
        path = parent_of(row.path)
        while path is not None:
            folder = self.store.get_object(path)
            if folder is not None:
                chain.append(folder)
            path = parent_of(path)
        return reversed(chain)

    # --- answers -------------------------------------------------------------------------
    def _permissions(self, target: _Target) -> dict[str, Any]:
        entries: dict[tuple[str, str], list[dict[str, Any]]] = {}

        def add(grant: Grant, inherited_from: str | None) -> None:
            permissions = entries.setdefault((grant.principal_kind, grant.principal), [])
            for known in permissions:
                same = known["permission_level"] == grant.level
                if same and inherited_from and known["inherited"]:
                    known["inherited_from_object"].append(inherited_from)
                    return
            permission: dict[str, Any] = {
                "permission_level": grant.level,
                "inherited": inherited_from is not None,
            }
            if inherited_from is not None:
                permission["inherited_from_object"] = [inherited_from]
            permissions.append(permission)

        for folder in self._ancestors(target.row):
            for grant in self._direct(folder):
                add(grant, _object_key("directories", folder))
        for grant in self._direct(target.row):
            add(grant, None)
        return {
            "object_id": target.object_key,
            "object_type": _TYPES[target.kind][1],
            "access_control_list": [
                {**self._principal(kind, name), "all_permissions": permissions}
                for (kind, name), permissions in entries.items()
            ],
        }

    def _principal(self, kind: str, name: str) -> dict[str, str]:
        if kind == "group":
            return {"group_name": name}
        if kind == "sp":
            return {
                "service_principal_name": name,
                "display_name": self.principals.display(kind, name),
            }
        shown = self.principals.display(kind, name) if name == self.user_name else name
        return {"user_name": name, "display_name": shown}

    def get(self, req: Request) -> dict[str, Any]:
        resource = self._resource(req)
        if resource is not None and self.resources is not None:
            kind, object_id, levels = resource
            if levels:
                return self.resources.levels(kind, object_id)
            return self.resources.get(kind, object_id)
        if req.route.endswith("/permissionLevels"):
            self._target(req, levels=True)
            return {
                "permission_levels": [
                    {"permission_level": level, "description": text}
                    for level, text in LEVELS.items()
                ]
            }
        return self._permissions(self._target(req))

    def put(self, req: Request) -> dict[str, Any]:
        return self._change(req, replace=True)

    def patch(self, req: Request) -> dict[str, Any]:
        return self._change(req, replace=False)

    # --- changes -------------------------------------------------------------------------
    def _change(self, req: Request, *, replace: bool) -> dict[str, Any]:
        resource = self._resource(req)
        if resource is not None and self.resources is not None and not resource[2]:
            return self.resources.change(resource[0], resource[1], req, replace=replace)
        target = self._target(req)
        if target.row.path == "/Shared":
            # the service refuses it (an INTERNAL_ERROR, which no client retries)
            raise ApiError(
                500,
                "INTERNAL_ERROR",
                f"Cannot modify permissions of directory {target.row.object_id}",
            )
        grants = self._requested(req.get("access_control_list"), target)
        built_in = self._built_in(target.row)
        self.store.put_grants(
            target.row.object_id, [g for g in grants if g not in built_in], replace=replace
        )
        return self._permissions(target)

    def _requested(self, value: Any, target: _Target) -> list[Grant]:
        """The request's grants, checked whole; one per principal (the highest level)."""
        if value is None:
            value = []
        if not isinstance(value, list):
            raise bad_request("access_control_list must be a list")
        order = list(LEVELS)
        chosen: dict[tuple[str, str], Grant] = {}
        for entry in value:
            grant = self._grant(entry, target)
            key = (grant.principal_kind, grant.principal)
            current = chosen.get(key)
            if current is None or order.index(grant.level) > order.index(current.level):
                chosen[key] = grant
        return list(chosen.values())

    def _grant(self, entry: Any, target: _Target) -> Grant:
        if not isinstance(entry, dict):
            raise bad_request("Each access control entry must be an object")
        named = [
            (kind, entry[field]) for field, kind in _PRINCIPALS if entry.get(field) is not None
        ]
        if len(named) != 1 or not isinstance(named[0][1], str) or not named[0][1]:
            raise bad_request(
                "Each access control entry must name exactly one of user_name, group_name "
                "and service_principal_name"
            )
        (kind, name) = named[0]
        level = entry.get("permission_level")
        label = _TYPES[target.kind][1]
        if not isinstance(level, str) or level not in LEVELS:
            raise bad_request(
                f"Invalid permission level {str(level)[:50]!r} for a {label}: "
                f"it must be one of {', '.join(LEVELS)}"
            )
        if not self._exists(kind, name):
            raise bad_request(f"Principal: {_NAMES[kind]}({name[:200]}) does not exist")
        for fixed in self._fixed(target.row):
            if (fixed.principal_kind, fixed.principal) == (kind, name) and level != fixed.level:
                raise bad_request(
                    f"Cannot remove {name}'s {fixed.level} permission on {target.row.object_id}"
                )
        return Grant(kind, name, str(level))

    def _fixed(self, row: ObjectRow) -> list[Grant]:
        """Grants no request can lower on ``row``: its own built-in ones, and the admins'."""
        return [Grant("group", "admins", "CAN_MANAGE"), *self._built_in(row)]

    def _exists(self, kind: str, name: str) -> bool:
        return self.principals.exists(kind, name)
