"""Git folders (the Repos API) and Git credentials, through the REST API as JSON.

- :func:`credential_providers`: the Git providers the build's identity has credentials for
  (``GET /api/2.0/git-credentials``); the workspace reaches the Git provider with them.
- :func:`create_git_folder`: ``POST /api/2.0/repos`` at a workspace path, with sparse checkout
  patterns when the build needs part of the repository only.
- :func:`check_out`: ``PATCH /api/2.0/repos/<id>`` to a branch, then the folder's
  ``head_commit_id`` (the Repos API checks out branches and tags, not commits: the caller
  verifies the head is the build's commit).
- :func:`git_folder_at` and :func:`delete_git_folder`: find a Git folder by its path
  (``GET /api/2.0/repos?path_prefix=``) and delete it (``DELETE /api/2.0/repos/<id>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from orchestrator.adapters.databricks.run_views import mapping
from orchestrator.adapters.databricks.sdk_errors import sdk_errors
from orchestrator.errors import InfrastructureError

if TYPE_CHECKING:
    from orchestrator.adapters.databricks.client import SdkClient

__all__ = [
    "add_credential",
    "check_out",
    "create_git_folder",
    "credential_providers",
    "delete_git_folder",
    "git_folder_at",
]

_REPOS = "/api/2.0/repos"
_CREDENTIALS = "/api/2.0/git-credentials"


def _json(answer: Any) -> dict[str, Any]:
    return answer if isinstance(answer, dict) else {}


def credential_providers(client: SdkClient) -> set[str]:
    """The Git providers (lowercase) the calling identity has credentials for."""
    with sdk_errors("listing the Git credentials"):
        answer = _json(client.api_client.do("GET", _CREDENTIALS))
    return {
        str(mapping(c).get("git_provider") or "").lower() for c in answer.get("credentials") or []
    } - {""}


def add_credential(client: SdkClient, provider: str, username: str) -> None:
    """A credential entry for ``provider`` (for the embedded local workspace only: it reaches
    no Git provider, its sources are checkouts on this machine)."""
    with sdk_errors(f"adding Git credentials for {provider}"):
        client.api_client.do(
            "POST",
            _CREDENTIALS,
            body={"git_provider": provider, "git_username": username, "personal_access_token": ""},
        )


def create_git_folder(
    client: SdkClient, *, url: str, provider: str, path: str, sparse: Sequence[str] = ()
) -> int:
    """A Git folder of ``url`` at ``path``; its id."""
    body: dict[str, Any] = {"url": url, "provider": provider, "path": path}
    if sparse:
        body["sparse_checkout"] = {"patterns": list(sparse)}
    with sdk_errors(f"creating the Git folder {path} of {url}"):
        answer = _json(client.api_client.do("POST", _REPOS, body=body))
    repo_id = answer.get("id")
    if not isinstance(repo_id, int):
        raise InfrastructureError(f"repos create of {path} returned no id")
    return repo_id


def check_out(client: SdkClient, repo_id: int, *, branch: str) -> str | None:
    """Check the Git folder out at ``branch``; its head commit after that."""
    with sdk_errors(f"checking out {branch} in Git folder {repo_id}"):
        client.api_client.do("PATCH", f"{_REPOS}/{repo_id}", body={"branch": branch})
        answer = _json(client.api_client.do("GET", f"{_REPOS}/{repo_id}"))
    head = answer.get("head_commit_id")
    return head if isinstance(head, str) else None


def git_folder_at(client: SdkClient, path: str) -> int | None:
    """The id of the Git folder exactly at ``path``, or None."""
    query: dict[str, Any] = {"path_prefix": path}
    with sdk_errors(f"looking for a Git folder at {path}"):
        while True:
            answer = _json(client.api_client.do("GET", _REPOS, query=query))
            for repo in answer.get("repos") or []:
                item = mapping(repo)
                if item.get("path") == path and isinstance(item.get("id"), int):
                    return int(item["id"])
            token = answer.get("next_page_token")
            if not token:
                return None
            query["next_page_token"] = token


def delete_git_folder(client: SdkClient, path: str) -> bool:
    """Delete the Git folder at ``path``; False when there is none."""
    repo_id = git_folder_at(client, path)
    if repo_id is None:
        return False
    with sdk_errors(f"deleting the Git folder {path}"):
        client.api_client.do("DELETE", f"{_REPOS}/{repo_id}")
    return True
