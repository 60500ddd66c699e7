"""A logged model's files, read from MLflow's artifact store the way MLflow's client reads
them from a Databricks workspace: listed through the tracking API, each file fetched from the
signed URL the workspace hands out (``DatabricksArtifactRepository``'s resources,
``mlflow/store/artifact/databricks_artifact_repo_resources.py``).

Unity Catalog keeps a version's files in the catalog's own storage, so registering a model
there copies them (``UcModelRegistryStore._local_model_dir`` downloads the source first, as
this module does):

- an MLflow 3 logged model (``models:/<model id>``): ``logged-models/<id>/artifacts/
  directories`` and ``.../credentials-for-download``;
- a model folder in a run's artifacts (MLflow 2, the R client, ``source: file``):
  ``artifacts/list`` and ``artifacts/credentials-for-read``, relative to the run's artifact
  URI (``runs/get``).
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from orchestrator.adapters.databricks.mlflow_rest import call
from orchestrator.adapters.databricks.signed_uploads import fetch_signed
from orchestrator.errors import InfrastructureError

if TYPE_CHECKING:
    from orchestrator.adapters.databricks.client import SdkClient
    from orchestrator.adapters.databricks.values import LoggedModel

__all__ = ["download_model"]

#: paths per credentials request (a guess: MLflow asks for its files in one request per batch)
_PATHS_PER_REQUEST = 100


def _pages(client: SdkClient, method: str, route: str, what: str, **params: Any) -> list[Any]:
    """Every page of a listing (``files``) or credentials answer, concatenated."""
    key = "files" if method == "GET" else None
    items: list[Any] = []
    token: str | None = None
    while True:
        args = {**params, **({"page_token": token} if token else {})}
        if method == "GET":
            page = call(client, method, route, what, query=args)
        else:
            page = call(client, method, route, what, body=args)
        found = page.get(key) if key else page.get("credentials", page.get("credential_infos"))
        items += found or []
        token = page.get("next_page_token")
        if not token or not found:
            return items


class _Source:
    """Where a model's files are listed and signed: a logged model, or a run's folder."""

    def __init__(self, client: SdkClient, model: LoggedModel) -> None:
        self.client, self.model = client, model
        self.prefix = ""
        if model.model_id is None:
            run = call(
                client,
                "GET",
                "mlflow/runs/get",
                f"reading MLflow run {model.run_id}",
                query={"run_id": model.run_id},
            )
            root = str(run.get("run", {}).get("info", {}).get("artifact_uri") or "").rstrip("/")
            if not root or not model.source.startswith(root + "/"):
                raise InfrastructureError(
                    f"model {model.label}: its source is not in run {model.run_id}'s artifacts"
                )
            self.prefix = model.source[len(root) + 1 :].strip("/")

    def listing(self, path: str) -> list[dict[str, Any]]:
        what = f"listing model {self.model.label}'s files"
        if self.model.model_id is not None:
            route = (
                f"mlflow/logged-models/{quote(self.model.model_id, safe='')}/artifacts/directories"
            )
            files = _pages(self.client, "GET", route, what, artifact_directory_path=path)
        else:
            files = _pages(
                self.client,
                "GET",
                "mlflow/artifacts/list",
                what,
                run_id=self.model.run_id,
                path=path,
            )
        # a path that is a file lists as itself: not a folder's content
        return [f for f in files if not (f.get("path") == path and not f.get("is_dir"))]

    def credentials(self, paths: list[str]) -> dict[str, dict[str, Any]]:
        what = f"reading model {self.model.label}'s files"
        if self.model.model_id is not None:
            route = (
                f"mlflow/logged-models/{quote(self.model.model_id, safe='')}"
                "/artifacts/credentials-for-download"
            )
            found = _pages(self.client, "POST", route, what, paths=paths)
            # a ``LoggedModelArtifactCredential`` is {model_id, credential_info}: the path is
            # the credential's own (``databricks_artifacts.proto``)
            infos = [c.get("credential_info") or {} for c in found]
            return {str(info.get("path")): info for info in infos}
        found = _pages(
            self.client,
            "POST",
            "mlflow/artifacts/credentials-for-read",
            what,
            run_id=self.model.run_id,
            path=paths,
        )
        return {str(c.get("path")): c for c in found}


def _walk(source: _Source, root: str) -> list[str]:
    files: list[str] = []
    folders = [root]
    while folders:
        for entry in source.listing(folders.pop()):
            path = str(entry.get("path") or "")
            if not path:
                continue
            (folders if entry.get("is_dir") else files).append(path)
    return sorted(files)


def download_model(client: SdkClient, model: LoggedModel, dest: Path) -> list[str]:
    """The model's files under ``dest`` (its folder's layout); their paths relative to it."""
    source = _Source(client, model)
    files = _walk(source, source.prefix)
    if not files:
        raise InfrastructureError(f"model {model.label}: MLflow lists no files for it")
    relative: list[str] = []
    for start in range(0, len(files), _PATHS_PER_REQUEST):
        batch = files[start : start + _PATHS_PER_REQUEST]
        signed = source.credentials(batch)
        for path in batch:
            credential = signed.get(path)
            if credential is None:
                raise InfrastructureError(f"model {model.label}: no read credential for {path}")
            inside = posixpath.relpath(path, source.prefix) if source.prefix else path
            if inside.startswith("../") or inside.startswith("/"):
                raise InfrastructureError(f"model {model.label}: {path} is outside its folder")
            target = dest / inside
            target.parent.mkdir(parents=True, exist_ok=True)
            fetch_signed(credential, target, what=f"model {model.label}: reading {inside}")
            relative.append(inside)
    return relative
