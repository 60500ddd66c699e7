"""What the local workspace keeps about Git: Git folders, Git credentials and where clones come
from, in three tables of the store's database (written through its one connection and lock).

- ``repos``: a Git folder's id (its workspace object's id, as on Databricks), path, remote URL
  and provider as given, branch (``NULL`` when detached), head commit and sparse-checkout
  patterns (``NULL``: not sparse). Its repository is ``<state_dir>/git/<id>.git``.
- ``git_credentials``: provider, user name, email, name and the default flag. The token is
  never kept: nothing here uses it, and a token that is never written cannot leak.
- ``git_sources``: the registry of remote URLs (``https://github.com/org/repo.git``) and the
  local repository that stands for each (``POST /local-admin/git-sources``), keyed by the URL
  without credentials, ``.git`` suffix and case.

:func:`source_repository` is the one answer to "where does this ``git_url`` come from": a local
path or ``file://`` URL as it is, else the registry, else :class:`UnknownGitUrl` naming it.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.local.state.store import Store

__all__ = [
    "PROVIDERS",
    "CredentialRecord",
    "GitStore",
    "RepoRecord",
    "UnknownGitUrl",
    "canonical_provider",
    "source_key",
    "source_repository",
    "without_credentials",
]

#: the Git providers the Repos, Git Credentials and Jobs APIs name (case-insensitive there),
#: in their documented spelling
PROVIDERS = (
    "gitHub",
    "bitbucketCloud",
    "gitLab",
    "azureDevOpsServices",
    "gitHubEnterprise",
    "bitbucketServer",
    "gitLabEnterpriseEdition",
    "awsCodeCommit",
)
_BY_LOWER = {name.lower(): name for name in PROVIDERS}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS repos (
    repo_id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    provider TEXT NOT NULL,
    branch TEXT,
    head_commit_id TEXT NOT NULL,
    sparse_patterns TEXT
);
CREATE TABLE IF NOT EXISTS git_credentials (
    credential_id INTEGER PRIMARY KEY,
    git_provider TEXT NOT NULL,
    git_username TEXT,
    git_email TEXT,
    name TEXT,
    is_default INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS git_sources (
    url_key TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    path TEXT NOT NULL
);
"""


def canonical_provider(value: object) -> str | None:
    """A provider name in its documented spelling; ``None`` when it is not one."""
    return _BY_LOWER.get(value.lower()) if isinstance(value, str) else None


@dataclass(frozen=True)
class RepoRecord:
    repo_id: int
    path: str
    url: str
    provider: str
    branch: str | None
    head_commit_id: str
    sparse_patterns: tuple[str, ...] | None

    def to_api(self) -> dict[str, Any]:
        """The Repos API's ``RepoInfo`` (and ``CreateRepoResponse``/``GetRepoResponse``)."""
        out: dict[str, Any] = {
            "id": self.repo_id,
            "path": self.path,
            "url": self.url,
            "provider": self.provider,
            "head_commit_id": self.head_commit_id,
        }
        if self.branch is not None:
            out["branch"] = self.branch
        if self.sparse_patterns is not None:
            out["sparse_checkout"] = {"patterns": list(self.sparse_patterns)}
        return out


@dataclass(frozen=True)
class CredentialRecord:
    credential_id: int
    git_provider: str
    git_username: str | None
    git_email: str | None
    name: str | None
    is_default_for_provider: bool

    def to_api(self) -> dict[str, Any]:
        """The Git Credentials API's ``CredentialInfo``: never a token."""
        out: dict[str, Any] = {
            "credential_id": self.credential_id,
            "git_provider": self.git_provider,
            "is_default_for_provider": self.is_default_for_provider,
        }
        for key in ("git_username", "git_email", "name"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


class UnknownGitUrl(LookupError):
    """A ``git_url`` the local workspace has no repository for; the message names it."""


class GitStore:
    """The Git tables of ``store``'s database (made when the workspace starts, so a refused
    request never changes the database's schema)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.git_root = store.state_dir / "git"
        with store.transaction() as db:
            for statement in _SCHEMA.strip().split(";\n"):
                if statement.strip():
                    db.execute(statement)

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.store.transaction() as db:
            return list(db.execute(sql, args).fetchall())

    def _write(self, sql: str, args: Sequence[Any] = ()) -> int:
        with self.store.transaction() as db:
            return int(db.execute(sql, args).rowcount)

    # --- Git folders ---------------------------------------------------------------------
    def git_dir(self, repo_id: int) -> Path:
        return self.git_root / f"{repo_id}.git"

    def put_repo(self, repo: RepoRecord) -> None:
        patterns = None if repo.sparse_patterns is None else json.dumps(list(repo.sparse_patterns))
        self._write(
            "INSERT OR REPLACE INTO repos VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                repo.repo_id,
                repo.path,
                repo.url,
                repo.provider,
                repo.branch,
                repo.head_commit_id,
                patterns,
            ),
        )

    def repo(self, repo_id: int) -> RepoRecord | None:
        rows = self._query("SELECT * FROM repos WHERE repo_id = ?", (repo_id,))
        return _repo(rows[0]) if rows else None

    def repo_at(self, path: str) -> RepoRecord | None:
        rows = self._query("SELECT * FROM repos WHERE path = ?", (path,))
        return _repo(rows[0]) if rows else None

    def repos(self) -> list[RepoRecord]:
        """Every Git folder, by path."""
        return [_repo(row) for row in self._query("SELECT * FROM repos ORDER BY path")]

    def repos_under(self, path: str) -> list[RepoRecord]:
        """The Git folders at ``path`` or below it."""
        prefix = "/" if path == "/" else path.rstrip("/") + "/"
        return [r for r in self.repos() if r.path == path or r.path.startswith(prefix)]

    def delete_repo(self, repo_id: int) -> None:
        self._write("DELETE FROM repos WHERE repo_id = ?", (repo_id,))

    # --- Git credentials -----------------------------------------------------------------
    def put_credential(self, credential: CredentialRecord) -> None:
        """Keep ``credential``; when it is its provider's default, the others of that provider
        stop being it (one default per provider)."""
        with self.store.transaction() as db:
            if credential.is_default_for_provider:
                db.execute(
                    "UPDATE git_credentials SET is_default = 0 WHERE git_provider = ?",
                    (credential.git_provider,),
                )
            db.execute(
                "INSERT OR REPLACE INTO git_credentials VALUES (?, ?, ?, ?, ?, ?)",
                (
                    credential.credential_id,
                    credential.git_provider,
                    credential.git_username,
                    credential.git_email,
                    credential.name,
                    int(credential.is_default_for_provider),
                ),
            )

    def credential(self, credential_id: int) -> CredentialRecord | None:
        rows = self._query(
            "SELECT * FROM git_credentials WHERE credential_id = ?", (credential_id,)
        )
        return _credential(rows[0]) if rows else None

    def credentials(self) -> list[CredentialRecord]:
        rows = self._query("SELECT * FROM git_credentials ORDER BY credential_id")
        return [_credential(row) for row in rows]

    def delete_credential(self, credential_id: int) -> bool:
        deleted = self._write(
            "DELETE FROM git_credentials WHERE credential_id = ?", (credential_id,)
        )
        return deleted > 0

    # --- where clones come from ----------------------------------------------------------
    def register_source(self, url: str, path: Path) -> None:
        self._write(
            "INSERT OR REPLACE INTO git_sources VALUES (?, ?, ?)",
            (source_key(url), without_credentials(url), str(path)),
        )

    def sources(self) -> list[tuple[str, Path]]:
        rows = self._query("SELECT url, path FROM git_sources ORDER BY url_key")
        return [(str(url), Path(path)) for url, path in rows]

    def registered(self, url: str) -> Path | None:
        rows = self._query("SELECT path FROM git_sources WHERE url_key = ?", (source_key(url),))
        return Path(rows[0][0]) if rows else None


def without_credentials(url: str) -> str:
    """``url`` without a user name or token (``https://user:token@host/...``)."""
    parts = urllib.parse.urlsplit(url.strip())
    if "@" not in parts.netloc:
        return url.strip()
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


def source_key(url: str) -> str:
    """The registry's key of ``url``: without credentials, trailing ``/`` and ``.git``, in
    lower case (``https://github.com/Org/Repo.git`` and ``https://github.com/org/repo`` are
    one repository, as the providers treat them)."""
    key = without_credentials(url).rstrip("/")
    key = key.removesuffix(".git")
    return key.lower()


def source_repository(git: GitStore, url: str) -> Path:
    """The local repository ``url`` is cloned from: a local path or ``file://`` URL as it
    is, else the one registered for it; :class:`UnknownGitUrl` naming ``url`` otherwise."""
    text = url.strip()
    if text.startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlsplit(text).path))
    if text.startswith("/"):
        return Path(text)
    registered = git.registered(text)
    if registered is not None:
        return registered
    raise UnknownGitUrl(
        f"Git repository {without_credentials(text)} is unknown to the local workspace, which "
        "cannot reach remote Git providers: use a local path or file:// URL, or register a "
        'local checkout for it (POST /local-admin/git-sources {"url": ..., "path": ...})'
    )


def _repo(row: tuple[Any, ...]) -> RepoRecord:
    patterns = None if row[6] is None else tuple(str(p) for p in json.loads(row[6]))
    return RepoRecord(
        repo_id=int(row[0]),
        path=str(row[1]),
        url=str(row[2]),
        provider=str(row[3]),
        branch=None if row[4] is None else str(row[4]),
        head_commit_id=str(row[5]),
        sparse_patterns=patterns,
    )


def _credential(row: tuple[Any, ...]) -> CredentialRecord:
    return CredentialRecord(
        credential_id=int(row[0]),
        git_provider=str(row[1]),
        git_username=row[2],
        git_email=row[3],
        name=row[4],
        is_default_for_provider=bool(row[5]),
    )
