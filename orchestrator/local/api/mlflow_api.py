"""The MLflow REST API (``/api/2.0/mlflow/...``), as a Databricks workspace serves it.

Most routes go through to MLflow's own tracking server (``runtime/mlflow_server.py``),
started on the first MLflow request. The workspace answers itself what a Databricks workspace
adds to MLflow's open-source API, read from the MLflow client's Databricks stores:

- the artifact credentials (``artifacts/credentials-for-write|read``, ``logged-models/<id>/
  artifacts/credentials-for-upload|download``) and the registry's ``model-versions/
  get-signed-download-uri``: signed URLs to this workspace (``api/mlflow_artifacts.py``);
- the artifact listings (``artifacts/list``, ``logged-models/<id>/artifacts/directories``,
  ``model-versions/list-artifacts``), read from where those URLs put the files: the tracking
  server never holds them;
- Unity Catalog's registry (``mlflow/unity-catalog/...``) and the Files API routes its client
  moves model files with (``api/mlflow_uc_registry.py``).

The Files API (``/api/2.0/fs/...``) is served for Unity Catalog's model files only; MLflow 3
tries it first for run and logged-model artifacts too (``/WorkspaceInternal/Mlflow/...``),
gets 501 ``NOT_IMPLEMENTED`` and falls back to the credential endpoints above
(``DatabricksTrackingArtifactRepository``), which every MLflow version speaks.

The tracking server gives a logged model the artifact location
``<experiment>/models/<id>/artifacts``; a Databricks workspace gives
``<experiment>/logged_models/<id>/artifacts``, the only form the client's Databricks artifact
repositories recognize, so the answers are rewritten to it.
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Callable
from typing import Any

from orchestrator.local.api.mlflow_artifacts import ArtifactOwner, MlflowArtifacts, owner_of_source
from orchestrator.local.api.mlflow_uc_registry import UnityCatalogRegistry
from orchestrator.local.api.routing import Request, Response, Router
from orchestrator.local.runtime.mlflow_server import (
    INSTALL_HINT,
    PREFIX,
    MlflowServer,
    MlflowServerError,
    mlflow_available,
)
from orchestrator.local.state.api_error import ApiError, bad_request

__all__ = ["MlflowApi"]

_VERSIONS = ("2.0",)
_METHODS = ("GET", "POST", "PATCH", "DELETE")
#: how long one request may wait for the tracking server (a first start included)
_PROXY_TIMEOUT = 300.0
#: how long a Jobs UI page waits for the tracking server's answers (a stuck server must not
#: hold the page)
_PAGE_TIMEOUT = 10.0
_LOGGED_MODEL_LOCATION = re.compile(
    rb"(dbfs:/databricks/mlflow-tracking/[^/\"]+)/models/(m-[0-9a-f]+)/artifacts"
)
_LOGGED_MODEL_ROUTE = re.compile(
    r"mlflow/logged-models/(?P<id>[A-Za-z0-9_-]+)/artifacts/"
    r"(?P<what>credentials-for-upload|credentials-for-download|directories)"
)


class MlflowApi:
    """``/api/2.0/mlflow/...``: the tracking server behind, the Databricks parts in front."""

    def __init__(
        self,
        server: MlflowServer,
        artifacts: MlflowArtifacts,
        *,
        folder_exists: Callable[[str], bool] = lambda _path: True,
    ) -> None:
        self.server = server
        self.artifacts = artifacts
        #: whether a workspace folder exists (an experiment is made in one)
        self.folder_exists = folder_exists
        self.unity_catalog = UnityCatalogRegistry(self._call, artifacts)
        self._own: dict[tuple[str, str], Callable[[Request], dict[str, Any]]] = {
            ("POST", "mlflow/artifacts/credentials-for-write"): self._run_credentials("PUT"),
            ("POST", "mlflow/artifacts/credentials-for-read"): self._run_credentials("GET"),
            ("GET", "mlflow/artifacts/list"): self._list_run_artifacts,
            ("GET", "mlflow/model-versions/get-signed-download-uri"): self._version_download,
            ("GET", "mlflow/model-versions/list-artifacts"): self._list_version_artifacts,
        }
        self._checked: dict[tuple[str, str], Callable[[Request], None]] = {
            ("POST", "mlflow/experiments/create"): self._check_experiment_name,
        }

    def register(self, router: Router) -> None:
        for method in _METHODS:
            router.api_prefix(method, "mlflow/", _VERSIONS, self._handle)
        for method in (*_METHODS, "PUT", "HEAD"):
            router.api_prefix(method, "fs/", ("2.0",), self.model_files)
        self.artifacts.register(router)

    # --- dispatch ------------------------------------------------------------------------------
    def _handle(self, request: Request) -> Response | dict[str, Any]:
        route = request.route
        if not mlflow_available():
            raise ApiError(
                501,
                "NOT_IMPLEMENTED",
                f"MLflow is not installed with this local workspace: {INSTALL_HINT}",
            )
        if route.startswith("mlflow/unity-catalog/"):
            return self.unity_catalog.handle(request)
        own = self._own.get((request.method, route))
        if own is not None:
            return own(request)
        check = self._checked.get((request.method, route))
        if check is not None:
            check(request)
        logged = _LOGGED_MODEL_ROUTE.fullmatch(route)
        if logged is not None:
            return self._logged_model_artifacts(request, logged["id"], logged["what"])
        return self._proxy(request)

    def for_ui(self, request: Request, route: str, target: str) -> Response:
        """An ``/ajax-api/2.0/<route>`` request of MLflow's UI (``ui/mlflow_ui.py``): answered
        as the API answers ``route`` where the workspace answers it itself (artifact listings),
        otherwise passed to the server's ``target``."""
        forwarded = Request(
            request.method, target, "2.0", route, request.query, request.headers, request.body
        )
        own = self._own.get((request.method, route))
        logged = _LOGGED_MODEL_ROUTE.fullmatch(route)
        if own is not None and route.endswith(("/list", "/list-artifacts")):
            return Response.json(own(forwarded))
        if logged is not None and logged["what"] == "directories":
            return Response.json(
                self._logged_model_artifacts(forwarded, logged["id"], "directories")
            )
        return self._proxy(forwarded, target)

    def call_server(self, method: str, target: str) -> tuple[int, bytes, str]:
        """``method`` ``target`` (a path under the server's prefix) on the tracking server."""
        return self._call(method, target)

    def call_server_with(
        self, method: str, target: str, body: bytes, content_type: str
    ) -> tuple[int, bytes, str]:
        """:meth:`call_server` with a body."""
        return self._call(method, target, body, content_type)

    def artifact_file(self, kind: str, owner_id: str, path: str) -> bytes:
        """A run's or logged model's file, for MLflow's UI (its artifact viewer)."""
        owner = ArtifactOwner("runs" if kind == "runs" else "logged_models", owner_id)
        return self.artifacts.read(owner, path)

    def model_files(self, request: Request) -> Response | dict[str, Any]:
        return self.unity_catalog.files(request)

    # --- for the Jobs UI ---------------------------------------------------------------------
    def runs_of_task(self, task_run_id: int) -> list[dict[str, Any]]:
        """The MLflow runs a task run logged (tagged ``mlflow.databricks.jobRunID`` by the
        kernel's run context), with their parameters, metrics and logged models' names; none
        when the tracking server is not running (a page never starts it)."""
        if not self.server.running or not mlflow_available():
            return []
        try:
            found = self._post_json(
                "mlflow/experiments/search", {"max_results": 1000}, timeout=_PAGE_TIMEOUT
            )
            experiments = {
                str(e["experiment_id"]): str(e.get("name") or "")
                for e in found.get("experiments") or []
            }
            if not experiments:
                return []
            query = {
                "experiment_ids": sorted(experiments),
                "filter": f"tags.`mlflow.databricks.jobRunID` = '{int(task_run_id)}'",
                "max_results": 100,
            }
            found = self._post_json("mlflow/runs/search", query, timeout=_PAGE_TIMEOUT)
            runs = found.get("runs") or []
            return [self._run_summary(run, experiments) for run in runs]
        except (ApiError, ValueError, KeyError, TypeError):
            return []

    def _run_summary(self, run: dict[str, Any], experiments: dict[str, str]) -> dict[str, Any]:
        info, data = run.get("info") or {}, run.get("data") or {}
        models = []
        for output in (run.get("outputs") or {}).get("model_outputs") or []:
            model_id = str(output.get("model_id") or "")
            route = f"mlflow/logged-models/{model_id}"
            model = self._get_json(route, timeout=_PAGE_TIMEOUT)["model"]["info"]
            models.append(str(model.get("name") or model_id))
        return {
            "run_id": str(info.get("run_id") or ""),
            "run_name": str(info.get("run_name") or ""),
            "experiment": experiments.get(str(info.get("experiment_id")), ""),
            "status": str(info.get("status") or ""),
            "params": {str(p["key"]): str(p.get("value")) for p in data.get("params") or []},
            "metrics": {str(m["key"]): m.get("value") for m in data.get("metrics") or []},
            "models": models,
        }

    # --- the tracking server ----------------------------------------------------------------
    def _call(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        content_type: str = "",
        *,
        timeout: float = _PROXY_TIMEOUT,
    ) -> tuple[int, bytes, str]:
        """One request to the tracking server (started now if it is not running)."""
        try:
            host, port = self.server.endpoint()
        except MlflowServerError as exc:
            raise ApiError(500, "INTERNAL_ERROR", f"MLflow tracking server: {exc}") from None
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            headers = {"Content-Type": content_type} if content_type else {}
            connection.request(method, PREFIX + target, body=body or None, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.read(), answer.getheader("Content-Type") or ""
        except (OSError, http.client.HTTPException) as exc:
            raise ApiError(
                503, "TEMPORARILY_UNAVAILABLE", f"MLflow tracking server: {exc}"
            ) from None
        finally:
            connection.close()

    def _proxy(self, request: Request, target: str | None = None) -> Response:
        content_type = request.headers.get("Content-Type") or ""
        status, body, answer_type = self._call(
            request.method, target or request.path, request.body, content_type
        )
        if not answer_type.startswith("application/json"):
            # MLflow's server answers an unknown route with an HTML page
            if status >= 400:
                raise ApiError(
                    404 if status == 404 else status,
                    "ENDPOINT_NOT_FOUND" if status == 404 else "INTERNAL_ERROR",
                    f"No API found for '{request.method} /api/2.0/{request.route[:200]}'",
                )
            return Response(status, body, answer_type or "application/octet-stream")
        return Response(status, _LOGGED_MODEL_LOCATION.sub(rb"\1/logged_models/\2/artifacts", body))

    def _get_json(
        self, route: str, *, timeout: float = _PROXY_TIMEOUT, **query: str
    ) -> dict[str, Any]:
        from urllib.parse import urlencode

        target = f"/api/2.0/{route}?{urlencode(query)}"
        status, body, _ = self._call("GET", target, timeout=timeout)
        data = json.loads(body or b"{}")
        if status >= 400:
            raise ApiError(
                status,
                str(data.get("error_code") or "INTERNAL_ERROR"),
                str(data.get("message") or "MLflow tracking server error"),
            )
        return dict(data)

    def _post_json(
        self, route: str, body: dict[str, Any], *, timeout: float = _PROXY_TIMEOUT
    ) -> dict[str, Any]:
        status, answer, _ = self._call(
            "POST",
            f"/api/2.0/{route}",
            json.dumps(body).encode(),
            "application/json",
            timeout=timeout,
        )
        data = json.loads(answer or b"{}")
        if status >= 400:
            raise ApiError(status, str(data.get("error_code") or "INTERNAL_ERROR"), str(data))
        return dict(data)

    def _run(self, run_id: str) -> dict[str, Any]:
        return dict(self._get_json("mlflow/runs/get", run_id=run_id)["run"]["info"])

    # --- experiments ---------------------------------------------------------------------------
    def _check_experiment_name(self, request: Request) -> None:
        """An experiment is named by a workspace path whose folder exists, as on Databricks
        (which answers a bare name with this message; the missing folder's is a guess)."""
        name = request.required_text("name")
        if not name.startswith("/"):
            raise bad_request(
                f"Got an invalid experiment name '{name[:200]}'. An experiment name must be an "
                "absolute path within the Databricks workspace, e.g. "
                "'/Users/<some-username>/my-experiment'."
            )
        path = name.removeprefix("/Workspace") if name.startswith("/Workspace/") else name
        parent = path.rstrip("/").rsplit("/", 1)[0] or "/"
        if not self.folder_exists(parent):
            raise ApiError(
                404, "RESOURCE_DOES_NOT_EXIST", f"Parent directory {parent[:200]} does not exist."
            )

    # --- runs' artifacts -----------------------------------------------------------------------
    def _run_credentials(self, method: str) -> Callable[[Request], dict[str, Any]]:
        def handler(request: Request) -> dict[str, Any]:
            run_id = request.required_text("run_id")
            paths = _paths(request.get("path"))
            self._run(run_id)  # it exists
            owner = ArtifactOwner("runs", run_id)
            infos = [
                {"run_id": run_id, "path": path, **self.artifacts.credential(method, owner, path)}
                for path in paths
            ]
            return {"credential_infos": infos}

        return handler

    def _list_run_artifacts(self, request: Request) -> dict[str, Any]:
        run_id = request.text("run_id") or request.required_text("run_uuid")
        info = self._run(run_id)
        path = request.text("path") or ""
        files = self.artifacts.list_files(ArtifactOwner("runs", run_id), path)
        return {"root_uri": info.get("artifact_uri", ""), "files": files}

    # --- logged models' artifacts ------------------------------------------------------------
    def _logged_model_artifacts(self, request: Request, model_id: str, what: str) -> dict[str, Any]:
        model = self._get_json(f"mlflow/logged-models/{model_id}")["model"]["info"]
        owner = ArtifactOwner("logged_models", model_id)
        if what == "directories":
            path = request.text("artifact_directory_path") or ""
            root = _LOGGED_MODEL_LOCATION.sub(
                rb"\1/logged_models/\2/artifacts", str(model.get("artifact_uri", "")).encode()
            ).decode()
            return {"root_uri": root, "files": self.artifacts.list_files(owner, path)}
        method = "PUT" if what == "credentials-for-upload" else "GET"
        credentials = [
            {
                "model_id": model_id,
                "credential_info": {"path": p, **self.artifacts.credential(method, owner, p)},
            }
            for p in _paths(request.get("paths"))
        ]
        return {"credentials": credentials}

    # --- the workspace model registry ----------------------------------------------------------
    def _version_owner(self, request: Request) -> ArtifactOwner:
        name = request.required_text("name")
        version = request.required_text("version")
        found = self._get_json("mlflow/model-versions/get", name=name, version=version)
        model_version = found["model_version"]
        return owner_of_source(
            str(model_version.get("source") or ""), str(model_version.get("model_id") or "")
        )

    def _version_download(self, request: Request) -> dict[str, Any]:
        owner = self._version_owner(request)
        path = request.text("path") or ""
        return {"signed_uri": self.artifacts.signed_url("GET", owner, path), "headers": []}

    def _list_version_artifacts(self, request: Request) -> dict[str, Any]:
        owner = self._version_owner(request)
        return {"files": self.artifacts.list_files(owner, request.text("path") or "")}


def _paths(value: object) -> list[str]:
    """A repeated ``path`` field: a list of strings (or one string, as a query sends it)."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request("Invalid value for path: expected a list of strings")
    if len(value) > 2000:  # the client asks for at most 2,000 at once
        raise bad_request("Too many paths in one request: at most 2000")
    return value
