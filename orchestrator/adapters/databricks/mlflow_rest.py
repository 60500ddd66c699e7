"""One MLflow (or Files API) REST call through databricks-sdk's API client, its errors
translated: the helper the registry modules share, so a real workspace and the local one get
the same requests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from orchestrator.adapters.databricks.sdk_errors import sdk_errors
from orchestrator.errors import InfrastructureError

if TYPE_CHECKING:
    from orchestrator.adapters.databricks.client import SdkClient

__all__ = ["call", "error_code"]


def call(
    client: SdkClient,
    method: str,
    path: str,
    what: str,
    *,
    body: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``method /api/2.0/<path>``; the answer's JSON object ({} for none). ``what`` names
    the action in the one-line error a failure becomes."""
    with sdk_errors(what):
        answer = client.api_client.do(
            method,
            f"/api/2.0/{path}",
            body=dict(body) if body is not None else None,
            query=dict(query) if query is not None else None,
        )
    return answer if isinstance(answer, dict) else {}


def error_code(exc: InfrastructureError) -> str | None:
    """The API's ``error_code`` behind a translated error (``RESOURCE_ALREADY_EXISTS``...)."""
    return getattr(exc.__cause__, "error_code", None)
