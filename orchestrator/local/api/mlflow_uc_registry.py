"""Unity Catalog's model registry (``/api/2.0/mlflow/unity-catalog/...``), on the tracking
server's registry, and the Files API routes its client moves model files with.

With the tracking URI ``databricks``, MLflow 3 registers to Unity Catalog (``databricks-uc``)
unless told otherwise. Its client (``UcModelRegistryStore``,
``UnityCatalogModelsArtifactRepository``) creates a version, asks
``model-versions/generate-temporary-credentials`` how to write its files and, when the answer's
``storage_mode`` is ``DEFAULT_STORAGE`` (Databricks' default storage), uploads and downloads
them through presigned URLs of the Files API (``fs/create-upload-url``,
``fs/create-download-url``, ``fs/directories/Models/<catalog>/<schema>/<model>/<version>``),
then finalizes the version. Every other storage mode hands it cloud credentials for a bucket
it addresses by its cloud URL, which nothing local can honour; so this workspace always
answers ``DEFAULT_STORAGE``, and the presigned URLs are this workspace's signed URLs
(``api/mlflow_artifacts.py``, files under ``mlflow/artifacts/uc_models/``).

The registry itself is the tracking server's (the workspace registry's REST API, whose
messages Unity Catalog's mostly share): each route maps to its counterpart, and the answers'
model versions are given Unity Catalog's shape (aliases as ``{alias, version}``, a
``storage_location``, ``PENDING_REGISTRATION`` from ``model-versions/create`` until
``model-versions/finalize``). Model names must have three parts, ``catalog.schema.model``;
whether the catalog and schema exist is not checked (a guess that errs on the generous side:
Unity Catalog refuses a schema that does not exist).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

from orchestrator.local.api.mlflow_artifacts import ArtifactOwner, MlflowArtifacts
from orchestrator.local.api.routing import Request, Response
from orchestrator.local.state.api_error import ApiError, bad_request

__all__ = ["UnityCatalogRegistry"]

#: ``(method, target, body, content type) -> (status, body, content type)``: the tracking server
Call = Callable[[str, str, bytes, str], tuple[int, bytes, str]]

_PREFIX = "mlflow/unity-catalog/"
#: Unity Catalog's route -> the tracking server's (same method); None: answered here
_ROUTES: dict[tuple[str, str], str | None] = {
    ("POST", "registered-models/create"): "registered-models/create",
    ("PATCH", "registered-models/update"): "registered-models/update",
    ("DELETE", "registered-models/delete"): "registered-models/delete",
    ("GET", "registered-models/get"): "registered-models/get",
    ("GET", "registered-models/search"): "registered-models/search",
    ("POST", "registered-models/alias"): "registered-models/alias",
    ("DELETE", "registered-models/alias"): "registered-models/alias",
    ("GET", "registered-models/alias"): "registered-models/alias",
    ("POST", "registered-models/set-tag"): "registered-models/set-tag",
    ("DELETE", "registered-models/delete-tag"): "registered-models/delete-tag",
    ("POST", "model-versions/create"): "model-versions/create",
    ("PATCH", "model-versions/update"): "model-versions/update",
    ("DELETE", "model-versions/delete"): "model-versions/delete",
    ("GET", "model-versions/get"): "model-versions/get",
    ("GET", "model-versions/search"): "model-versions/search",
    ("POST", "model-versions/set-tag"): "model-versions/set-tag",
    ("DELETE", "model-versions/delete-tag"): "model-versions/delete-tag",
    ("POST", "model-versions/finalize"): None,
    ("POST", "model-versions/generate-temporary-credentials"): None,
    ("GET", "model-versions/get-download-uri"): None,
    ("POST", "model-versions/emit-lineage"): None,
}
_NAME_PART = re.compile(r"[A-Za-z0-9_-]{1,255}")
_FILES_PATH = re.compile(
    r"/?Models/(?P<catalog>[^/]+)/(?P<schema>[^/]+)/(?P<model>[^/]+)/(?P<version>[0-9]{1,19})"
    r"(?:/(?P<path>.*))?"
)
#: how long the "temporary credentials" are said to last (they are signed URLs asked for later)
_CREDENTIAL_SECONDS = 15 * 60


def _checked_name(name: object) -> str:
    """A three-level name (``catalog.schema.model``), as Unity Catalog requires."""
    if not isinstance(name, str):
        raise bad_request("Missing required field: name")
    parts = name.split(".")
    if len(parts) != 3 or not all(_NAME_PART.fullmatch(p) for p in parts):
        raise bad_request(
            f"Invalid name {name[:200]!r}: a model in Unity Catalog is named "
            "<catalog>.<schema>.<model>"
        )
    return name


def _uc_version(version: dict[str, Any]) -> dict[str, Any]:
    """A registry model version in Unity Catalog's shape."""
    shaped = dict(version)
    number = str(shaped.get("version") or "")
    shaped["aliases"] = [
        {"alias": alias, "version": number}
        for alias in shaped.get("aliases") or []
        if isinstance(alias, str)
    ]
    name = str(shaped.get("name") or "")
    shaped["storage_location"] = "/Models/" + name.replace(".", "/") + f"/{number}"
    return shaped


def _shaped(data: dict[str, Any]) -> dict[str, Any]:
    if isinstance(data.get("model_version"), dict):
        data["model_version"] = _uc_version(data["model_version"])
    if isinstance(data.get("model_versions"), list):
        data["model_versions"] = [_uc_version(v) for v in data["model_versions"]]
    return data


class UnityCatalogRegistry:
    """Unity Catalog's registry routes and the Files API routes of its model files."""

    def __init__(self, call: Call, artifacts: MlflowArtifacts) -> None:
        self._call = call
        self.artifacts = artifacts
        #: versions created and not yet finalized: ``PENDING_REGISTRATION`` until
        #: ``model-versions/finalize``, as in Unity Catalog (the tracking server's registry
        #: makes a version ``READY`` at once); kept in memory, so a restart forgets them
        self._pending: set[tuple[str, str]] = set()
        self._pending_lock = threading.Lock()

    # --- the registry ------------------------------------------------------------------------
    def handle(self, request: Request) -> dict[str, Any]:
        route = request.route.removeprefix(_PREFIX)
        key = (request.method, route)
        if key not in _ROUTES:
            raise ApiError(
                404, "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} /{request.route}'"
            )
        if not route.endswith("/search"):  # a version search names its model in `filter`
            _checked_name(request.get("name"))
        target = _ROUTES[key]
        if target is None:
            return self._own(route, request)
        if route == "registered-models/update" and request.text("new_name"):
            _checked_name(request.get("new_name"))
            self._json("POST", "registered-models/rename", request.params)
            request.params["name"] = request.params.pop("new_name")
            if request.get("description") is None:
                return self._json("GET", "registered-models/get", {"name": request.get("name")})
        answer = _shaped(self._json(request.method, target, request.params))
        if route == "model-versions/create" and isinstance(answer.get("model_version"), dict):
            made = answer["model_version"]
            with self._pending_lock:
                self._pending.add((str(made.get("name")), str(made.get("version"))))
        elif route == "model-versions/delete":
            with self._pending_lock:
                self._pending.discard((request.text("name"), request.text("version")))
        return self._statuses(answer)

    def _statuses(self, data: dict[str, Any]) -> dict[str, Any]:
        """``PENDING_REGISTRATION`` on the versions not finalized yet."""
        versions = [data["model_version"]] if isinstance(data.get("model_version"), dict) else []
        versions += [v for v in data.get("model_versions") or [] if isinstance(v, dict)]
        with self._pending_lock:
            for version in versions:
                if (str(version.get("name")), str(version.get("version"))) in self._pending:
                    version["status"] = "PENDING_REGISTRATION"
        return data

    def _own(self, route: str, request: Request) -> dict[str, Any]:
        name, version = request.required_text("name"), request.required_text("version")
        if route == "model-versions/emit-lineage":
            return {}
        found = self._json("GET", "model-versions/get", {"name": name, "version": version})
        if route == "model-versions/finalize":
            with self._pending_lock:
                self._pending.discard((name, version))
            return _shaped(found)
        if route == "model-versions/get-download-uri":
            return {"artifact_uri": _uc_version(found["model_version"])["storage_location"]}
        expires = int((time.time() + _CREDENTIAL_SECONDS) * 1000)
        return {"credentials": {"storage_mode": "DEFAULT_STORAGE", "expiration_time": expires}}

    def _json(self, method: str, route: str, params: dict[str, Any]) -> dict[str, Any]:
        import json
        from urllib.parse import urlencode

        target = f"/api/2.0/mlflow/{route}"
        body = b""
        if method == "GET":
            query = {k: v for k, v in params.items() if isinstance(v, str | int)}
            target += "?" + urlencode(query)
        else:
            body = json.dumps(params).encode()
        status, answer, _ = self._call(method, target, body, "application/json")
        try:
            data = json.loads(answer or b"{}")
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if status >= 400:
            raise ApiError(
                status,
                str(data.get("error_code") or "INTERNAL_ERROR"),
                str(data.get("message") or "MLflow tracking server error"),
            )
        return data

    # --- the Files API, for model files ---------------------------------------------------------
    def files(self, request: Request) -> Response | dict[str, Any]:
        route = request.route.removeprefix("fs/")
        if request.method == "POST" and route in ("create-upload-url", "create-download-url"):
            owner, path = self._owner(request.required_text("path"))
            method = "PUT" if route == "create-upload-url" else "GET"
            return {"url": self.artifacts.signed_url(method, owner, path), "headers": []}
        if request.method in ("GET", "HEAD") and route.startswith("directories/"):
            owner, path = self._owner(route.removeprefix("directories"))
            files = self.artifacts.list_files(owner, path)
            if not files or (
                len(files) == 1 and not files[0]["is_dir"] and files[0]["path"] == path
            ):
                raise ApiError(404, "NOT_FOUND", "The directory does not exist")
            if request.method == "HEAD":
                return {}
            base = "/" + "/".join(("Models", *owner.owner_id.split("."), owner.prefix))
            contents = [
                {
                    "path": f"{base}/{entry['path']}",
                    "is_directory": entry["is_dir"],
                    "name": entry["path"].rsplit("/", 1)[-1],
                    **({} if entry["is_dir"] else {"file_size": entry["file_size"]}),
                }
                for entry in files
            ]
            return {"contents": contents}
        raise ApiError(
            501,
            "NOT_IMPLEMENTED",
            "The local workspace serves the Files API only for Unity Catalog's model files "
            "(/Models/...)",
        )

    @staticmethod
    def _owner(path: str) -> tuple[ArtifactOwner, str]:
        match = _FILES_PATH.fullmatch(path.rstrip("/"))
        if match is None:
            raise ApiError(
                501,
                "NOT_IMPLEMENTED",
                "The local workspace serves the Files API only for Unity Catalog's model files "
                "(/Models/<catalog>/<schema>/<model>/<version>/...)",
            )
        name = _checked_name(".".join((match["catalog"], match["schema"], match["model"])))
        return ArtifactOwner("uc_models", name, match["version"]), match["path"] or ""
