"""The build's identity and the permissions of its build root, through the REST API as JSON.

- :func:`current_user`: SCIM ``Me``'s ``userName`` (a user's name, or a service principal's
  application id): the identity's home is ``/Users/<it>``, where Databricks gives access to
  that identity and the workspace admins only.
- :func:`writers`: who may change a folder (``CAN_EDIT``/``CAN_MANAGE``, directly or
  inherited), from the Permissions API (``/api/2.0/permissions/directories/<object id>``).
- :func:`restrict`: the folder's direct grants replaced by the identity's ``CAN_MANAGE``
  (``PUT`` replaces direct grants; grants inherited from a parent folder stay, which is why a
  build root under ``/Shared``, where every user has ``CAN_MANAGE``, cannot be made private).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from orchestrator.adapters.databricks.sdk_errors import is_not_found, sdk_errors
from orchestrator.adapters.databricks.values import Grant
from orchestrator.errors import InfrastructureError

if TYPE_CHECKING:
    from orchestrator.adapters.databricks.client import SdkClient

__all__ = ["current_user", "restrict", "writers"]

WRITE_LEVELS = frozenset({"CAN_EDIT", "CAN_MANAGE"})
#: a service principal's SCIM ``userName`` is its application id, a UUID
_APPLICATION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def current_user(client: SdkClient) -> str:
    with sdk_errors("reading the current user (SCIM Me)"):
        me = client.api_client.do("GET", "/api/2.0/preview/scim/v2/Me")
    name = me.get("userName") if isinstance(me, dict) else None
    if not isinstance(name, str) or not name:
        raise InfrastructureError("SCIM Me returned no userName")
    return name


def _object_id(client: SdkClient, path: str) -> int | None:
    try:
        with sdk_errors(f"workspace get-status {path}"):
            status = client.api_client.do(
                "GET", "/api/2.0/workspace/get-status", query={"path": path}
            )
    except InfrastructureError as exc:
        if is_not_found(exc):
            return None
        raise
    object_id = status.get("object_id") if isinstance(status, dict) else None
    return int(object_id) if isinstance(object_id, int) else None


def _principal(entry: dict[str, Any]) -> tuple[str, str] | None:
    for field, kind in (
        ("user_name", "user"),
        ("group_name", "group"),
        ("service_principal_name", "service_principal"),
    ):
        if isinstance(entry.get(field), str) and entry[field]:
            return entry[field], kind
    return None


def writers(client: SdkClient, path: str) -> list[Grant]:
    object_id = _object_id(client, path)
    if object_id is None:
        return []
    with sdk_errors(f"reading the permissions of {path}"):
        data = client.api_client.do("GET", f"/api/2.0/permissions/directories/{object_id}")
    grants: list[Grant] = []
    for entry in (data.get("access_control_list") or []) if isinstance(data, dict) else []:
        principal = _principal(entry) if isinstance(entry, dict) else None
        if principal is None:
            continue
        for permission in entry.get("all_permissions") or []:
            level = permission.get("permission_level")
            if level in WRITE_LEVELS:
                source = permission.get("inherited_from_object") or []
                inherited = str(source[0]) if permission.get("inherited") and source else None
                grants.append(Grant(principal[0], principal[1], str(level), inherited))
    return grants


def restrict(client: SdkClient, path: str, principal: str) -> None:
    object_id = _object_id(client, path)
    if object_id is None:
        raise InfrastructureError(f"cannot restrict {path}: it does not exist")
    field = "service_principal_name" if _APPLICATION_ID.fullmatch(principal) else "user_name"
    body = {"access_control_list": [{field: principal, "permission_level": "CAN_MANAGE"}]}
    with sdk_errors(f"setting the permissions of {path}"):
        client.api_client.do("PUT", f"/api/2.0/permissions/directories/{object_id}", body=body)
