"""Writing a Unity Catalog model version's files into the catalog's storage, with what
``model-versions/generate-temporary-credentials`` hands out (MLflow's
``UcModelRegistryStore._get_artifact_repo`` and ``get_artifact_repo_from_storage_info``):

- ``storage_mode: DEFAULT_STORAGE`` (Databricks' default storage; the local workspace's
  answer): each file through a presigned URL of the Files API, ``fs/create-upload-url`` for
  ``/Models/<catalog>/<schema>/<model>/<version>/<file>``, then a ``PUT`` with the headers it
  names (``PresignedUrlArtifactRepository``);
- ``azure_user_delegation_sas`` (Azure Databricks with the metastore's or catalog's own ADLS
  Gen2 storage): the version's ``storage_location`` is an ``abfss://`` URL, written through the
  DFS endpoint with the SAS (create, append, flush), as MLflow's
  ``AzureDataLakeArtifactRepository`` does with ``AzureSasCredential``;
- ``aws_temp_credentials``, ``r2_temp_credentials`` (S3 and R2: requests signed with AWS
  Signature V4, which MLflow leaves to boto3) and ``gcp_oauth_token`` (GCS) are not written
  here: the build stops with one line naming the kind (exit 3). This product targets Azure.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from orchestrator.adapters.databricks.mlflow_rest import call
from orchestrator.adapters.databricks.signed_uploads import put_adls, put_signed
from orchestrator.errors import InfrastructureError

if TYPE_CHECKING:
    from orchestrator.adapters.databricks.client import SdkClient

__all__ = ["CLOUD_KINDS", "write_version_files"]

#: the credential kinds of ``TemporaryCredentials`` (``databricks_uc_registry_messages.proto``)
CLOUD_KINDS = (
    "aws_temp_credentials",
    "azure_user_delegation_sas",
    "gcp_oauth_token",
    "r2_temp_credentials",
)
_ABFSS = re.compile(
    r"abfss://(?P<container>[^@/]+)@(?P<host>[^/]+\.dfs\.core\.[^/]+)(?:/(?P<path>.*))?"
)


def _kind(credentials: Mapping[str, Any]) -> str:
    for kind in CLOUD_KINDS:
        if credentials.get(kind):
            return kind
    return str(credentials.get("storage_mode") or "none")


def _default_storage(
    client: SdkClient, name: str, version: str, folder: Path, files: Sequence[str]
) -> None:
    base = posixpath.join("/Models", *name.split("."), version)
    for path in files:
        signed = call(
            client,
            "POST",
            "fs/create-upload-url",
            f"model {name} version {version}: asking where to write {path}",
            body={"path": f"{base}/{path}"},
        )
        credential = {
            "type": "AWS_PRESIGNED_URL",  # a presigned URL: one PUT with the given headers
            "signed_uri": signed.get("url"),
            "headers": signed.get("headers") or [],
        }
        what = f"model {name} version {version}: writing {path}"
        put_signed(credential, (folder / path).read_bytes(), what=what)


def _azure(
    name: str,
    version: str,
    location: str,
    sas: str,
    folder: Path,
    files: Sequence[str],
    endpoint: str | None,
) -> None:
    match = _ABFSS.fullmatch(location.rstrip("/"))
    if match is None:
        raise InfrastructureError(
            f"model {name} version {version}: Unity Catalog gave an Azure SAS for a storage "
            "location that is not abfss://<container>@<account>.dfs.core.windows.net/..."
        )
    root = f"{(endpoint or 'https://' + match['host']).rstrip('/')}/{match['container']}"
    prefix = match["path"] or ""
    token = sas.lstrip("?")
    for path in files:
        blob = quote(posixpath.join(prefix, path) if prefix else path)
        what = f"model {name} version {version}: writing {path}"
        put_adls(f"{root}/{blob}?{token}", (folder / path).read_bytes(), {}, what=what)


def write_version_files(
    client: SdkClient,
    *,
    name: str,
    version: str,
    storage_location: str,
    credentials: Mapping[str, Any],
    folder: Path,
    files: Sequence[str],
    endpoint: str | None = None,
) -> str:
    """Write ``files`` (relative to ``folder``) as the version's files; the credential kind
    used (named in the error when it is one this module does not write).

    ``endpoint`` replaces the DFS endpoint an ``abfss://`` location names
    (``https://<account>.dfs.core.windows.net``): only tests set it, to a fake DFS server on
    loopback, because no emulator serves the DFS endpoint (Azurite serves Blob only)."""
    kind = _kind(credentials)
    if credentials.get("storage_mode") == "DEFAULT_STORAGE":  # MLflow checks it first too
        _default_storage(client, name, version, folder, files)
        return "DEFAULT_STORAGE"
    if kind == "azure_user_delegation_sas":
        sas = str(credentials[kind].get("sas_token") or "")
        _azure(name, version, storage_location, sas, folder, files, endpoint)
        return kind
    raise InfrastructureError(
        f"model {name} version {version}: Unity Catalog's storage answered {kind} credentials; "
        "the build writes model files with azure_user_delegation_sas (ADLS Gen2) or to "
        "Databricks' default storage only"
    )
