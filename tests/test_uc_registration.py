"""``models.register.registry: unity-catalog`` against the local workspace, which serves Unity
Catalog's registry on its MLflow (``local/api/mlflow_uc_registry.py``, storage mode
``DEFAULT_STORAGE``): the adapter copies the model's files into the version's storage,
finalizes it, tags it and sets the alias, for a model file the build logs and for a model an
MLflow client logged in a job's run; MLflow's own ``databricks-uc`` client then loads the
version. The cloud storage kinds a real workspace may answer instead are in
``tests/test_uc_storage.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from orchestrator.adapters.databricks import DatabricksWorkspace, LoggedModel
from orchestrator.errors import InfrastructureError
from orchestrator.local.server import LocalWorkspace
from tests.buildkit import build, remote_args
from tests.conftest import TOKEN, sdk_client
from tests.test_model_registration import SHA, api, github, run_before_exit
from tests.tools import require_mlflow

pytestmark = pytest.mark.slow

NAME = "main.default.churn"


def version_files(ws: LocalWorkspace, name: str, version: str) -> dict[str, int]:
    """The version's files, listed as MLflow's client lists them (the Files API)."""
    folder = "/".join(("Models", *name.split("."), version))
    found: dict[str, int] = {}
    todo = [folder]
    while todo:
        listing = api(ws, "GET", f"fs/directories/{todo.pop()}")
        for entry in listing.get("contents") or []:
            if entry["is_directory"]:
                todo.append(entry["path"].lstrip("/"))
            else:
                found[entry["path"].removeprefix(f"/{folder}/")] = entry["file_size"]
    return found


def mlflow_client(ws: LocalWorkspace, script: str, tmp_path: Path) -> str:
    """``script`` run by MLflow's client in a process of its own, as a client outside the
    workspace would (``MLFLOW_TRACKING_URI=databricks``); its stdout."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": "databricks",
        "DATABRICKS_HOST": ws.url,
        "DATABRICKS_TOKEN": TOKEN,
        "DATABRICKS_CONFIG_FILE": str(tmp_path / "no-databrickscfg"),
        "PYTHONPATH": os.getcwd(),
    }
    # a file, not ``python -c``: MLflow looks for a Spark session, and pyspark-client takes a
    # ``-c`` program for its doctests and exits (as in tests/local/test_mlflow.py)
    program = tmp_path / f"client-{len(list(tmp_path.glob('client-*.py')))}.py"
    program.write_text(textwrap.dedent(script), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(program)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def test_a_model_file_registers_in_unity_catalog_with_its_files_tags_and_alias(
    workspace: LocalWorkspace, tmp_path: Path
) -> None:
    require_mlflow()
    ws = DatabricksWorkspace(sdk_client(workspace))
    model_file = tmp_path / "churn_model.rds"
    model_file.write_bytes(b"RDS-bytes")
    logged = ws.log_model_file(
        experiment="/Shared/sample/_orchestrator/models",
        file=model_file,
        run_name="sample b1",
        tags={"build_id": "b1"},
    )
    first = ws.register_model(
        registry="unity-catalog",
        name=NAME,
        model=logged,
        tags={"build_id": "b1", "commit": "abc"},
        alias="candidate",
    )
    assert (first.registry, first.name, first.version, first.alias) == (
        "unity-catalog",
        NAME,
        "1",
        "candidate",
    )
    assert first.url == f"{workspace.url}/explore/data/models/main/default/churn/version/1"
    second = ws.register_model(
        registry="unity-catalog",
        name=NAME,
        model=logged,
        tags={"build_id": "b2"},
        alias="candidate",
    )
    assert second.version == "2"

    found = api(workspace, "GET", "mlflow/unity-catalog/model-versions/get", name=NAME, version="1")
    version = found["model_version"]
    assert version["status"] == "READY"
    assert {t["key"]: t["value"] for t in version["tags"]} == {"build_id": "b1", "commit": "abc"}
    assert version["run_id"] == logged.run_id
    assert version_files(workspace, NAME, "1") == {
        "churn_model.rds": len(b"RDS-bytes"),
        "MLmodel": version_files(workspace, NAME, "2")["MLmodel"],
    }
    alias = api(
        workspace,
        "GET",
        "mlflow/unity-catalog/registered-models/alias",
        name=NAME,
        alias="candidate",
    )
    assert alias["model_version"]["version"] == "2"  # the alias moved to the newer version

    # a version whose files cannot be copied is deleted again, not left pending
    broken = LoggedModel(logged.run_id, logged.source.rsplit("/", 1)[0] + "/no-such-model", "x")
    with pytest.raises(InfrastructureError, match="MLflow lists no files"):
        ws.register_model(
            registry="unity-catalog", name=NAME, model=broken, tags={}, alias="candidate"
        )
    versions = api(
        workspace, "GET", "mlflow/unity-catalog/model-versions/search", filter=f"name='{NAME}'"
    )
    assert sorted(v["version"] for v in versions["model_versions"]) == ["1", "2"]
    alias = api(
        workspace,
        "GET",
        "mlflow/unity-catalog/registered-models/alias",
        name=NAME,
        alias="candidate",
    )
    assert alias["model_version"]["version"] == "2"

    # as in Unity Catalog, a version is pending until finalized (the adapter finalizes)
    made = api(
        workspace,
        "POST",
        "mlflow/unity-catalog/model-versions/create",
        name=NAME,
        source=logged.source,
        run_id=logged.run_id,
    )["model_version"]
    assert made["status"] == "PENDING_REGISTRATION"
    read = api(workspace, "GET", "mlflow/unity-catalog/model-versions/get", name=NAME, version="4")
    assert read["model_version"]["status"] == "PENDING_REGISTRATION"
    done = api(
        workspace, "POST", "mlflow/unity-catalog/model-versions/finalize", name=NAME, version="4"
    )
    assert done["model_version"]["status"] == "READY"


def test_a_model_an_mlflow_client_logged_in_a_job_run_registers_and_loads_from_unity_catalog(
    workspace: LocalWorkspace, tmp_path: Path
) -> None:
    require_mlflow()
    # an MLflow 3 logged model in a run tagged as a job's task run tags it on Databricks
    logged = mlflow_client(
        workspace,
        """
        import json, mlflow

        class Doubler(mlflow.pyfunc.PythonModel):
            def predict(self, context, model_input):
                return [2 * x for x in model_input]

        mlflow.set_experiment("/Shared/uc-job-models")
        tags = {"mlflow.databricks.jobRunID": "4242", "mlflow.source.type": "JOB"}
        with mlflow.start_run(tags=tags) as run:
            info = mlflow.pyfunc.log_model(
                name="doubler", python_model=Doubler(), pip_requirements=["mlflow"]
            )
        print(json.dumps({"run_id": run.info.run_id, "model_id": info.model_id}))
        """,
        tmp_path,
    )
    expected = json.loads(logged.strip().splitlines()[-1])
    ws = DatabricksWorkspace(sdk_client(workspace))
    (model,) = ws.job_models([4242], experiment=None)
    assert (model.run_id, model.model_id) == (expected["run_id"], expected["model_id"])

    version = ws.register_model(
        registry="unity-catalog",
        name="main.default.doubler",
        model=model,
        tags={"build_id": "j1"},
        alias="candidate",
    )
    assert version.version == "1"
    assert version.source == f"models:/{expected['model_id']}"
    assert "MLmodel" in version_files(workspace, "main.default.doubler", "1")

    loaded = mlflow_client(
        workspace,
        """
        import mlflow

        mlflow.set_registry_uri("databricks-uc")
        model = mlflow.pyfunc.load_model("models:/main.default.doubler@candidate")
        print(model.predict([1, 2, 3]))
        found = mlflow.MlflowClient().search_model_versions("name='main.default.doubler'")
        print([(v.version, v.status) for v in found])
        """,
        tmp_path,
    )
    assert loaded.strip().splitlines()[-2:] == [
        "[2, 4, 6]",
        "[('1', 'READY')]",
    ]


# --- a build that registers what its notebook logged ---------------------------------------
LOG_A_MODEL = (
    "\n# COMMAND ----------\n\n"
    "import mlflow\n"
    "\n"
    "class Churn(mlflow.pyfunc.PythonModel):\n"
    "    def predict(self, context, model_input):\n"
    "        return [0 for _ in model_input]\n"
    "\n"
    'mlflow.set_experiment("/Shared/uc-build-models")\n'
    "with mlflow.start_run():\n"
    '    mlflow.log_metric("checked", 1.0)\n'
    '    mlflow.pyfunc.log_model(name="churn", python_model=Churn(), pip_requirements=["mlflow"])\n'
    "\n# COMMAND ----------\n"
)
UC_REGISTER = [
    "--set",
    "models.register.name=main.default.churn_model",
    "--set",
    "models.register.registry=unity-catalog",
    "--set",
    "models.register.source=job",
    "--set",
    "models.register.alias=candidate",
]


@pytest.mark.timeout(1800)
def test_a_main_build_registers_its_notebooks_model_in_unity_catalog_with_lineage(
    project: Path,
    server: LocalWorkspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    require_mlflow()
    run_before_exit(project, LOG_A_MODEL)  # the task logs a model before it exits
    files = github(monkeypatch, tmp_path, "refs/heads/main")
    code = build(project, "--build-id", "u1", "--json", *remote_args(server), *UC_REGISTER)
    out = capsys.readouterr().out
    assert code == 0, out
    document = json.loads(out)  # stdout is the document alone, on GitHub Actions too
    (registered,) = document["models"]["registered"]
    assert (registered["registry"], registered["name"], registered["version"]) == (
        "unity-catalog",
        "main.default.churn_model",
        "1",
    )
    url = f"{server.url}/explore/data/models/main/default/churn_model/version/1"
    assert registered["url"] == url
    outputs = files["output"].read_text()
    assert "registered_model=main.default.churn_model/1\n" in outputs
    assert f"registered_model_url={url}\n" in outputs
    # the reported link opens the version in the workspace's UI (MLflow's model page)
    answer = requests.get(url, allow_redirects=False, timeout=60)
    assert (answer.status_code, answer.headers["Location"]) == (
        302,
        "/mlflow/#/models/main.default.churn_model/versions/1",
    )
    assert requests.get(url, timeout=60).status_code == 200

    found = api(
        server,
        "GET",
        "mlflow/unity-catalog/model-versions/get",
        name="main.default.churn_model",
        version="1",
    )["model_version"]
    tags = {t["key"]: t["value"] for t in found["tags"]}
    assert (tags["build_id"], tags["commit"], tags["branch"]) == ("u1", SHA, "main")
    assert found["aliases"] == [{"alias": "candidate", "version": "1"}]
    assert {"MLmodel", "python_model.pkl"} <= set(
        version_files(server, "main.default.churn_model", "1")
    )

    # the run the notebook logged carries the tags Databricks gives a job's notebook run
    run = api(server, "GET", "mlflow/runs/get", run_id=found["run_id"])["run"]
    lineage = {t["key"]: t["value"] for t in run["data"]["tags"]}
    task_run = lineage["mlflow.databricks.jobRunID"]
    assert lineage["mlflow.source.type"] == "JOB"
    assert lineage["mlflow.databricks.notebookPath"].endswith("/sample/u1/tests/run_pytest")
    assert lineage["mlflow.databricks.notebookID"].isdigit()
    assert lineage["mlflow.databricks.jobType"] == "NOTEBOOK"
    assert lineage["mlflow.databricks.workspaceURL"] == server.url
    job = lineage["mlflow.databricks.jobID"]  # the build's job (run-now)
    assert lineage["mlflow.source.name"] == f"jobs/{job}/run/{task_run}"
