"""MLflow's tracking and the workspace model registry, through the REST API on databricks-sdk's
API client: the same requests reach a real workspace and the local one.

The orchestrator core does not import the ``mlflow`` package (the base install stays lean);
what the build needs of MLflow is a handful of REST calls:

- :func:`job_models`: the models a build's run logged. MLflow gives each run a notebook of a
  job starts the tag ``mlflow.databricks.jobRunID`` (the task's run); ``runs/search`` finds
  them by it, in the configured experiment or in every experiment the identity sees. Their
  models are MLflow 3 logged models (``logged-models/search`` in the runs' experiments, kept
  by ``source_run_id``: Databricks does not filter on it, per MLflow's own
  ``_get_logged_models_from_run``) or, from older clients and the R client, the folders the
  run's ``mlflow.log-model.history`` tag lists.
- :func:`log_model_file`: a repo's model file as an MLflow model of a run of its own (the file
  and an ``MLmodel`` beside it, written through ``artifacts/credentials-for-write``).
- :func:`register`: ``registered-models/create`` (an existing model is fine),
  ``model-versions/create`` with the build's tags, a wait until the version is ``READY`` (the
  registry copies the files asynchronously), then ``registered-models/alias``.
- Unity Catalog's registry (``registry: unity-catalog``) copies the model's files into the
  catalog's storage: ``uc_model_registry.py``, on the same client.
- :func:`delete_runs_of`: cleanup's deletion of the MLflow runs a build's task runs logged,
  keeping any run a model version was registered from.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import yaml

from orchestrator.adapters.databricks.mlflow_rest import call, error_code
from orchestrator.adapters.databricks.sdk_errors import sdk_errors
from orchestrator.adapters.databricks.signed_uploads import put_signed
from orchestrator.adapters.databricks.values import LoggedModel, RegisteredVersion
from orchestrator.errors import InfrastructureError

if TYPE_CHECKING:
    from orchestrator.adapters.databricks.client import SdkClient
    from orchestrator.clock import Clock

__all__ = [
    "JOB_RUN_TAG",
    "delete_runs_of",
    "job_models",
    "log_model_file",
    "register",
    "version_request",
    "version_url",
]

#: the tag MLflow gives a run started by a notebook of a job run (``mlflow_tags.py``)
JOB_RUN_TAG = "mlflow.databricks.jobRunID"
_HISTORY_TAG = "mlflow.log-model.history"
#: experiments per ``runs/search`` (a guess: the REST reference names no limit)
_EXPERIMENTS_PER_SEARCH = 100
#: how long a new version may stay ``PENDING_REGISTRATION`` (the registry copies its files)
_READY_TIMEOUT = 600.0


def version_request(name: str, model: LoggedModel, tags: Mapping[str, str]) -> dict[str, Any]:
    """The body of ``model-versions/create``, the same in the workspace registry and Unity
    Catalog's (MLflow 3's ``model_id`` only when the model has one)."""
    body: dict[str, Any] = {
        "name": name,
        "source": model.source,
        "run_id": model.run_id,
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
    }
    if model.model_id:
        body["model_id"] = model.model_id
    return body


def _do(
    client: SdkClient,
    method: str,
    path: str,
    what: str,
    *,
    body: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return call(client, method, f"mlflow/{path}", what, body=body, query=query)


def _experiment_id(client: SdkClient, path: str) -> str | None:
    try:
        found = _do(
            client,
            "GET",
            "experiments/get-by-name",
            f"finding MLflow experiment {path}",
            query={"experiment_name": path},
        )
    except InfrastructureError as exc:
        if error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return str(found.get("experiment", {}).get("experiment_id") or "") or None


def _all_experiments(client: SdkClient) -> list[str]:
    ids: list[str] = []
    token: str | None = None
    while True:
        body: dict[str, Any] = {"max_results": 1000}
        if token:
            body["page_token"] = token
        page = _do(client, "POST", "experiments/search", "listing MLflow experiments", body=body)
        ids += [str(e["experiment_id"]) for e in page.get("experiments") or []]
        token = page.get("next_page_token")
        if not token:
            return ids


def _experiments(client: SdkClient, experiment: str | None) -> list[str]:
    if experiment is None:
        return _all_experiments(client)
    found = _experiment_id(client, experiment)
    return [found] if found else []


def _search_runs(
    client: SdkClient, experiment_ids: Sequence[str], filter_text: str
) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    for start in range(0, len(experiment_ids), _EXPERIMENTS_PER_SEARCH):
        token: str | None = None
        while True:
            body: dict[str, Any] = {
                "experiment_ids": list(experiment_ids[start : start + _EXPERIMENTS_PER_SEARCH]),
                "filter": filter_text,
                "max_results": 1000,
            }
            if token:
                body["page_token"] = token
            page = _do(client, "POST", "runs/search", "searching MLflow runs", body=body)
            runs += page.get("runs") or []
            token = page.get("next_page_token")
            if not token:
                break
    return runs


def _job_runs(
    client: SdkClient, task_run_ids: Iterable[int], experiment: str | None
) -> list[dict[str, Any]]:
    ids = _experiments(client, experiment)
    if not ids:
        return []
    runs: list[dict[str, Any]] = []
    for task_run in sorted(set(task_run_ids)):
        runs += _search_runs(client, ids, f"tags.`{JOB_RUN_TAG}` = '{int(task_run)}'")
    return runs


def _tags(run: Mapping[str, Any]) -> dict[str, str]:
    data = run.get("data") or {}
    return {str(t.get("key")): str(t.get("value") or "") for t in data.get("tags") or []}


def _history_models(run: Mapping[str, Any]) -> list[LoggedModel]:
    """The model folders an MLflow 2 (or R) client logged in the run's own artifacts."""
    info = run.get("info") or {}
    run_id = str(info.get("run_id") or "")
    try:
        history = json.loads(_tags(run).get(_HISTORY_TAG) or "[]")
    except json.JSONDecodeError:
        return []
    models = []
    for entry in history if isinstance(history, list) else []:
        path = str(entry.get("artifact_path") or "") if isinstance(entry, dict) else ""
        if path and not entry.get("model_id"):  # an MLflow 3 entry is a logged model
            source = f"{str(info.get('artifact_uri') or '').rstrip('/')}/{path}"
            models.append(LoggedModel(run_id, source, path))
    return models


def _logged_models(
    client: SdkClient, experiment_ids: Sequence[str], run_ids: set[str]
) -> list[LoggedModel]:
    found: list[LoggedModel] = []
    token: str | None = None
    while True:
        body: dict[str, Any] = {"experiment_ids": list(experiment_ids), "max_results": 100}
        if token:
            body["page_token"] = token
        page = _do(client, "POST", "logged-models/search", "searching MLflow models", body=body)
        for model in page.get("models") or []:
            info = model.get("info") or {}
            run_id = str(info.get("source_run_id") or "")
            model_id = str(info.get("model_id") or "")
            if run_id in run_ids and model_id:
                name = str(info.get("name") or model_id)
                found.append(LoggedModel(run_id, f"models:/{model_id}", name, model_id))
        token = page.get("next_page_token")
        if not token:
            return sorted(found, key=lambda m: (m.run_id, m.label, m.source))


def job_models(
    client: SdkClient, task_run_ids: Iterable[int], experiment: str | None
) -> list[LoggedModel]:
    """The models the MLflow runs of these task runs logged (see the module doc)."""
    runs = _job_runs(client, task_run_ids, experiment)
    run_ids = {str((r.get("info") or {}).get("run_id") or "") for r in runs}
    experiments = sorted({str((r.get("info") or {}).get("experiment_id") or "") for r in runs})
    found = _logged_models(client, experiments, run_ids) if runs else []
    for run in runs:
        found += _history_models(run)
    return found


def _ensure_experiment(client: SdkClient, path: str) -> str:
    found = _experiment_id(client, path)
    if found:
        return found
    with sdk_errors(f"workspace mkdirs {posixpath.dirname(path)}"):
        client.workspace.mkdirs(posixpath.dirname(path))
    try:
        made = _do(
            client,
            "POST",
            "experiments/create",
            f"creating MLflow experiment {path}",
            body={"name": path},
        )
    except InfrastructureError as exc:
        if error_code(exc) != "RESOURCE_ALREADY_EXISTS":  # made by a concurrent build
            raise
        return _experiment_id(client, path) or ""
    return str(made.get("experiment_id") or "")


def _mlmodel(file: Path, run_id: str, artifact_path: str, digest: str) -> bytes:
    """An ``MLmodel`` for a model that is one file: MLflow's model format (the registry
    registers a folder with an ``MLmodel``) with one flavor, ``file``, that names the file.
    No ``python_function`` flavor: nothing here knows how to load it (an R ``.rds`` is read
    with ``readRDS`` from the version's artifacts)."""
    model = {
        "artifact_path": artifact_path,
        "flavors": {"file": {"path": file.name, "sha256": digest, "size": file.stat().st_size}},
        "model_uuid": digest[:32],
        "run_id": run_id,
        "utc_time_created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
    }
    return yaml.safe_dump(model, sort_keys=False).encode()


def log_model_file(
    client: SdkClient,
    *,
    experiment: str,
    file: Path,
    run_name: str,
    tags: Mapping[str, str],
    artifact_path: str = "model",
) -> LoggedModel:
    """A run in ``experiment`` (made, with its folder, when missing) that logs ``file`` as
    an MLflow model in ``<artifact_path>/``; the run ends FINISHED."""
    experiment_id = _ensure_experiment(client, experiment)
    now = int(time.time() * 1000)
    made = _do(
        client,
        "POST",
        "runs/create",
        f"creating an MLflow run in {experiment}",
        body={
            "experiment_id": experiment_id,
            "run_name": run_name,
            "start_time": now,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        },
    )
    info = made.get("run", {}).get("info", {})
    run_id = str(info.get("run_id") or "")
    data = file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    files = {
        f"{artifact_path}/{file.name}": data,
        f"{artifact_path}/MLmodel": _mlmodel(file, run_id, artifact_path, digest),
    }
    credentials = _do(
        client,
        "POST",
        "artifacts/credentials-for-write",
        f"writing MLflow run {run_id}'s artifacts",
        body={"run_id": run_id, "path": list(files)},
    )
    by_path = {str(c.get("path")): c for c in credentials.get("credential_infos") or []}
    for path, content in files.items():
        credential = by_path.get(path)
        if credential is None:
            raise InfrastructureError(f"MLflow run {run_id}: no write credential for {path}")
        put_signed(credential, content, what=f"MLflow run {run_id}: writing {path}")
    _do(
        client,
        "POST",
        "runs/update",
        f"ending MLflow run {run_id}",
        body={"run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000)},
    )
    source = f"{str(info.get('artifact_uri') or '').rstrip('/')}/{artifact_path}"
    return LoggedModel(run_id, source, file.name)


def version_url(host: str, registry: str, name: str, version: str) -> str:
    """The version's page in the workspace UI (Catalog Explorer for Unity Catalog)."""
    host = host.rstrip("/")
    if registry == "unity-catalog":
        catalog, schema, model = name.split(".")
        return f"{host}/explore/data/models/{catalog}/{schema}/{model}/version/{version}"
    return f"{host}/ml/models/{quote(name, safe='')}/versions/{version}"


def _wait_ready(
    client: SdkClient, name: str, version: str, *, clock: Clock, timeout: float
) -> None:
    deadline = clock.monotonic() + timeout
    delay = 0.25
    while True:
        found = _do(
            client,
            "GET",
            "model-versions/get",
            f"reading model {name} version {version}",
            query={"name": name, "version": version},
        ).get("model_version", {})
        status = str(found.get("status") or "READY")
        if status == "READY":
            return
        if status == "FAILED_REGISTRATION":
            message = str(found.get("status_message") or "no reason given")
            raise InfrastructureError(
                f"model {name} version {version}: registration failed: {message}"
            )
        if clock.monotonic() >= deadline:
            raise InfrastructureError(
                f"model {name} version {version}: still {status} after {timeout:.0f} s"
            )
        clock.sleep(delay)
        delay = min(delay * 2, 5.0)


def register(
    client: SdkClient,
    *,
    name: str,
    model: LoggedModel,
    tags: Mapping[str, str],
    alias: str | None,
    clock: Clock,
    ready_timeout: float = _READY_TIMEOUT,
) -> RegisteredVersion:
    """A new version of ``name`` (the model made when missing) in the workspace registry,
    from ``model``, tagged; ``alias`` set on it once it is ready."""
    try:
        _do(
            client,
            "POST",
            "registered-models/create",
            f"creating model {name}",
            body={"name": name},
        )
    except InfrastructureError as exc:
        if error_code(exc) != "RESOURCE_ALREADY_EXISTS":
            raise
    body = version_request(name, model, tags)
    made = _do(client, "POST", "model-versions/create", f"registering model {name}", body=body)
    version = str(made.get("model_version", {}).get("version") or "")
    if not version:
        raise InfrastructureError(f"registering model {name}: the registry gave no version")
    _wait_ready(client, name, version, clock=clock, timeout=ready_timeout)
    if alias:
        _do(
            client,
            "POST",
            "registered-models/alias",
            f"setting alias {alias} of model {name}",
            body={"name": name, "alias": alias, "version": version},
        )
    host = client.config.host or ""
    return RegisteredVersion(
        "workspace",
        name,
        version,
        version_url(host, "workspace", name, version),
        model.source,
        alias,
    )


def _registered_run_ids(client: SdkClient, run_ids: Sequence[str]) -> set[str]:
    """The runs some model version was registered from (cleanup keeps them)."""
    kept: set[str] = set()
    for run_id in run_ids:
        found = _do(
            client,
            "GET",
            "model-versions/search",
            "searching model versions",
            query={"filter": f"run_id = '{run_id}'", "max_results": 1},
        )
        if found.get("model_versions"):
            kept.add(run_id)
    return kept


def delete_runs_of(
    client: SdkClient,
    task_run_ids: Iterable[int],
    *,
    experiment: str | None,
    on_kept: Callable[[str], None] | None = None,
) -> int:
    """Delete the MLflow runs these task runs logged, except those a model version was
    registered from; how many were deleted."""
    runs = _job_runs(client, task_run_ids, experiment)
    ids = sorted({str((r.get("info") or {}).get("run_id") or "") for r in runs} - {""})
    kept = _registered_run_ids(client, ids)
    deleted = 0
    for run_id in ids:
        if run_id in kept:
            if on_kept is not None:
                on_kept(run_id)
            continue
        try:
            _do(
                client,
                "POST",
                "runs/delete",
                f"deleting MLflow run {run_id}",
                body={"run_id": run_id},
            )
        except InfrastructureError as exc:
            if error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
                continue
            raise
        deleted += 1
    return deleted
