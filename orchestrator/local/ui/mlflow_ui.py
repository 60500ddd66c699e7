"""MLflow's own UI, reachable from the local workspace at ``/mlflow/``, read-only.

A Databricks workspace shows its experiments at ``/ml/experiments/<id>`` (the MLflow client
prints such links after each run), a workspace registry's model version at
``/ml/models/<name>/versions/<version>`` and a Unity Catalog one in Catalog Explorer,
``/explore/data/models/<catalog>/<schema>/<model>/version/<version>`` (the links the build
reports for a version it registered); here each of these redirects to the same view of MLflow's
UI (a Unity Catalog model is in the tracking server's registry under its three-level name), which
the tracking server serves under ``/mlflow`` (``--static-prefix``) and the workspace passes on:
its pages and static files, its ``/ajax-api`` reads (the ``GET`` routes and the ``POST``
searches) and GraphQL queries (never a mutation), the artifact listings and files from the
workspace's own artifact store (the server never holds them). Like the Jobs UI, these pages
need no token (the server listens on loopback and answers only its own address and
``localhost``), so they change nothing: any other ``POST``, and every ``PATCH`` or
``DELETE``, is 403. A page never starts the tracking
server: before the first MLflow request, ``/mlflow/`` says so.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote, unquote

from orchestrator.local.api.mlflow_api import MlflowApi
from orchestrator.local.api.routing import Request, Response, Router
from orchestrator.local.runtime.mlflow_server import mlflow_available
from orchestrator.local.state.api_error import ApiError
from orchestrator.local.ui.shell import page

__all__ = ["MlflowUi"]

_AJAX = re.compile(r"ajax-api/(?P<version>[23])\.0/(?P<route>mlflow/[A-Za-z0-9_/:.-]+)")
#: Databricks' links to a model and a model version, workspace registry and Catalog Explorer
_MODEL_LINK = r"/ml/models/(?P<name>[^/]+)(?:/versions/(?P<version>[0-9]{1,19}))?/?"
_CATALOG_LINK = (
    r"/explore/data/models/(?P<catalog>[^/]+)/(?P<schema>[^/]+)/(?P<model>[^/]+)"
    r"(?:/version/(?P<version>[0-9]{1,19}))?/?"
)
#: ``POST`` reads of the UI: searches and bulk reads
_READS = re.compile(r".*(?:/search|/search-datasets|/get-history-bulk(?:-interval)?|/batch-get)$")


class MlflowUi:
    def __init__(self, mlflow: MlflowApi) -> None:
        self.mlflow = mlflow

    def register(self, router: Router) -> None:
        router.plain("GET", r"/ml/experiments(?P<rest>/[A-Za-z0-9/_-]*)?", self.link, public=True)
        router.plain("GET", _MODEL_LINK, self.model_link, public=True)
        router.plain("GET", _CATALOG_LINK, self.model_link, public=True)
        router.plain("GET", r"/mlflow/?", self.index, public=True)
        router.plain("GET", r"/mlflow/(?P<rest>.+)", self.get, public=True)
        router.plain("POST", r"/mlflow/(?P<rest>.+)", self.post, public=True)

    @staticmethod
    def link(request: Request, rest: str | None = None) -> Response:
        """Databricks' experiment and run links, to the same view of MLflow's UI."""
        target = "/mlflow/#/experiments" + quote(rest or "", safe="/")
        return Response(302, b"", "text/plain", headers=(("Location", target),))

    @staticmethod
    def model_link(
        request: Request,
        name: str = "",
        version: str | None = None,
        catalog: str = "",
        schema: str = "",
        model: str = "",
    ) -> Response:
        """A registered model's (or version's) page, workspace registry or Unity Catalog, to
        MLflow's model page."""
        parts = (name,) if name else (catalog, schema, model)
        target = "/mlflow/#/models/" + quote(".".join(unquote(p) for p in parts), safe="")
        if version:
            target += f"/versions/{version}"
        return Response(302, b"", "text/plain", headers=(("Location", target),))

    def _running(self) -> bool:
        return mlflow_available() and self.mlflow.server.running

    def index(self, request: Request) -> Response:
        if not self._running():
            text = (
                "MLflow is not installed with this local workspace (pip install "
                "'orchestrator[mlflow]')."
                if not mlflow_available()
                else "No MLflow request has come to this workspace yet: its tracking server "
                "starts with the first one, and MLflow's UI is shown here from then on."
            )
            return page("MLflow", f'<p class="muted">{text}</p>', crumbs=[("Jobs", "/jobs")])
        return self._pass(request, "/")

    def get(self, request: Request, rest: str) -> Response:
        if not self._running():
            raise ApiError(404, "ENDPOINT_NOT_FOUND", "MLflow's tracking server is not running")
        if rest == "get-artifact":
            run_id = _query(request, "run_uuid") or _query(request, "run_id")
            data = self.mlflow.artifact_file("runs", run_id, _query(request, "path"))
            return Response(200, data, "application/octet-stream")
        files = re.fullmatch(
            r"ajax-api/2\.0/mlflow/logged-models/(?P<id>[A-Za-z0-9_-]+)/artifacts/files", rest
        )
        if files is not None:
            path = _query(request, "artifact_file_path")
            data = self.mlflow.artifact_file("logged_models", files["id"], path)
            return Response(200, data, "application/octet-stream")
        ajax = _AJAX.fullmatch(rest)
        if ajax is not None:
            return self.mlflow.for_ui(request, ajax["route"], _target(request, rest))
        return self._pass(request, "/" + rest)

    def post(self, request: Request, rest: str) -> Response:
        if rest == "graphql" and _graphql_query(request.body):
            if not self._running():
                raise ApiError(404, "ENDPOINT_NOT_FOUND", "MLflow's tracking server is not running")
            target = _target(request, rest)
            ctype = request.headers.get("Content-Type") or "application/json"
            status, body, answer_type = self.mlflow.call_server_with(
                "POST", target, request.body, ctype
            )
            return Response(status, body, answer_type or "application/json")
        ajax = _AJAX.fullmatch(rest)
        if ajax is None or not _READS.fullmatch(ajax["route"]):
            raise ApiError(
                403,
                "PERMISSION_DENIED",
                "MLflow's UI is read-only in the local workspace: change MLflow objects through "
                "the API, with the workspace's token",
            )
        if not self._running():
            raise ApiError(404, "ENDPOINT_NOT_FOUND", "MLflow's tracking server is not running")
        return self.mlflow.for_ui(request, ajax["route"], _target(request, rest))

    def _pass(self, request: Request, path: str) -> Response:
        target = _target(request, path.lstrip("/"))
        status, body, content_type = self.mlflow.call_server("GET", target)
        return Response(status, body, content_type or "application/octet-stream")


def _graphql_query(body: bytes) -> bool:
    """Whether a GraphQL request only reads (the UI reads runs through it): one document with
    no ``mutation`` or ``subscription`` in it."""
    try:
        document = json.loads(body or b"{}").get("query")
    except (ValueError, AttributeError):
        return False
    if not isinstance(document, str):
        return False
    words = set(re.findall(r"[A-Za-z_]+", document))
    return not words & {"mutation", "subscription"}


def _query(request: Request, name: str) -> str:
    return (request.query.get(name) or [""])[-1]


def _target(request: Request, rest: str) -> str:
    """The server's path (without its prefix) and the request's query string."""
    query = request.path.partition("?")[2]
    return "/" + rest + (f"?{query}" if query else "")
