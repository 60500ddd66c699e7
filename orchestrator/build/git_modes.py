"""The Git deploy modes: a build's commit run the way Databricks runs code from Git.

* ``git-folder``: the build folder is a Git folder (Repos API) checked out at the build's
  branch and verified to be at the build's commit; the repo root is on ``sys.path`` there, as
  in any Git folder, and a commit pushed later does not change the folder.
* ``git``: nothing is uploaded; the build's job carries ``git_source`` pinned to the build's
  commit (``git_commit``) and its notebook tasks run ``source: GIT``, so all tasks of the run
  use one snapshot of that commit (the run records ``git_snapshot.used_commit``, which the
  build checks). A job per build keeps concurrent builds of one repo apart, each at its own
  commit, and each visible in the Jobs UI (``run-now`` takes no ``git_source``, a job does).

The repository is named by ``deploy.git_url``/``deploy.git_provider``, else by the CI (Azure
DevOps' ``BUILD_REPOSITORY_URI`` and ``BUILD_REPOSITORY_PROVIDER``, GitHub's
``GITHUB_SERVER_URL``/``GITHUB_REPOSITORY``), else by the checkout's ``origin``; the provider by
the URL's host when nothing names it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from orchestrator.config.context import BuildContext, run_git
from orchestrator.config.schema import BuildConfig
from orchestrator.errors import UsageError

__all__ = ["GitRepo", "git_repo", "in_git_folder", "on_git_source"]

_ADO_PROVIDERS = {
    "tfsgit": "azureDevOpsServices",
    "github": "gitHub",
    "githubenterprise": "gitHubEnterprise",
    "bitbucket": "bitbucketCloud",
}
_HOSTS = (
    ("github.com", "gitHub"),
    ("dev.azure.com", "azureDevOpsServices"),
    ("visualstudio.com", "azureDevOpsServices"),
    ("gitlab.com", "gitLab"),
    ("bitbucket.org", "bitbucketCloud"),
    ("amazonaws.com", "awsCodeCommit"),
)


@dataclass(frozen=True)
class GitRepo:
    """The repository a Git-mode build runs from, at its commit."""

    url: str
    provider: str
    commit: str
    branch: str | None
    checkout: Path  # the local checkout (its top level), for a workspace on this machine
    notebooks: str  # ``paths.notebooks`` relative to the repository's root ("" for the root)


def _provider_of(url: str) -> str | None:
    host = (urlsplit(url).hostname or "").lower()
    return next((p for suffix, p in _HOSTS if host == suffix or host.endswith("." + suffix)), None)


def git_repo(config: BuildConfig, context: BuildContext, environ: Mapping[str, str]) -> GitRepo:
    """The repository and commit of a Git-mode build; UsageError when one cannot be told."""
    mode = config.deploy.mode
    top = run_git(["rev-parse", "--show-toplevel"], config.root)
    if top is None:
        raise UsageError(f"deploy.mode {mode}: {config.root} is not in a git checkout")
    checkout = Path(top)
    url = config.deploy.git_url or environ.get("BUILD_REPOSITORY_URI") or None
    if url is None and environ.get("GITHUB_REPOSITORY"):
        server = (environ.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
        url = f"{server}/{environ['GITHUB_REPOSITORY']}"
    url = url or run_git(["config", "--get", "remote.origin.url"], checkout) or str(checkout)
    ado = _ADO_PROVIDERS.get((environ.get("BUILD_REPOSITORY_PROVIDER") or "").lower())
    provider = config.deploy.git_provider or ado or _provider_of(url)
    if provider is None:
        if "://" in url and not url.startswith("file://"):
            raise UsageError(
                f"deploy.git_provider: cannot tell the Git provider of {url}; set it (gitHub, "
                "azureDevOpsServices, gitLab, bitbucketCloud...)"
            )
        provider = "gitHub"  # a local path: only a workspace on this machine reads it
    if not context.commit:
        raise UsageError(f"deploy.mode {mode}: the build's commit is not known (no CI, no git)")
    try:
        notebooks = config.paths.notebooks.resolve().relative_to(checkout.resolve()).as_posix()
    except ValueError:
        raise UsageError(
            f"paths.notebooks {config.paths.notebooks} is outside the git checkout {checkout}"
        ) from None
    return GitRepo(
        url=url,
        provider=provider,
        commit=context.commit,
        branch=context.branch,
        checkout=checkout,
        notebooks="" if notebooks == "." else notebooks,
    )


def _retarget(job: dict[str, Any], build_folder: str, change: Any) -> dict[str, Any]:
    out = copy.deepcopy(job)
    prefix = build_folder.rstrip("/") + "/"
    for task in out.get("tasks") or []:
        notebook = task.get("notebook_task")
        if isinstance(notebook, dict) and str(notebook.get("notebook_path", "")).startswith(prefix):
            change(notebook, str(notebook["notebook_path"])[len(prefix) :])
    return out


def in_git_folder(job: dict[str, Any], repo: GitRepo, *, build_folder: str) -> dict[str, Any]:
    """``job`` for a build folder that is a Git folder of the whole repository: the notebooks
    are under ``paths.notebooks`` of the repository in it."""

    def change(notebook: dict[str, Any], relative: str) -> None:
        notebook["notebook_path"] = str(PurePosixPath(build_folder, repo.notebooks, relative))

    return _retarget(job, build_folder, change)


def on_git_source(job: dict[str, Any], repo: GitRepo, *, build_folder: str) -> dict[str, Any]:
    """``job`` running the build's notebooks from Git at the build's commit."""

    def change(notebook: dict[str, Any], relative: str) -> None:
        notebook["notebook_path"] = str(PurePosixPath(repo.notebooks or ".", relative))
        notebook["source"] = "GIT"

    out = _retarget(job, build_folder, change)
    out["git_source"] = {
        "git_url": repo.url,
        "git_provider": repo.provider,
        "git_commit": repo.commit,
    }
    return out
