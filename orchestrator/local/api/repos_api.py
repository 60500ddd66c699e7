"""Repos API 2.0 of the local workspace: Git folders backed by real git repositories.

``POST /api/2.0/repos`` (create), ``GET /api/2.0/repos`` (list, ``path_prefix`` and
``next_page_token``), ``GET``/``PATCH``/``DELETE /api/2.0/repos/{id}``. Shapes are
databricks-sdk's ``CreateRepoResponse``, ``GetRepoResponse`` and ``ListReposResponse``
(``RepoInfo``: ``id``, ``path``, ``url``, ``provider``, ``branch``, ``head_commit_id``,
``sparse_checkout``); update answers ``{}``.

As documented: a Git folder may be made almost anywhere, and one under ``/Repos`` must be at
``/Repos/{folder}/{repo-name}``; create checks out the remote's default branch (there is no
branch field), update goes to a branch or a tag, or to the latest commit of the folder's
branch when it names neither (the API has no commit field); sparse checkout is chosen at
create and its patterns can only be changed on a folder that has it; a list without a prefix
(or with ``/`` or ``/Workspace``) shows the Git folders under ``/Repos``. The remote is a local
repository (:func:`~orchestrator.local.state.git_store.source_repository`); an unknown URL is
refused naming it. Nothing is enforced about Git credentials beyond a named one existing, and
a user name or token written into a URL is dropped before the URL is kept.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import urllib.parse
from pathlib import Path
from typing import Any

from orchestrator.local.api.routing import Request, Router
from orchestrator.local.state import git_commands as git
from orchestrator.local.state.api_error import (
    ApiError,
    already_exists,
    bad_request,
    invalid_state,
    not_found,
)
from orchestrator.local.state.git_folders import GitFolders, git_folder_of
from orchestrator.local.state.git_store import (
    GitStore,
    RepoRecord,
    UnknownGitUrl,
    canonical_provider,
    source_repository,
    without_credentials,
)
from orchestrator.local.state.git_tree import SNAPSHOT_ROOT
from orchestrator.local.state.limits import normalize_path
from orchestrator.local.state.store import Store

__all__ = ["PAGE_SIZE", "ReposApi"]

#: Git folders per page of ``GET /repos`` (the reference gives no number)
PAGE_SIZE = 20
_V = ("2.0",)
#: hosts whose provider the service knows without being told
_HOST_PROVIDERS = {
    "github.com": "gitHub",
    "gitlab.com": "gitLab",
    "bitbucket.org": "bitbucketCloud",
    "dev.azure.com": "azureDevOpsServices",
}


class ReposApi:
    def __init__(
        self, store: Store, git_store: GitStore, folders: GitFolders, *, user_name: str
    ) -> None:
        self.store = store
        self.git = git_store
        self.folders = folders
        self.user_name = user_name

    def register(self, router: Router) -> None:
        router.api("POST", "repos", _V, self.create)
        router.api("GET", "repos", _V, self.list)
        router.api_prefix("GET", "repos/", _V, self.get)
        router.api_prefix("PATCH", "repos/", _V, self.update)
        router.api_prefix("DELETE", "repos/", _V, self.delete)

    # --- helpers -------------------------------------------------------------------------
    def _repo(self, req: Request) -> RepoRecord:
        text = req.route.removeprefix("repos/")
        if not text.isdigit():
            raise bad_request(f"Invalid repo id: '{text[:40]}'")
        repo = self.git.repo(int(text))
        if repo is None:
            raise not_found(f"Repo {text} does not exist.")
        return repo

    def _credential(self, req: Request) -> None:
        credential_id = req.integer("git_credential_id")
        if credential_id is not None and self.git.credential(credential_id) is None:
            raise not_found(f"Git credential {credential_id} does not exist.")

    def _source(self, url: str) -> Path:
        try:
            return source_repository(self.git, url)
        except UnknownGitUrl as exc:
            raise bad_request(str(exc)) from None

    # --- endpoints -----------------------------------------------------------------------
    def create(self, req: Request) -> dict[str, Any]:
        url = req.required_text("url")
        provider = _provider(req.text("provider"), url)
        path, parents = self._new_path(req.text("path"), url)
        patterns = _patterns(req.get("sparse_checkout"))
        self._credential(req)
        source = self._source(url)
        try:
            repo = self.folders.create(
                path=path,
                url=without_credentials(url),  # a token in a URL is never kept
                provider=provider,
                source=source,
                branch=None,
                sparse_patterns=patterns,
                make_parents=parents,
            )
        except git.GitError as exc:
            raise bad_request(f"Cannot clone {url}: {exc}") from None
        return repo.to_api()

    def _new_path(self, raw: str | None, url: str) -> tuple[str, tuple[str, ...]]:
        """Where a new Git folder goes, checked, and the folders to make for it: the user's
        own ``/Repos`` folder, which a workspace makes for every user, when it is not there."""
        if raw is None:
            name = posixpath.basename(urllib.parse.urlsplit(url).path.rstrip("/"))
            name = name.removesuffix(".git") or "repo"
            raw = f"/Repos/{self.user_name}/{name}"
        path = normalize_path(raw)
        parts = path.strip("/").split("/")
        if parts[0] == "Repos":
            if len(parts) != 3:
                raise bad_request(
                    f"Invalid path {path}: a Git folder in /Repos must be at "
                    "/Repos/{folder}/{repo-name}"
                )
            if path.startswith(SNAPSHOT_ROOT + "/") or parts[1].startswith("."):
                raise bad_request(f"Invalid path {path}: that folder is reserved")
        if self.store.get_object(path) is not None:
            raise already_exists(f"Path ({path}) already exists.")
        parent = posixpath.dirname(path)
        if git_folder_of(self.store, parent) is not None:
            raise bad_request(f"Invalid path {path}: a Git folder cannot be inside a Git folder")
        row = self.store.get_object(parent)
        if row is None and parent == f"/Repos/{self.user_name}":
            return path, ("/Repos", parent)
        if row is None or row.object_type != "DIRECTORY":
            raise not_found(f"The parent folder ({parent}) does not exist.")
        return path, ()

    def list(self, req: Request) -> dict[str, Any]:
        raw = req.text("path_prefix")
        prefix = "/Repos" if raw in (None, "/", "/Workspace", "/Workspace/") else None
        if prefix is None:
            assert raw is not None
            prefix = raw if raw.startswith("/") else "/" + raw
            prefix = (
                prefix.removeprefix("/Workspace") if prefix.startswith("/Workspace/") else prefix
            )
        repos = [r for r in self.git.repos() if r.path.startswith(prefix)]
        after = _after(req.text("next_page_token"))
        if after is not None:
            repos = [r for r in repos if r.path > after]
        shown = repos[:PAGE_SIZE]
        out: dict[str, Any] = {}
        if shown:
            out["repos"] = [r.to_api() for r in shown]
        if len(repos) > PAGE_SIZE:
            out["next_page_token"] = base64.urlsafe_b64encode(shown[-1].path.encode()).decode()
        return out

    def get(self, req: Request) -> dict[str, Any]:
        return self._repo(req).to_api()

    def update(self, req: Request) -> dict[str, Any]:
        repo = self._repo(req)
        branch = req.text("branch")
        tag = req.text("tag")
        if branch is not None and tag is not None:
            raise bad_request("Only one of branch or tag can be given")
        discard = req.flag("dangerously_force_discard_all")
        patterns = None
        if req.get("sparse_checkout") is not None:
            patterns = _patterns(req.get("sparse_checkout"))
            if repo.sparse_patterns is None:
                raise bad_request(f"Sparse checkout is not enabled for the Git folder {repo.path}")
        self._credential(req)
        if branch is None and tag is None and repo.branch is None and patterns is None:
            raise invalid_state(
                f"The Git folder {repo.path} is not on a branch (detached HEAD): update it to "
                "a branch or a tag"
            )
        source = self._source(repo.url)
        try:
            self.folders.update(
                repo,
                source=source,
                branch=branch,
                tag=tag,
                sparse_patterns=patterns,
                discard_changes=discard,
            )
        except git.GitError as exc:
            raise bad_request(f"Cannot update the Git folder {repo.path}: {exc}") from None
        return {}

    def delete(self, req: Request) -> dict[str, Any]:
        self.folders.delete(self._repo(req))
        return {}


def _provider(value: str | None, url: str) -> str:
    if value is None:
        host = (urllib.parse.urlsplit(url).hostname or "").lower()
        inferred = _HOST_PROVIDERS.get(host)
        if inferred is None and host.endswith(".visualstudio.com"):
            inferred = "azureDevOpsServices"
        if inferred is None:
            raise bad_request(f"Missing required field: provider (the provider of {url[:200]})")
        return inferred
    provider = canonical_provider(value)
    if provider is None:
        raise bad_request(f"Invalid Git provider: {value[:100]}")
    return provider


def _patterns(value: object) -> tuple[str, ...] | None:
    try:
        return git.cone_patterns(value)
    except ValueError as exc:
        raise bad_request(str(exc)) from None


def _after(token: str | None) -> str | None:
    if not token:
        return None
    try:
        after = base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, ValueError):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", "Invalid next_page_token") from None
    if not after.startswith("/"):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", "Invalid next_page_token")
    return after
