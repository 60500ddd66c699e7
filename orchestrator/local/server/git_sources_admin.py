"""``/local-admin/git-sources``: where the local workspace clones a remote Git URL from.

The local workspace reaches no Git provider. A build aimed at it registers its own checkout as
the repository behind the URL its job settings and Git folders carry, so those keep the real
URL (``https://github.com/org/repo.git``) and the clone comes from this machine::

    POST /local-admin/git-sources  {"url": "https://github.com/org/repo.git",
                                    "path": "/abs/path/to/checkout"}
    -> 200 {"url": "https://github.com/org/repo.git", "path": "/abs/path/to/checkout"}
    GET  /local-admin/git-sources
    -> 200 {"git_sources": [{"url": ..., "path": ...}, ...]}

``path`` is an absolute path of a git repository (a work tree or a bare repository) on this
machine; registering a URL again replaces its path. URLs are matched without credentials,
trailing ``/`` and ``.git``, case-insensitively; a user name or token in one is never kept or
answered. A local path or ``file://`` URL needs no registration. Like all of
``/local-admin/``, these need the workspace's bearer token.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.local.api.routing import Request, Response, Router
from orchestrator.local.state.api_error import bad_request
from orchestrator.local.state.git_commands import GitError, absolute_git_dir
from orchestrator.local.state.git_store import GitStore, without_credentials

__all__ = ["GIT_SOURCES_PATH", "GitSourcesAdmin"]

GIT_SOURCES_PATH = "/local-admin/git-sources"


class GitSourcesAdmin:
    def __init__(self, git_store: GitStore) -> None:
        self.git = git_store

    def register(self, router: Router) -> None:
        router.plain("GET", GIT_SOURCES_PATH, self.list)
        router.plain("POST", GIT_SOURCES_PATH, self.register_source)

    def list(self, req: Request) -> Response:
        sources = [{"url": url, "path": str(path)} for url, path in self.git.sources()]
        return Response.json({"git_sources": sources})

    def register_source(self, req: Request) -> Response:
        url = req.required_text("url").strip()
        raw = req.required_text("path")
        path = Path(raw)
        if not path.is_absolute():
            raise bad_request(f"Invalid path: '{raw[:200]}' is not an absolute path")
        try:
            absolute_git_dir(path)
        except GitError as exc:
            raise bad_request(
                f"Invalid path: {raw[:200]} is not a git repository ({exc})"
            ) from None
        self.git.register_source(url, path)
        return Response.json({"url": without_credentials(url), "path": str(path)})
