"""Who exists in the local workspace, and who is calling: one source for every API that names
principals (SCIM, the Permissions API, secret ACLs).

A workspace has one user (its ``user_name`` setting) and the two groups every workspace has,
``users`` and ``admins``, both of which hold the user. Optionally the workspace's token is
configured as a service principal's (:class:`ServicePrincipal`): the caller is then that
service principal, as on the service when a client authenticates with a service principal's
token, and it is a member of both groups too. Ids are stable numbers made from the names, so
they stay the same across restarts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["GROUPS", "Principals", "ServicePrincipal", "display_name", "scim_id"]

#: the groups every workspace has; every principal of the local workspace is in both
GROUPS = ("users", "admins")


@dataclass(frozen=True)
class ServicePrincipal:
    """A service principal whose token the workspace's token is: ``application_id`` is its
    name wherever Databricks names a service principal (ACLs, ``creator_user_name``, its home
    ``/Users/<application id>``)."""

    application_id: str
    display_name: str = "local service principal"


def display_name(user_name: str) -> str:
    """A user's display name: the part of the user name before its ``@``."""
    return user_name.split("@", 1)[0] or user_name


def scim_id(kind: str, name: str) -> str:
    """A stable numeric id for a principal (as Databricks' ids look: digits)."""
    digest = hashlib.sha256(f"{kind}:{name}".encode()).digest()
    return str(int.from_bytes(digest[:6], "big"))


class Principals:
    """The workspace's principals. ``kind`` is ``user``, ``group`` or ``sp`` throughout."""

    def __init__(self, user_name: str, service_principal: ServicePrincipal | None = None) -> None:
        self.user_name = user_name
        self.service_principal = service_principal

    @property
    def caller(self) -> str:
        """The name of whoever calls: the service principal's application id when the token
        is configured as one, else the user's name."""
        if self.service_principal is not None:
            return self.service_principal.application_id
        return self.user_name

    @property
    def caller_kind(self) -> str:
        return "sp" if self.service_principal is not None else "user"

    @property
    def homes(self) -> tuple[str, ...]:
        """``/Users/<name>`` of the user and of the service principal (if any)."""
        names = [self.user_name]
        if self.service_principal is not None:
            names.append(self.service_principal.application_id)
        return tuple(f"/Users/{name}" for name in names)

    def exists(self, kind: str, name: str) -> bool:
        if kind == "user":
            return name == self.user_name
        if kind == "group":
            return name in GROUPS
        return self.service_principal is not None and name == self.service_principal.application_id

    def kind_of(self, name: str) -> str | None:
        """What ``name`` names (secret ACLs name principals without saying what they are)."""
        for kind in ("user", "sp", "group"):
            if self.exists(kind, name):
                return kind
        return None

    def is_admin(self, kind: str, name: str) -> bool:
        """Every principal of the local workspace is in ``admins`` (and the group itself)."""
        return self.exists(kind, name) and (kind != "group" or name == "admins")

    def groups_of(self, kind: str, name: str) -> tuple[str, ...]:
        return GROUPS if kind != "group" and self.exists(kind, name) else ()

    def members(self) -> list[tuple[str, str]]:
        """``(kind, name)`` of every member of ``users`` and ``admins``."""
        found = [("user", self.user_name)]
        if self.service_principal is not None:
            found.append(("sp", self.service_principal.application_id))
        return found

    def display(self, kind: str, name: str) -> str:
        if kind == "sp" and self.service_principal is not None:
            return self.service_principal.display_name
        if kind == "user":
            return display_name(name)
        return name
