"""Secrets API 2.0 of the local workspace: scopes and secrets that notebooks read with
``dbutils.secrets``, ``secrets/get`` and the scopes' ACLs.

``secrets/get`` follows the reference: the value comes back base64-encoded, to a caller with
READ on the scope (admins have MANAGE on every scope); the service answers a caller who is not
an admin, outside a notebook, 400 ``BAD_REQUEST`` "This operation is not allowed outside
databricks notebooks." (every caller of the local workspace is an admin). ACLs
(``secrets/acls/put|get|list|delete``) give READ, WRITE or MANAGE on a scope to a principal
that exists; the creator of a scope has MANAGE on it (the group ``users`` instead when
``initial_manage_principal`` is ``users``, the only value the service takes). ACLs live in
the state database (kind ``secret-acl``) and go with their scope.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from orchestrator.local.api.principals import Principals
from orchestrator.local.api.routing import Request, Router
from orchestrator.local.state.api_error import ApiError, already_exists, bad_request, not_found
from orchestrator.local.state.documents import Documents
from orchestrator.local.state.limits import check_secret_key, check_secret_scope
from orchestrator.local.state.store import Store

__all__ = ["SecretsApi"]

_ACL = "secret-acl"
#: the permissions of a scope, lowest first
_PERMISSIONS = ("READ", "WRITE", "MANAGE")


class SecretsApi:
    def __init__(self, store: Store, *, documents: Documents, principals: Principals) -> None:
        self.store = store
        self.documents = documents
        self.principals = principals

    def register(self, router: Router) -> None:
        v = ("2.0",)
        router.api("POST", "secrets/scopes/create", v, self.create_scope)
        router.api("GET", "secrets/scopes/list", v, self.list_scopes)
        router.api("POST", "secrets/scopes/delete", v, self.delete_scope)
        router.api("POST", "secrets/put", v, self.put)
        router.api("GET", "secrets/list", v, self.list)
        router.api("POST", "secrets/delete", v, self.delete)
        router.api("GET", "secrets/get", v, self.get_secret)
        router.api("POST", "secrets/acls/put", v, self.put_acl)
        router.api("GET", "secrets/acls/get", v, self.get_acl)
        router.api("GET", "secrets/acls/list", v, self.list_acls)
        router.api("POST", "secrets/acls/delete", v, self.delete_acl)

    def _scopes(self) -> set[str]:
        return {scope for scope, _, _, _ in self.store.secret_rows()}

    def create_scope(self, req: Request) -> dict[str, Any]:
        scope = req.required_text("scope")
        check_secret_scope(scope)
        if scope in self._scopes():
            raise already_exists(f"Scope {scope} already exists!")
        initial = req.text("initial_manage_principal")
        if initial is not None and initial != "users":
            raise bad_request("initial_manage_principal only takes the group users")
        backend = req.text("scope_backend_type")
        if backend is not None and backend != "DATABRICKS":
            raise bad_request(
                f"Scopes backed by {backend[:50]} cannot be made here: only DATABRICKS scopes"
            )
        self.store.put_secret(scope, None, None)
        manager = initial or self.principals.caller
        self.documents.put(
            _ACL, f"{scope}/{manager}", {"principal": manager, "permission": "MANAGE"}
        )
        return {}

    def list_scopes(self, req: Request) -> dict[str, Any]:
        scopes = sorted(self._scopes())
        return (
            {"scopes": [{"name": s, "backend_type": "DATABRICKS"} for s in scopes]}
            if scopes
            else {}
        )

    def delete_scope(self, req: Request) -> dict[str, Any]:
        scope = req.required_text("scope")
        if not self.store.delete_secret(scope, None):
            raise not_found(f"Scope {scope} does not exist!")
        self.documents.delete_prefix(_ACL, f"{scope}/")
        return {}

    def put(self, req: Request) -> dict[str, Any]:
        scope = req.required_text("scope")
        key = req.required_text("key")
        check_secret_key(key)
        if scope not in self._scopes():
            raise not_found(f"Scope {scope} does not exist!")
        value = req.text("string_value")
        if value is None:
            raw = req.text("bytes_value")
            if raw is None:
                raise bad_request("Either string_value or bytes_value is required")
            try:
                value = base64.b64decode(raw, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise bad_request("bytes_value must be base64 of UTF-8 text") from None
        if len(value.encode()) > 128 * 1024:
            raise ApiError(400, "MAX_SECRET_SIZE_EXCEEDED", "A secret value is at most 128 KB")
        self.store.put_secret(scope, key, value)
        return {}

    def list(self, req: Request) -> dict[str, Any]:
        scope = req.required_text("scope")
        if scope not in self._scopes():
            raise not_found(f"Scope {scope} does not exist!")
        keys = [
            {"key": key, "last_updated_timestamp": updated}
            for s, key, _, updated in self.store.secret_rows()
            if s == scope and key is not None
        ]
        return {"secrets": keys} if keys else {}

    def delete(self, req: Request) -> dict[str, Any]:
        scope = req.required_text("scope")
        key = req.required_text("key")
        if not self.store.delete_secret(scope, key):
            raise not_found(f"Secret {key} does not exist in scope {scope}")
        return {}

    # --- a secret's value ----------------------------------------------------------------
    def _scope(self, req: Request) -> str:
        scope = req.required_text("scope")
        if scope not in self._scopes():
            raise not_found(f"Scope {scope} does not exist!")
        return scope

    def _permission(self, scope: str, kind: str, name: str) -> str | None:
        """The highest permission ``name`` has on ``scope``, directly or through a group."""
        if self.principals.is_admin(kind, name):
            return "MANAGE"
        names = [name, *self.principals.groups_of(kind, name)]
        found = [
            acl["permission"]
            for key, acl in self.documents.items(_ACL, f"{scope}/")
            if acl["principal"] in names
        ]
        return max(found, key=_PERMISSIONS.index) if found else None

    def get_secret(self, req: Request) -> dict[str, Any]:
        scope = self._scope(req)
        key = req.required_text("key")
        caller, kind = self.principals.caller, self.principals.caller_kind
        if not self.principals.is_admin(kind, caller):
            raise ApiError(
                400, "BAD_REQUEST", "This operation is not allowed outside databricks notebooks."
            )
        if self._permission(scope, kind, caller) is None:
            raise ApiError(
                403,
                "PERMISSION_DENIED",
                f"User {caller} does not have READ permission on scope {scope}",
            )
        for s, k, value, _ in self.store.secret_rows():
            if s == scope and k == key and value is not None:
                encoded = base64.b64encode(value.encode("utf-8")).decode("ascii")
                return {"key": key, "value": encoded}
        raise not_found(f"Secret {key} does not exist in scope {scope}")

    # --- ACLs ----------------------------------------------------------------------------
    def _principal(self, req: Request) -> str:
        principal = req.required_text("principal")
        if self.principals.kind_of(principal) is None:
            raise not_found(f"Principal {principal[:200]} does not exist")
        return principal

    def put_acl(self, req: Request) -> dict[str, Any]:
        scope = self._scope(req)
        principal = self._principal(req)
        permission = req.required_text("permission")
        if permission not in _PERMISSIONS:
            raise bad_request(
                f"Invalid permission {permission[:50]}: it must be one of {', '.join(_PERMISSIONS)}"
            )
        self.documents.put(
            _ACL, f"{scope}/{principal}", {"principal": principal, "permission": permission}
        )
        return {}

    def get_acl(self, req: Request) -> dict[str, Any]:
        scope = self._scope(req)
        principal = req.required_text("principal")
        acl = self.documents.get(_ACL, f"{scope}/{principal}")
        if acl is None:
            raise not_found(f"No ACL for principal {principal[:200]} in scope {scope}")
        return acl

    def list_acls(self, req: Request) -> dict[str, Any]:
        scope = self._scope(req)
        items = [acl for _, acl in self.documents.items(_ACL, f"{scope}/")]
        return {"items": items} if items else {}

    def delete_acl(self, req: Request) -> dict[str, Any]:
        scope = self._scope(req)
        principal = req.required_text("principal")
        if not self.documents.delete(_ACL, f"{scope}/{principal}"):
            raise not_found(f"No ACL for principal {principal[:200]} in scope {scope}")
        return {}
