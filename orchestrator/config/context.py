"""The CI context of a build: which provider runs it, and the build's identity.

This module owns detecting *who is building what*: Azure DevOps (``TF_BUILD``), GitHub Actions
(``GITHUB_ACTIONS``) or a plain git checkout, and turning that into a frozen
:class:`BuildContext`. It also owns the rule for the two values that become path segments in the
workspace and in storage (the repo name and the build id): :func:`validate_segment`.

Precedence for the two identity values: explicit arguments (CLI flags) > ``ORCHESTRATOR_BUILD_ID``
/ ``ORCHESTRATOR_REPO_NAME`` > what the CI provider says > git. The environment is always passed
in as a mapping; nothing here reads ``os.environ``.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from orchestrator.errors import UsageError
from orchestrator.layout import validate_segment

__all__ = [
    "ENV_BUILD_ID",
    "ENV_REPO_NAME",
    "BuildContext",
    "GitRunner",
    "Provider",
    "detect_context",
    "run_git",
    "validate_segment",
]

Provider = Literal["azure-devops", "github-actions", "local"]

#: Runs ``git <args>`` in a folder; returns stripped stdout, or None when git fails or is absent.
GitRunner = Callable[[Sequence[str], Path], str | None]

ENV_BUILD_ID = "ORCHESTRATOR_BUILD_ID"
ENV_REPO_NAME = "ORCHESTRATOR_REPO_NAME"

_PR_REF = re.compile(r"^refs/pull/(\d+)/(?:merge|head)$")
_TRUE = frozenset({"true", "1", "yes", "on"})


@dataclass(frozen=True)
class BuildContext:
    """Who builds what. ``build_id`` and ``repo_name`` are validated path segments."""

    provider: Provider
    build_id: str
    build_number: str
    repo_name: str
    branch: str | None
    commit: str | None
    pull_request: str | None
    url: str | None

    def __post_init__(self) -> None:
        validate_segment(self.repo_name, what="repo name")
        validate_segment(self.build_id, what="build id")


def run_git(args: Sequence[str], cwd: Path) -> str | None:
    """The default :data:`GitRunner`: a ``git`` subprocess with a short timeout."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    out = done.stdout.strip()
    return out or None


def detect_context(
    *,
    environ: Mapping[str, str],
    cwd: Path,
    build_id: str | None = None,
    repo_name: str | None = None,
    git: GitRunner = run_git,
    now: Callable[[], datetime] | None = None,
    entropy: Callable[[], str] | None = None,
) -> BuildContext:
    """Detect the CI provider from ``environ`` and describe the build.

    ``build_id`` / ``repo_name`` are the CLI flags; they win over ``ORCHESTRATOR_BUILD_ID`` /
    ``ORCHESTRATOR_REPO_NAME``, which win over the provider's variables. ``git``, ``now`` and
    ``entropy`` are injectable for tests (the local build id is
    ``<UTC timestamp>-<short sha>-<6 hex>``).
    """
    build_id = build_id or environ.get(ENV_BUILD_ID) or None
    repo_name = repo_name or environ.get(ENV_REPO_NAME) or None
    if _flag(environ, "TF_BUILD"):
        ctx = _azure_devops(environ)
    elif _flag(environ, "GITHUB_ACTIONS"):
        ctx = _github_actions(environ)
    else:
        ctx = _local(
            cwd,
            git=git,
            now=now or (lambda: datetime.now(UTC)),
            entropy=entropy or (lambda: secrets.token_hex(3)),
            need_build_id=build_id is None,
        )
    return BuildContext(
        provider=ctx.provider,
        build_id=build_id or ctx.build_id,
        build_number=ctx.build_number or build_id or ctx.build_id,
        repo_name=_repo_hint(repo_name or ctx.repo_name, explicit=repo_name is not None),
        branch=ctx.branch,
        commit=ctx.commit,
        pull_request=ctx.pull_request,
        url=ctx.url,
    )


@dataclass(frozen=True)
class _Detected:
    provider: Provider
    build_id: str
    build_number: str
    repo_name: str
    branch: str | None = None
    commit: str | None = None
    pull_request: str | None = None
    url: str | None = None


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() in _TRUE


def _repo_hint(name: str, *, explicit: bool) -> str:
    """Validate the repo name, telling the user how to override a detected one."""
    try:
        return validate_segment(name, what="repo name")
    except UsageError as exc:
        if explicit:
            raise
        raise UsageError(f"{exc} (set it with --repo-name or {ENV_REPO_NAME})") from None


def _required(environ: Mapping[str, str], name: str, provider: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise UsageError(f"{provider} detected but {name} is not set")
    return value


def _last_segment(name: str) -> str:
    """``owner/repo`` (GitHub, or a GitHub repo built by Azure DevOps) -> ``repo``."""
    return name.rstrip("/").rsplit("/", 1)[-1]


def _branch_of(ref: str | None) -> str | None:
    if not ref:
        return None
    if ref.startswith("refs/heads/"):
        return ref.removeprefix("refs/heads/")
    return ref


def _pr_of(ref: str | None) -> str | None:
    match = _PR_REF.match(ref or "")
    return match.group(1) if match else None


def _azure_devops(environ: Mapping[str, str]) -> _Detected:
    build_id = _required(environ, "BUILD_BUILDID", "Azure DevOps (TF_BUILD)")
    repo = _required(environ, "BUILD_REPOSITORY_NAME", "Azure DevOps (TF_BUILD)")
    source_branch = environ.get("BUILD_SOURCEBRANCH") or None
    pull_request = (
        environ.get("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER")
        or environ.get("SYSTEM_PULLREQUEST_PULLREQUESTID")
        or _pr_of(source_branch)
    )
    branch = environ.get("SYSTEM_PULLREQUEST_SOURCEBRANCH") if pull_request else None
    collection = environ.get("SYSTEM_COLLECTIONURI", "").rstrip("/")
    project = environ.get("SYSTEM_TEAMPROJECT", "")
    url = (
        f"{collection}/{quote(project)}/_build/results?buildId={quote(build_id)}"
        if collection and project
        else None
    )
    return _Detected(
        provider="azure-devops",
        build_id=build_id,
        build_number=environ.get("BUILD_BUILDNUMBER") or build_id,
        repo_name=_last_segment(repo),
        branch=_branch_of(branch or source_branch),
        commit=environ.get("BUILD_SOURCEVERSION") or None,
        pull_request=pull_request or None,
        url=url,
    )


def _github_actions(environ: Mapping[str, str]) -> _Detected:
    run_id = _required(environ, "GITHUB_RUN_ID", "GitHub Actions (GITHUB_ACTIONS)")
    repository = _required(environ, "GITHUB_REPOSITORY", "GitHub Actions (GITHUB_ACTIONS)")
    attempt = environ.get("GITHUB_RUN_ATTEMPT") or "1"
    ref = environ.get("GITHUB_REF") or None
    server = (environ.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    return _Detected(
        provider="github-actions",
        build_id=f"{run_id}-{attempt}",
        build_number=environ.get("GITHUB_RUN_NUMBER") or run_id,
        repo_name=_last_segment(repository),
        branch=environ.get("GITHUB_HEAD_REF") or environ.get("GITHUB_REF_NAME") or _branch_of(ref),
        commit=environ.get("GITHUB_SHA") or None,
        pull_request=_pr_of(ref),
        url=f"{server}/{repository}/actions/runs/{run_id}/attempts/{attempt}",
    )


def _local(
    cwd: Path,
    *,
    git: GitRunner,
    now: Callable[[], datetime],
    entropy: Callable[[], str],
    need_build_id: bool,
) -> _Detected:
    toplevel = git(["rev-parse", "--show-toplevel"], cwd)
    origin = git(["config", "--get", "remote.origin.url"], cwd) if toplevel else None
    repo = _repo_from_url(origin) if origin else None
    repo = repo or (Path(toplevel).name if toplevel else cwd.resolve().name)
    commit = git(["rev-parse", "--verify", "-q", "HEAD"], cwd) if toplevel else None
    branch = git(["symbolic-ref", "-q", "--short", "HEAD"], cwd) if toplevel else None
    build_id = ""
    if need_build_id:
        stamp = now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        build_id = f"{stamp}-{commit[:7] if commit else 'nogit'}-{entropy()}"
    return _Detected(
        provider="local",
        build_id=build_id,
        build_number=build_id,
        repo_name=repo,
        branch=branch,
        commit=commit,
    )


def _repo_from_url(url: str) -> str | None:
    """``git@host:org/repo.git`` / ``https://host/org/repo`` / a path -> ``repo``; None when
    the URL does not name it (a clone of ``..``: the checkout's folder name is used then)."""
    parts = [part for part in re.split(r"[/:\\]", url.strip()) if part not in ("", ".")]
    tail = parts[-1].removesuffix(".git") if parts else ""
    return tail if tail and tail != ".." else None
