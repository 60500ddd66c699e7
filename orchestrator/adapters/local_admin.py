"""The local workspace's own API, ``/local-admin`` (Databricks has no such API): what a build
tells the local Jobs UI that the Jobs API cannot carry.

Plain HTTP with the standard library (no SDK: this is not a Databricks API), with the
workspace's token and a short timeout. Nothing here can fail a build: a workspace that does
not take the call answers False.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

__all__ = ["LocalAdminClient"]

log = logging.getLogger(__name__)

_TIMEOUT = 5.0


class LocalAdminClient:
    """``/local-admin`` of the local workspace at ``host`` (implements ``ports.LocalAdmin``)."""

    def __init__(self, host: str, token: str, *, timeout: float = _TIMEOUT) -> None:
        self._base = host.rstrip("/")
        self._token = token
        self._timeout = timeout

    def __repr__(self) -> str:  # the token stays out of every repr
        return f"LocalAdminClient({self._base!r})"

    def record_test_counts(
        self,
        run_id: int,
        counts: Mapping[str, int],
        failed: Sequence[Mapping[str, object]] = (),
    ) -> bool:
        """``POST /local-admin/runs/test-counts``: the counts and failing tests the run page
        shows."""
        body = {"run_id": run_id, **counts, "failed": list(failed)}
        return self._post("/local-admin/runs/test-counts", body)

    def register_git_source(self, url: str, path: str) -> bool:
        """``POST /local-admin/git-sources``: the checkout the workspace clones ``url`` from."""
        return self._post("/local-admin/git-sources", {"url": url, "path": path})

    def _post(self, path: str, body: Mapping[str, object]) -> bool:
        request = urllib.request.Request(  # noqa: S310 - the configured workspace's URL
            self._base + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {self._token}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as answer:  # noqa: S310
                return bool(200 <= answer.status < 300)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.debug("%s%s was not taken: %s", self._base, path, exc)
            return False
