"""SCIM ``Me`` of the local workspace: ``GET /api/2.0/preview/scim/v2/Me``.

The local workspace has one user, named by its settings (``user_name``, default
``local@localhost``), who is whoever calls it: ``Me`` answers that user in the shape of
databricks-sdk's ``iam.User`` (``id``, ``userName``, ``displayName``, ``active``, ``emails``,
``groups``, ``schemas``), a member of the groups ``users`` and ``admins``. The ids are stable
numbers made from the names, so they stay the same across restarts. ``attributes`` and
``excludedAttributes`` narrow the answer as SCIM says (``id`` and ``schemas`` always stay).
"""

from __future__ import annotations

import hashlib
from typing import Any

from orchestrator.local.api.routing import Request, Router

__all__ = ["GROUPS", "ScimApi", "display_name", "scim_id"]

_USER_SCHEMAS = [
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:extension:workspace:2.0:User",
]
#: the groups the user is a member of; ``admins`` and ``users`` are every workspace's own
GROUPS = ("users", "admins")
_ALWAYS = ("id", "schemas")


def display_name(user_name: str) -> str:
    """The user's display name: the part of the user name before its ``@``."""
    return user_name.split("@", 1)[0] or user_name


def scim_id(kind: str, name: str) -> str:
    """A stable numeric id for a principal (as Databricks' ids look: digits)."""
    digest = hashlib.sha256(f"{kind}:{name}".encode()).digest()
    return str(int.from_bytes(digest[:6], "big"))


class ScimApi:
    def __init__(self, *, user_name: str) -> None:
        self.user_name = user_name

    def register(self, router: Router) -> None:
        router.api("GET", "preview/scim/v2/Me", ("2.0",), self.me)

    def user(self) -> dict[str, Any]:
        """The workspace's one user, as SCIM shows it."""
        user_id = scim_id("user", self.user_name)
        return {
            "id": user_id,
            "userName": self.user_name,
            "displayName": display_name(self.user_name),
            "active": True,
            "emails": [{"value": self.user_name, "type": "work", "primary": True}],
            "groups": [
                {
                    "display": group,
                    "type": "direct",
                    "value": scim_id("group", group),
                    "$ref": f"Groups/{scim_id('group', group)}",
                }
                for group in GROUPS
            ],
            "schemas": list(_USER_SCHEMAS),
        }

    def me(self, req: Request) -> dict[str, Any]:
        user = self.user()
        wanted = _names(req.text("attributes"))
        if wanted:
            user = {k: v for k, v in user.items() if k in wanted or k in _ALWAYS}
        for name in _names(req.text("excludedAttributes")):
            if name not in _ALWAYS:
                user.pop(name, None)
        return user


def _names(value: str | None) -> set[str]:
    return {part.strip() for part in (value or "").split(",") if part.strip()}
