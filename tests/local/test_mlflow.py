"""MLflow in the local workspace, as a Databricks notebook and an outside client use it.

Notebooks in their Databricks form (tracking URI ``databricks`` by default, the workspace
model registry chosen with ``mlflow.set_registry_uri("databricks")``, as MLflow 3 on
Databricks needs for it) train, log and register a scikit-learn model, and another loads it
by ``models:/`` URI, in real kernels; a client outside the workspace
(``MLFLOW_TRACKING_URI=databricks`` with ``DATABRICKS_HOST``/``DATABRICKS_TOKEN``) lists the
runs and the version. The tracking server starts only when MLflow is used and stops with the
workspace.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.parse
from datetime import timedelta
from email.message import Message
from pathlib import Path

import psutil
import pytest
import requests
from databricks.sdk.service import jobs, workspace

from orchestrator.local.api.mlflow_artifacts import ArtifactOwner, MlflowArtifacts, owner_of_source
from orchestrator.local.api.routing import Request
from orchestrator.local.server import LocalWorkspace, start_local_workspace
from orchestrator.local.state.api_error import ApiError
from tests.conftest import TOKEN, sdk_client
from tests.tools import require_mlflow

FOLDER = "/Users/local@localhost/models"
WAIT = timedelta(seconds=600)
RUN_ID = "0123456789abcdef0123456789abcdef"


def notebook(*cells: str) -> str:
    return "# Databricks notebook source\n" + "\n\n# COMMAND ----------\n\n".join(cells) + "\n"


TRAIN = notebook(
    "import os, tempfile\n"
    "import mlflow\n"
    "import numpy as np\n"
    "from sklearn.linear_model import LogisticRegression\n"
    'mlflow.set_registry_uri("databricks")  # the workspace model registry\n'
    'mlflow.set_experiment("/Shared/iris-like")',
    "X = np.array([[0.0], [1.0], [2.0], [3.0]])\n"
    "y = np.array([0, 0, 1, 1])\n"
    "with mlflow.start_run() as run:\n"
    '    mlflow.log_param("C", 1.0)\n'
    '    mlflow.log_metric("accuracy", 1.0)\n'
    "    notes = os.path.join(tempfile.mkdtemp(), 'notes.txt')\n"
    "    with open(notes, 'w') as f:\n"
    "        f.write('trained on four points')\n"
    "    mlflow.log_artifact(notes)\n"
    "    model = LogisticRegression(C=1.0).fit(X, y)\n"
    '    mlflow.sklearn.log_model(model, name="model", input_example=X[:1])',
    'version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "tiny-classifier")\n'
    'dbutils.notebook.exit(f"{run.info.run_id} {version.version}")',
)

LOAD = notebook(
    "import mlflow, json\n"
    "import numpy as np\n"
    'mlflow.set_registry_uri("databricks")\n'
    'model = mlflow.pyfunc.load_model("models:/tiny-classifier/1")\n'
    "predicted = model.predict(np.array([[0.0], [3.0]]))\n"
    "dbutils.notebook.exit(json.dumps([int(v) for v in predicted]))",
)

TRAIN_UC = notebook(
    "import mlflow\n"
    "import numpy as np\n"
    "from mlflow import MlflowClient\n"
    "from sklearn.linear_model import LogisticRegression\n"
    'mlflow.set_experiment("/Shared/iris-like")',
    "X = np.array([[0.0], [1.0], [2.0], [3.0]])\n"
    "y = np.array([0, 0, 1, 1])\n"
    "with mlflow.start_run() as run:\n"
    "    model = LogisticRegression().fit(X, y)\n"
    '    mlflow.sklearn.log_model(model, name="model", input_example=X[:1])',
    "# MLflow 3's default registry with the tracking URI databricks: Unity Catalog\n"
    'version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "main.default.tiny")\n'
    'MlflowClient().set_registered_model_alias("main.default.tiny", "candidate", version.version)\n'
    "dbutils.notebook.exit(version.version)",
)

LOAD_UC = notebook(
    "import mlflow, json\n"
    "import numpy as np\n"
    'model = mlflow.pyfunc.load_model("models:/main.default.tiny@candidate")\n'
    "predicted = model.predict(np.array([[0.0], [3.0]]))\n"
    "dbutils.notebook.exit(json.dumps([int(v) for v in predicted]))",
)

NO_EXPERIMENT = notebook(
    "import mlflow\n"
    "with mlflow.start_run() as run:\n"
    '    mlflow.log_metric("m", 1.0)\n'
    "dbutils.notebook.exit(run.info.experiment_id)",
)

OUTSIDE = """
import json, mlflow
from mlflow import MlflowClient
client = MlflowClient()
experiment = client.get_experiment_by_name("/Shared/iris-like")
runs = client.search_runs([experiment.experiment_id])
versions = client.search_model_versions("name='tiny-classifier'")
notebook_experiment = client.get_experiment_by_name(%r)
print(json.dumps({
    "runs": [{"id": r.info.run_id, "params": r.data.params, "metrics": r.data.metrics,
              "job_run": r.data.tags.get("mlflow.databricks.jobRunID")} for r in runs],
    "versions": [{"version": v.version, "run_id": v.run_id} for v in versions],
    "artifacts": [f.path for f in client.list_artifacts(runs[0].info.run_id)],
    "notebook_experiment": notebook_experiment.experiment_id if notebook_experiment else None,
    "experiment": experiment.experiment_id,
}))
"""


# --- without kernels: signed URLs, sources, refusals -------------------------------------
def test_a_signed_url_is_good_for_its_method_and_file_only(tmp_path: Path) -> None:
    artifacts = MlflowArtifacts(tmp_path, "http://127.0.0.1:1")
    owner = ArtifactOwner("runs", RUN_ID)
    url = artifacts.signed_url("PUT", owner, "dir/file.txt")
    split = urllib.parse.urlsplit(url)
    target = split.path.removeprefix("/local-mlflow-artifacts/")
    query = urllib.parse.parse_qs(split.query)

    def request(**changed: str) -> Request:
        fields = {**{k: v[-1] for k, v in query.items()}, **changed}
        queried = {k: [v] for k, v in fields.items()}
        return Request("PUT", url, None, split.path, queried, Message(), b"x")

    artifacts._put(request(), target)
    assert (artifacts.root / "runs" / RUN_ID / "dir" / "file.txt").read_bytes() == b"x"
    assert artifacts.list_files(owner, "dir") == [
        {"path": "dir/file.txt", "is_dir": False, "file_size": 1}
    ]
    for bad in ({"signature": "0" * 64}, {"expires": str(int(time.time()) - 1)}):
        with pytest.raises(ApiError) as refused:
            artifacts._put(request(**bad), target)
        assert refused.value.status == 403
    with pytest.raises(ApiError) as refused:  # signed for PUT, not for GET
        artifacts._get(request(), target)
    assert refused.value.status == 403
    with pytest.raises(ApiError):
        artifacts.signed_url("PUT", owner, "../escape")


def test_a_link_planted_in_the_artifact_store_is_never_followed(tmp_path: Path) -> None:
    artifacts = MlflowArtifacts(tmp_path, "http://127.0.0.1:1")
    (artifacts.root / "runs").mkdir()
    (artifacts.root / "runs" / RUN_ID).symlink_to(tmp_path)
    (tmp_path / "secret.txt").write_text("no")
    assert artifacts.list_files(ArtifactOwner("runs", RUN_ID), "") == []


@pytest.mark.parametrize(
    ("source", "model_id", "expected"),
    [
        ("models:/m-0123abcd", "", ArtifactOwner("logged_models", "m-0123abcd")),
        ("anything", "m-42", ArtifactOwner("logged_models", "m-42")),
        (
            "dbfs:/databricks/mlflow-tracking/1/logged_models/m-0a/artifacts",
            "",
            ArtifactOwner("logged_models", "m-0a"),
        ),
        (
            f"dbfs:/databricks/mlflow-tracking/7/{RUN_ID}/artifacts/model",
            "",
            ArtifactOwner("runs", RUN_ID, "model"),
        ),
        (f"runs:/{RUN_ID}/sub/model", "", ArtifactOwner("runs", RUN_ID, "sub/model")),
    ],
)
def test_a_model_version_source_names_its_files(
    source: str, model_id: str, expected: ArtifactOwner
) -> None:
    assert owner_of_source(source, model_id) == expected


def test_a_source_elsewhere_is_refused() -> None:
    with pytest.raises(ApiError):
        owner_of_source("s3://bucket/model")


@pytest.fixture
def quiet_workspace(tmp_path: Path):  # type: ignore[no-untyped-def]
    ws = start_local_workspace(tmp_path / "state", token=TOKEN, cluster_start_delay=0)
    try:
        yield ws
    finally:
        ws.stop()


def test_unity_catalog_names_and_other_files_are_refused_before_the_server_starts(
    quiet_workspace: LocalWorkspace,
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = quiet_workspace.url
    for name in ("model", "main.model", "main.default.m/x", "a.b.c.d"):
        answer = requests.post(
            f"{url}/api/2.0/mlflow/unity-catalog/registered-models/create",
            json={"name": name},
            headers=headers,
            timeout=30,
        )
        assert answer.status_code == 400, name
        assert "<catalog>.<schema>.<model>" in answer.json()["message"]
    # a volume's folder is the Files API's own (api/files_api.py), never MLflow's
    answer = requests.get(f"{url}/api/2.0/fs/directories/Volumes/x", headers=headers, timeout=30)
    assert answer.status_code == 400
    answer = requests.post(
        f"{url}/api/2.0/fs/create-upload-url",
        json={"path": "/Models/main/default/m/1/../../x"},
        headers=headers,
        timeout=30,
    )
    assert answer.status_code in (400, 501)
    assert not quiet_workspace.mlflow.running  # none started the tracking server


def test_an_experiment_is_named_by_a_path_in_an_existing_folder(
    quiet_workspace: LocalWorkspace,
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = f"{quiet_workspace.url}/api/2.0/mlflow/experiments/create"
    answer = requests.post(url, json={"name": "bare"}, headers=headers, timeout=30)
    assert answer.status_code == 400
    assert "must be an absolute path within the Databricks workspace" in answer.json()["message"]
    for name in ("/Shared/missing/x", "/Workspace/Shared/missing/x"):
        answer = requests.post(url, json={"name": name}, headers=headers, timeout=30)
        assert (answer.status_code, answer.json()["error_code"]) == (
            404,
            "RESOURCE_DOES_NOT_EXIST",
        )
    assert not quiet_workspace.mlflow.running  # refused before the server was needed


def test_mlflow_ui_pages_start_nothing_and_change_nothing(quiet_workspace: LocalWorkspace) -> None:
    url = quiet_workspace.url
    answer = requests.get(f"{url}/mlflow/", timeout=30)
    assert answer.status_code == 200
    assert "No MLflow request has come to this workspace yet" in answer.text
    answer = requests.get(f"{url}/ml/experiments/7/runs/abc", allow_redirects=False, timeout=30)
    assert (answer.status_code, answer.headers["Location"]) == (
        302,
        "/mlflow/#/experiments/7/runs/abc",
    )
    # the links the build reports for a registered version: workspace registry, Unity Catalog
    links = {
        "/ml/models/churn%20model/versions/3": "/mlflow/#/models/churn%20model/versions/3",
        "/ml/models/churn_model": "/mlflow/#/models/churn_model",
        "/explore/data/models/main/default/churn/version/2": (
            "/mlflow/#/models/main.default.churn/versions/2"
        ),
    }
    for link, target in links.items():
        answer = requests.get(f"{url}{link}", allow_redirects=False, timeout=30)
        assert (answer.status_code, answer.headers["Location"]) == (302, target)
    assert requests.get(f"{url}/mlflow/static-files/x.js", timeout=30).status_code == 404
    writes = [
        ("ajax-api/2.0/mlflow/runs/delete", {"run_id": RUN_ID}),
        ("ajax-api/2.0/mlflow/experiments/create", {"name": "/Shared/x"}),
        ("graphql", {"query": "mutation { x }"}),
    ]
    for path, body in writes:
        answer = requests.post(f"{url}/mlflow/{path}", json=body, timeout=30)
        assert (answer.status_code, answer.json()["error_code"]) == (403, "PERMISSION_DENIED")
    assert not quiet_workspace.mlflow.running


def test_a_workspace_that_gets_no_mlflow_request_never_starts_the_server(
    quiet_workspace: LocalWorkspace,
) -> None:
    w = sdk_client(quiet_workspace)
    w.workspace.mkdirs(FOLDER)
    list(w.workspace.list(FOLDER))
    list(w.jobs.list())
    assert not quiet_workspace.mlflow.running
    assert not (quiet_workspace.settings.state_dir / "mlflow" / "mlflow.db").exists()


# --- with the tracking server and kernels ------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    require_mlflow()
    ws = start_local_workspace(
        tmp_path_factory.mktemp("mlflow") / "state", token=TOKEN, cluster_start_delay=0
    )
    try:
        yield ws
    finally:
        ws.stop()


def run_notebook(ws: LocalWorkspace, name: str, text: str) -> tuple[str, int]:
    """The notebook's exit value and its task run's id."""
    w = sdk_client(ws)
    w.workspace.mkdirs(FOLDER)
    path = f"{FOLDER}/{name}"
    w.workspace.import_(
        path=path,
        content=base64.b64encode(text.encode()).decode(),
        format=workspace.ImportFormat.SOURCE,
        language=workspace.Language.PYTHON,
        overwrite=True,
    )
    run = w.jobs.submit_and_wait(
        run_name=name,
        tasks=[jobs.SubmitTask(task_key="t", notebook_task=jobs.NotebookTask(notebook_path=path))],
        timeout=WAIT,
    )
    assert run.tasks is not None
    output = w.jobs.get_run_output(run.tasks[0].run_id or 0)
    assert run.state is not None
    assert run.state.result_state == jobs.RunResultState.SUCCESS, (output.error, output.error_trace)
    assert output.notebook_output is not None
    return output.notebook_output.result or "", run.tasks[0].run_id or 0


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_notebooks_log_register_and_load_a_model_as_on_databricks(
    served: LocalWorkspace, tmp_path: Path
) -> None:
    exit_value, train_task_run = run_notebook(served, "train", TRAIN)
    run_id, version = exit_value.split()
    assert version == "1"
    assert served.mlflow.running
    assert json.loads(run_notebook(served, "load", LOAD)[0]) == [0, 1]
    experiment_id = run_notebook(served, "no-experiment", NO_EXPERIMENT)[0]

    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": "databricks",
        "DATABRICKS_HOST": served.url,
        "DATABRICKS_TOKEN": served.token,
        "MLFLOW_REGISTRY_URI": "databricks",  # the workspace registry
    }
    # a file, not ``python -c``: MLflow looks for a Spark session, and pyspark-client takes a
    # ``-c`` program for its doctests and exits
    script = tmp_path / "outside.py"
    script.write_text(OUTSIDE % f"{FOLDER}/no-experiment", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert [(r["id"], r["params"], r["metrics"]) for r in seen["runs"]] == [
        (run_id, {"C": "1.0"}, {"accuracy": 1.0})
    ]
    assert seen["runs"][0]["job_run"] == str(train_task_run)
    assert seen["versions"] == [{"version": "1", "run_id": run_id}]
    assert seen["artifacts"] == ["notes.txt"]
    assert seen["notebook_experiment"] == experiment_id
    seen_experiment = seen["experiment"]

    # the task's page lists the MLflow run it logged, with its parameter, metric and model
    page = requests.get(f"{served.url}/runs/{train_task_run}", timeout=60).text
    section = page[page.index('id="mlflow-runs"') :]
    assert "/Shared/iris-like" in section
    assert "C=1.0" in section
    assert "accuracy=1.0" in section
    assert "<td>model</td>" in section

    # MLflow's own UI, read-only, with the artifacts from the workspace's store
    assert "static-files" in requests.get(f"{served.url}/mlflow/", timeout=60).text
    found = requests.post(
        f"{served.url}/mlflow/ajax-api/2.0/mlflow/runs/search",
        json={"experiment_ids": [seen_experiment], "max_results": 10},
        timeout=60,
    ).json()
    assert run_id in [r["info"]["run_id"] for r in found["runs"]]
    notes = requests.get(
        f"{served.url}/mlflow/get-artifact",
        params={"path": "notes.txt", "run_uuid": run_id},
        timeout=60,
    )
    assert notes.text == "trained on four points"


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_notebooks_register_to_unity_catalog_and_load_by_alias(served: LocalWorkspace) -> None:
    assert run_notebook(served, "train-uc", TRAIN_UC)[0] == "1"
    assert json.loads(run_notebook(served, "load-uc", LOAD_UC)[0]) == [0, 1]
    files = served.settings.state_dir / "mlflow" / "artifacts" / "uc_models"
    assert (files / "main.default.tiny" / "1" / "MLmodel").is_file()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_tracking_server_ends_with_the_workspace(tmp_path: Path) -> None:
    require_mlflow()
    ws = start_local_workspace(tmp_path / "state", token=TOKEN, cluster_start_delay=0)
    try:
        answer = requests.get(
            f"{ws.url}/api/2.0/mlflow/experiments/get-by-name",
            params={"experiment_name": "/Shared/none"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=300,
        )
        assert answer.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        assert ws.mlflow.running
        process = ws.mlflow._process
        assert process is not None
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
    finally:
        ws.stop()
    assert not ws.mlflow.running
    assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not list((tmp_path / "state" / "procs").glob("*.json"))
