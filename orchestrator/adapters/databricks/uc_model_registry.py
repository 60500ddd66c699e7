"""Registering a model version in Unity Catalog over MLflow's REST API, the calls MLflow's
``UcModelRegistryStore.create_model_version`` makes, without the ``mlflow`` package:

1. ``unity-catalog/registered-models/create`` (an existing model is fine);
2. the model's files, read from where MLflow logged them (``model_files.py``): Unity Catalog
   keeps a version's files in the catalog's storage, not in the experiment's;
3. ``unity-catalog/model-versions/create`` with the source, run, logged model and the build's
   tags (the version is ``PENDING_REGISTRATION``);
4. ``model-versions/generate-temporary-credentials`` (``MODEL_VERSION_OPERATION_READ_WRITE``)
   and the files written with them (``uc_storage.py``);
5. ``model-versions/finalize`` (the version is ``READY``), then
   ``registered-models/alias``.

A version whose files could not be written is deleted again (best effort): MLflow leaves it
``PENDING_REGISTRATION``, which no one can load.

MLflow's client refuses a model without a signature for Unity Catalog
(``_validate_model_signature``), but that check is the client's: the registry takes a
version without one (MLflow's own ``copy_model_version`` skips the check,
``bypass_signature_validation``), so this path does not require it. A ``source: file`` model
(an R ``.rds``, say) has no signature to give.

Not sent: the lineage header (``X-Databricks-Lineage-Identifier``: notebook and job of the
run) and ``run_tracking_server_id`` (the workspace id of the run, from the
``X-Databricks-Org-Id`` response header), which MLflow adds so Catalog Explorer links the
version to its run; nor ``feature_deps`` and ``model_version_dependencies``.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.adapters.databricks.mlflow_rest import call, error_code
from orchestrator.adapters.databricks.model_files import download_model
from orchestrator.adapters.databricks.model_registry import version_request, version_url
from orchestrator.adapters.databricks.uc_storage import write_version_files
from orchestrator.adapters.databricks.values import LoggedModel, RegisteredVersion
from orchestrator.errors import InfrastructureError

if TYPE_CHECKING:
    from orchestrator.adapters.databricks.client import SdkClient

__all__ = ["register_uc"]

_UC = "mlflow/unity-catalog"


def _ensure_model(client: SdkClient, name: str) -> None:
    try:
        call(
            client,
            "POST",
            f"{_UC}/registered-models/create",
            f"creating model {name} in Unity Catalog",
            body={"name": name},
        )
    except InfrastructureError as exc:
        if error_code(exc) != "RESOURCE_ALREADY_EXISTS":
            raise


def _create_version(
    client: SdkClient, name: str, model: LoggedModel, tags: Mapping[str, str]
) -> dict[str, Any]:
    body = version_request(name, model, tags)
    made = (
        call(
            client,
            "POST",
            f"{_UC}/model-versions/create",
            f"registering model {name} in Unity Catalog",
            body=body,
        ).get("model_version")
        or {}
    )
    if not made.get("version"):
        raise InfrastructureError(f"registering model {name}: Unity Catalog gave no version")
    return dict(made)


def _write_files(
    client: SdkClient, name: str, version: str, location: str, model: LoggedModel
) -> None:
    credentials = (
        call(
            client,
            "POST",
            f"{_UC}/model-versions/generate-temporary-credentials",
            f"model {name} version {version}: asking for write credentials",
            body={
                "name": name,
                "version": version,
                "operation": "MODEL_VERSION_OPERATION_READ_WRITE",
            },
        ).get("credentials")
        or {}
    )
    with tempfile.TemporaryDirectory(prefix="orchestrator-model-") as scratch:
        folder = Path(scratch)
        files = download_model(client, model, folder)
        write_version_files(
            client,
            name=name,
            version=version,
            storage_location=location,
            credentials=credentials,
            folder=folder,
            files=files,
        )


def _delete_version(client: SdkClient, name: str, version: str) -> None:
    with contextlib.suppress(InfrastructureError):  # the write's error is the one to report
        call(
            client,
            "DELETE",
            f"{_UC}/model-versions/delete",
            f"deleting model {name} version {version}",
            body={"name": name, "version": version},
        )


def register_uc(
    client: SdkClient,
    *,
    name: str,
    model: LoggedModel,
    tags: Mapping[str, str],
    alias: str | None,
) -> RegisteredVersion:
    """A new version of ``name`` (``catalog.schema.model``) in Unity Catalog from ``model``,
    its files copied into the catalog's storage, tagged, finalized, with ``alias`` set."""
    _ensure_model(client, name)
    made = _create_version(client, name, model, tags)
    version = str(made["version"])
    try:
        _write_files(client, name, version, str(made.get("storage_location") or ""), model)
    except BaseException:
        _delete_version(client, name, version)
        raise
    call(
        client,
        "POST",
        f"{_UC}/model-versions/finalize",
        f"finalizing model {name} version {version}",
        body={"name": name, "version": version},
    )
    if alias:
        call(
            client,
            "POST",
            f"{_UC}/registered-models/alias",
            f"setting alias {alias} of model {name}",
            body={"name": name, "alias": alias, "version": version},
        )
    host = client.config.host or ""
    url = version_url(host, "unity-catalog", name, version)
    return RegisteredVersion("unity-catalog", name, version, url, model.source, alias)
