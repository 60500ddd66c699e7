"""SCIM 2.0 of the local workspace (``/api/2.0/preview/scim/v2/...``): ``Me``, ``Users``,
``Groups`` and ``ServicePrincipals``, read and listed.

The principals are :class:`~orchestrator.local.api.principals.Principals`': one user, the
groups ``users`` and ``admins`` (each holding every principal), and a service principal when
the workspace's token is configured as one. ``Me`` answers whoever calls, in ``iam.User``'s
shape (a service principal as the service shows it to ``Me``: its application id as
``userName``). Lists take SCIM's ``filter`` (``eq``, ``ne``, ``co``, ``sw``, joined by ``and``
or ``or``), ``sortBy``/``sortOrder``, ``startIndex`` (first is 1) and ``count``; every answer
takes ``attributes`` and ``excludedAttributes`` (``id`` and ``schemas`` always stay).

Creating, changing or deleting principals is refused as a workspace whose identities are
managed elsewhere refuses it: 403 with SCIM's error body. An unknown id is SCIM's 404.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from orchestrator.local.api.principals import GROUPS, Principals, scim_id
from orchestrator.local.api.routing import Request, Response, Router
from orchestrator.local.state.api_error import bad_request

__all__ = ["ScimApi"]

_PREFIX = "preview/scim/v2/"
_USER_SCHEMAS = [
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:extension:workspace:2.0:User",
]
_GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
_SP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"
_LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
_ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
_ALWAYS = ("id", "schemas")
_RESOURCES = {"Users": "user", "Groups": "group", "ServicePrincipals": "sp"}
_CONDITION = re.compile(
    r'^\s*(?P<attr>[A-Za-z.$]+)\s+(?P<op>eq|ne|co|sw|ew)\s+(?P<value>"(?:[^"\\]|\\.)*"|\S+)\s*$',
    re.IGNORECASE,
)
_REFUSED = (
    "Principals of the local workspace are fixed by its settings (one user, the groups users "
    "and admins): they cannot be created, changed or deleted through SCIM."
)


def scim_error(status: int, detail: str) -> Response:
    """SCIM's error body, which databricks-sdk reads (``detail``, ``status``)."""
    return Response.json(
        {"schemas": [_ERROR_SCHEMA], "detail": detail, "status": str(status)}, status
    )


class ScimApi:
    def __init__(self, principals: Principals) -> None:
        self.principals = principals

    def register(self, router: Router) -> None:
        v = ("2.0",)
        router.api("GET", _PREFIX + "Me", v, self.me)
        for resource in _RESOURCES:
            router.api("GET", _PREFIX + resource, v, self._lister(resource))
            router.api("POST", _PREFIX + resource, v, self.refuse)
            router.api_prefix("GET", f"{_PREFIX}{resource}/", v, self._getter(resource))
            for method in ("PUT", "PATCH", "DELETE"):
                router.api_prefix(method, f"{_PREFIX}{resource}/", v, self.refuse)

    # --- resources -----------------------------------------------------------------------
    def _ref(self, kind: str, name: str) -> dict[str, Any]:
        resource = {"user": "Users", "sp": "ServicePrincipals", "group": "Groups"}[kind]
        ident = scim_id(kind, name)
        return {
            "display": self.principals.display(kind, name) if kind == "sp" else name,
            "value": ident,
            "$ref": f"{resource}/{ident}",
        }

    def _member_groups(self, kind: str, name: str) -> list[dict[str, Any]]:
        return [
            {**self._ref("group", group), "type": "direct"}
            for group in self.principals.groups_of(kind, name)
        ]

    def user(self, name: str) -> dict[str, Any]:
        return {
            "id": scim_id("user", name),
            "userName": name,
            "displayName": self.principals.display("user", name),
            "active": True,
            "emails": [{"value": name, "type": "work", "primary": True}],
            "groups": self._member_groups("user", name),
            "schemas": list(_USER_SCHEMAS),
        }

    def service_principal(self, application_id: str) -> dict[str, Any]:
        return {
            "id": scim_id("sp", application_id),
            "applicationId": application_id,
            "displayName": self.principals.display("sp", application_id),
            "active": True,
            "groups": self._member_groups("sp", application_id),
            "schemas": [_SP_SCHEMA],
        }

    def group(self, name: str) -> dict[str, Any]:
        return {
            "id": scim_id("group", name),
            "displayName": name,
            "members": [self._ref(kind, member) for kind, member in self.principals.members()],
            "meta": {"resourceType": "WorkspaceGroup"},
            "schemas": [_GROUP_SCHEMA],
        }

    def _all(self, resource: str) -> list[dict[str, Any]]:
        if resource == "Users":
            return [self.user(self.principals.user_name)]
        if resource == "Groups":
            return [self.group(name) for name in GROUPS]
        sp = self.principals.service_principal
        return [] if sp is None else [self.service_principal(sp.application_id)]

    # --- endpoints -----------------------------------------------------------------------
    def me(self, req: Request) -> dict[str, Any]:
        principals = self.principals
        if principals.service_principal is None:
            found = self.user(principals.user_name)
        else:
            sp = principals.service_principal
            found = {
                "id": scim_id("sp", sp.application_id),
                "userName": sp.application_id,
                "displayName": sp.display_name,
                "active": True,
                "groups": self._member_groups("sp", sp.application_id),
                "schemas": list(_USER_SCHEMAS),
            }
        return _narrow(found, req)

    def _lister(self, resource: str) -> Callable[[Request], dict[str, Any]]:
        def handler(req: Request) -> dict[str, Any]:
            found = [r for r in self._all(resource) if _matches(r, req.text("filter"))]
            sort_by = req.text("sortBy")
            if sort_by is not None:
                order = (req.text("sortOrder") or "ascending").lower()
                if order not in ("ascending", "descending"):
                    raise bad_request(f"Invalid sortOrder: {order}")
                found.sort(key=lambda r: str(_attribute(r, sort_by)), reverse=order == "descending")
            start = req.integer("startIndex", default=1) or 1
            count = req.integer("count")
            if start < 1 or (count is not None and count < 0):
                raise bad_request("startIndex must be at least 1 and count not negative")
            page = found[start - 1 :]
            if count is not None:
                page = page[:count]
            out: dict[str, Any] = {
                "totalResults": len(found),
                "startIndex": start,
                "itemsPerPage": len(page),
                "schemas": [_LIST_SCHEMA],
            }
            if page:
                out["Resources"] = [_narrow(r, req) for r in page]
            return out

        return handler

    def _getter(self, resource: str) -> Callable[[Request], Response | dict[str, Any]]:
        def handler(req: Request) -> Response | dict[str, Any]:
            ident = req.route[len(f"{_PREFIX}{resource}/") :]
            for found in self._all(resource):
                if found["id"] == ident:
                    return _narrow(found, req)
            noun = {"Users": "User", "Groups": "Group", "ServicePrincipals": "Service Principal"}
            return scim_error(404, f"{noun[resource]} with id {ident[:100]} not found.")

        return handler

    def refuse(self, req: Request) -> Response:
        return scim_error(403, _REFUSED)


def _narrow(resource: dict[str, Any], req: Request) -> dict[str, Any]:
    wanted = _names(req.text("attributes"))
    out = dict(resource)
    if wanted:
        out = {k: v for k, v in out.items() if k in wanted or k in _ALWAYS}
    for name in _names(req.text("excludedAttributes")):
        if name not in _ALWAYS:
            out.pop(name, None)
    return out


def _names(value: str | None) -> set[str]:
    return {part.strip() for part in (value or "").split(",") if part.strip()}


def _attribute(resource: dict[str, Any], path: str) -> Any:
    """A (case-insensitive, dotted) attribute; a list of complex values gives its values."""
    value: Any = resource
    for part in path.split("."):
        if isinstance(value, list):
            value = [v.get("value") if isinstance(v, dict) else v for v in value]
            return value
        if not isinstance(value, dict):
            return None
        keys = {k.lower(): k for k in value}
        value = value.get(keys.get(part.lower(), part))
    if isinstance(value, list):
        return [v.get("value") if isinstance(v, dict) else v for v in value]
    return value


def _matches(resource: dict[str, Any], expression: str | None) -> bool:
    """SCIM's simple filters: conditions joined by ``or`` of ``and`` (no parentheses)."""
    if not expression or not expression.strip():
        return True
    return any(
        all(_condition(resource, part) for part in re.split(r"\s+and\s+", alt, flags=re.I))
        for alt in re.split(r"\s+or\s+", expression, flags=re.I)
    )


def _condition(resource: dict[str, Any], text: str) -> bool:
    match = _CONDITION.match(text)
    if match is None:
        raise bad_request(f"Unsupported filter: {text.strip()[:200]}")
    raw = match["value"]
    expected = raw[1:-1].replace('\\"', '"') if raw.startswith('"') else raw
    found = _attribute(resource, match["attr"])
    values = [str(v) for v in found] if isinstance(found, list) else [str(found)]
    if isinstance(found, bool):
        values = [str(found).lower()]
    op = match["op"].lower()
    tests: dict[str, Callable[[str], bool]] = {
        "eq": lambda v: v.lower() == expected.lower(),
        "ne": lambda v: v.lower() != expected.lower(),
        "co": lambda v: expected.lower() in v.lower(),
        "sw": lambda v: v.lower().startswith(expected.lower()),
        "ew": lambda v: v.lower().endswith(expected.lower()),
    }
    test = tests[op]
    if op == "ne":
        return all(test(v) for v in values)
    return any(test(v) for v in values)
