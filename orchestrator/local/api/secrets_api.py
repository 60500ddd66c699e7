"""Secrets API 2.0 of the local workspace: scopes and secrets that notebooks read with
``dbutils.secrets``. Values are never returned by the API, as on the service."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from orchestrator.local.api.routing import Request, Router
from orchestrator.local.state.api_error import ApiError, already_exists, bad_request, not_found
from orchestrator.local.state.limits import check_secret_key, check_secret_scope
from orchestrator.local.state.store import Store

__all__ = ["SecretsApi"]


class SecretsApi:
    def __init__(self, store: Store) -> None:
        self.store = store

    def register(self, router: Router) -> None:
        v = ("2.0",)
        router.api("POST", "secrets/scopes/create", v, self.create_scope)
        router.api("GET", "secrets/scopes/list", v, self.list_scopes)
        router.api("POST", "secrets/scopes/delete", v, self.delete_scope)
        router.api("POST", "secrets/put", v, self.put)
        router.api("GET", "secrets/list", v, self.list)
        router.api("POST", "secrets/delete", v, self.delete)

    def _scopes(self) -> set[str]:
        return {scope for scope, _, _, _ in self.store.secret_rows()}

    def create_scope(self, req: Request) -> dict[str, Any]:
        scope = req.required_text("scope")
        check_secret_scope(scope)
        if scope in self._scopes():
            raise already_exists(f"Scope {scope} already exists!")
        self.store.put_secret(scope, None, None)
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
