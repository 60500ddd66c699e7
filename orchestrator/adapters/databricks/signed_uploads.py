"""Writing (and reading) a file where MLflow keeps artifacts, with the workspace's signed URLs.

On Databricks the MLflow client never sends artifact bytes to the workspace: it asks
``artifacts/credentials-for-write`` for an ``ArtifactCredentialInfo`` per file (a signed URL,
its type and the headers to send) and writes to the cloud storage behind the workspace
(``mlflow/store/artifact/databricks_artifact_repo.py``, ``_upload_to_cloud``). This module does
the same for the small files the build logs (a model file and its ``MLmodel``), one request per
file where the storage allows it:

- ``AWS_PRESIGNED_URL``, ``GCP_SIGNED_URL``: ``PUT`` with the given headers (MLflow's
  ``_signed_url_upload_file``; it goes multipart only above 500 MB);
- ``AZURE_SAS_URI``: one Put Blob (``x-ms-blob-type: BlockBlob``), where MLflow puts blocks and
  a block list: Azure takes a block blob of up to 5,000 MiB in one Put Blob;
- ``AZURE_ADLS_GEN2_SAS_URI``: create, append, flush (the DFS endpoint's three steps, as
  MLflow's ``put_adls_file_creation``, ``patch_adls_file_upload``, ``patch_adls_flush``).

The local workspace answers ``AWS_PRESIGNED_URL`` to URLs of its own (``local/api/
mlflow_artifacts.py``); the Azure forms follow Azure's REST reference and are not exercised
here. Reading (:func:`fetch_signed`, for the files a model version is copied from) is one
``GET`` for every kind: a presigned URL, a Blob SAS and a DFS SAS all read that way (MLflow's
``download_file_using_http_uri``). Plain ``requests`` (databricks-sdk's own dependency): the
signed URL carries the authorization, so no workspace token goes with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from orchestrator.errors import InfrastructureError

__all__ = ["fetch_signed", "put_adls", "put_signed"]

_TIMEOUT = 300.0


def _headers(credential: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for header in credential.get("headers") or []:
        if isinstance(header, Mapping) and header.get("name"):
            out[str(header["name"])] = str(header.get("value") or "")
    return out


def _check(answer: requests.Response, what: str) -> None:
    if answer.status_code >= 300:
        # the URL holds a signature: never put it in a message
        raise InfrastructureError(
            f"{what}: the storage answered {answer.status_code} {answer.reason}"
        )


def put_signed(credential: Mapping[str, Any], data: bytes, *, what: str) -> None:
    """Write ``data`` where ``credential`` (an ``ArtifactCredentialInfo``) points."""
    kind = str(credential.get("type") or "")
    url = str(credential.get("signed_uri") or "")
    headers = _headers(credential)
    if not url:
        raise InfrastructureError(f"{what}: the workspace gave no signed URL")
    try:
        if kind in ("AWS_PRESIGNED_URL", "GCP_SIGNED_URL"):
            _check(requests.put(url, data=data, headers=headers, timeout=_TIMEOUT), what)
        elif kind == "AZURE_SAS_URI":
            headers["x-ms-blob-type"] = "BlockBlob"
            _check(requests.put(url, data=data, headers=headers, timeout=_TIMEOUT), what)
        elif kind == "AZURE_ADLS_GEN2_SAS_URI":
            put_adls(url, data, headers, what=what)
        else:
            raise InfrastructureError(f"{what}: storage credential type {kind!r} is not known")
    except requests.RequestException as exc:
        raise InfrastructureError(f"{what}: {type(exc).__name__}") from None


def put_adls(url: str, data: bytes, headers: Mapping[str, str], *, what: str) -> None:
    """Create, append, flush: a file written through the DFS endpoint with the SAS in
    ``url`` (MLflow's ``put_adls_file_creation``, ``patch_adls_file_upload``,
    ``patch_adls_flush``). A request that fails is one line naming its exception's type only:
    its message holds the URL, and with it the SAS."""
    joiner = "&" if "?" in url else "?"
    try:
        create = f"{url}{joiner}resource=file"
        _check(requests.put(create, headers=headers, timeout=_TIMEOUT), what)
        if data:
            append = f"{url}{joiner}action=append&position=0"
            _check(requests.patch(append, data=data, headers=headers, timeout=_TIMEOUT), what)
        flush = f"{url}{joiner}action=flush&position={len(data)}"
        _check(requests.patch(flush, headers=headers, timeout=_TIMEOUT), what)
    except requests.RequestException as exc:
        raise InfrastructureError(f"{what}: {type(exc).__name__}") from None


def fetch_signed(credential: Mapping[str, Any], dest: Path, *, what: str) -> None:
    """Read the file ``credential`` (an ``ArtifactCredentialInfo``) points at into ``dest``."""
    url = str(credential.get("signed_uri") or "")
    if not url:
        raise InfrastructureError(f"{what}: the workspace gave no signed URL")
    try:
        with requests.get(
            url, headers=_headers(credential), stream=True, timeout=_TIMEOUT
        ) as answer:
            _check(answer, what)
            with dest.open("wb") as out:
                for chunk in answer.iter_content(chunk_size=1 << 20):
                    out.write(chunk)
    except requests.RequestException as exc:
        raise InfrastructureError(f"{what}: {type(exc).__name__}") from None
