"""Git Credentials API 2.0 of the local workspace: ``/api/2.0/git-credentials``.

``POST`` (create), ``GET`` (list) and ``GET``/``PATCH``/``DELETE .../{credential_id}``, in the
shapes of databricks-sdk's ``CreateCredentialsResponse``, ``GetCredentialsResponse`` and
``ListCredentialsResponse`` (``credential_id``, ``git_provider``, ``git_username``,
``git_email``, ``name``, ``is_default_for_provider``); update and delete answer ``{}``. As on
the service no answer ever holds the token; here it is not even kept (see
:mod:`~orchestrator.local.state.git_store`): the local workspace clones local repositories and
needs none. A user may have several credentials, one of them the default of its provider (the
first of a provider is, unless told otherwise). The one user has no service principals to
manage, so a ``principal_id`` names nobody.
"""

from __future__ import annotations

from typing import Any

from orchestrator.local.api.routing import Request, Router
from orchestrator.local.state.api_error import bad_request, not_found
from orchestrator.local.state.git_store import CredentialRecord, GitStore, canonical_provider
from orchestrator.local.state.store import Store

__all__ = ["GitCredentialsApi"]

_V = ("2.0",)
_TEXT_FIELDS = ("git_username", "git_email", "name")
#: a bound on every text field, so a credential stays a small row (the service's own limits are
#: not documented)
_MAX_TEXT = 1024


class GitCredentialsApi:
    def __init__(self, store: Store, git_store: GitStore) -> None:
        self.store = store
        self.git = git_store

    def register(self, router: Router) -> None:
        router.api("POST", "git-credentials", _V, self.create)
        router.api("GET", "git-credentials", _V, self.list)
        router.api_prefix("GET", "git-credentials/", _V, self.get)
        router.api_prefix("PATCH", "git-credentials/", _V, self.update)
        router.api_prefix("DELETE", "git-credentials/", _V, self.delete)

    def _principal(self, req: Request) -> None:
        principal = req.integer("principal_id")
        if principal is not None:
            raise not_found(f"Service principal {principal} does not exist.")

    def _existing(self, req: Request) -> CredentialRecord:
        text = req.route.removeprefix("git-credentials/")
        if not text.isdigit():
            raise bad_request(f"Invalid credential id: '{text[:40]}'")
        credential = self.git.credential(int(text))
        if credential is None:
            raise not_found(f"Credential {text} does not exist.")
        return credential

    def create(self, req: Request) -> dict[str, Any]:
        provider = _provider(req)
        fields = _texts(req)
        _check_token(req)
        self._principal(req)
        default = req.flag(
            "is_default_for_provider",
            default=not any(c.git_provider == provider for c in self.git.credentials()),
        )
        credential = CredentialRecord(
            credential_id=self.store.next_id("git_credential"),
            git_provider=provider,
            git_username=fields.get("git_username"),
            git_email=fields.get("git_email"),
            name=fields.get("name"),
            is_default_for_provider=default,
        )
        self.git.put_credential(credential)
        return credential.to_api()

    def list(self, req: Request) -> dict[str, Any]:
        self._principal(req)
        return {"credentials": [c.to_api() for c in self.git.credentials()]}

    def get(self, req: Request) -> dict[str, Any]:
        self._principal(req)
        return self._existing(req).to_api()

    def update(self, req: Request) -> dict[str, Any]:
        existing = self._existing(req)
        provider = _provider(req)
        fields = _texts(req)
        _check_token(req)
        self._principal(req)
        default = req.flag("is_default_for_provider", default=existing.is_default_for_provider)
        self.git.put_credential(
            CredentialRecord(
                credential_id=existing.credential_id,
                git_provider=provider,
                git_username=fields.get("git_username", existing.git_username),
                git_email=fields.get("git_email", existing.git_email),
                name=fields.get("name", existing.name),
                is_default_for_provider=default,
            )
        )
        return {}

    def delete(self, req: Request) -> dict[str, Any]:
        existing = self._existing(req)
        self._principal(req)
        self.git.delete_credential(existing.credential_id)
        return {}


def _provider(req: Request) -> str:
    value = req.required_text("git_provider")
    provider = canonical_provider(value)
    if provider is None:
        raise bad_request(f"Invalid Git provider: {value[:100]}")
    return provider


def _texts(req: Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in _TEXT_FIELDS:
        value = req.text(name)
        if value is not None:
            if len(value) > _MAX_TEXT:
                raise bad_request(f"Invalid {name}: at most {_MAX_TEXT} characters")
            out[name] = value
    return out


def _check_token(req: Request) -> None:
    """A token must be a string; it is checked and dropped, never kept or echoed."""
    value = req.get("personal_access_token")
    if value is not None and not isinstance(value, str):
        raise bad_request("Invalid personal_access_token: expected a string")
