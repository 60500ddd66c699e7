"""``models.register``: a passed build of a registering branch registers its model with the
build's lineage and the alias; a pull-request build and a failed build register nothing (and
never start the local workspace's MLflow server); ``plan`` says which; ``--json`` and the CI
outputs report the version and its URL; cleanup keeps the versions and, where configured,
deletes old builds' MLflow runs. The registry is the local workspace's real MLflow, over HTTP.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestrator.adapters.databricks import DatabricksWorkspace
from orchestrator.build.model_registration import passed, register_intent
from orchestrator.build.model_registration import test_summary as summary_line
from orchestrator.cleanup.execute import cleanup
from orchestrator.cleanup.model import CleanupOptions
from orchestrator.cleanup.policy import Policy
from orchestrator.cli import main
from orchestrator.config.context import BuildContext
from orchestrator.config.schema import BuildConfig
from orchestrator.local.server import LocalWorkspace
from orchestrator.results.publish import publish_models
from orchestrator.storage.folder import LocalFolderStorage
from tests.buildkit import BUILD_ROOT, build, command, remote_args
from tests.conftest import TOKEN, sdk_client
from tests.tools import require_mlflow

REGISTER = [
    "--set",
    "models.register.name=churn_model",
    "--set",
    "models.register.source=file",
    "--set",
    "models.register.path=models/churn_model.rds",
    "--set",
    "models.register.alias=candidate",
]
SHA = "0123456789abcdef0123456789abcdef01234567"


def github(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ref: str) -> dict[str, Path]:
    """A GitHub Actions build of ``ref``, its step output and summary files."""
    files = {"output": tmp_path / "gh-output", "summary": tmp_path / "gh-summary"}
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_RUN_ID": "77",
        "GITHUB_REPOSITORY": "team/sample",
        "GITHUB_REF": ref,
        "GITHUB_SHA": SHA,
        "GITHUB_OUTPUT": str(files["output"]),
        "GITHUB_STEP_SUMMARY": str(files["summary"]),
    }
    if ref.startswith("refs/pull/"):
        env["GITHUB_HEAD_REF"] = "feature/x"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return files


def json_document(out: str) -> dict[str, Any]:
    """The ``--json`` document: all of stdout, even on GitHub Actions (its ``::add-mask::``
    lines go to stderr)."""
    return dict(json.loads(out))


def api(ws: LocalWorkspace, method: str, path: str, **params: Any) -> dict[str, Any]:
    """``method /api/2.0/<path>`` on the local workspace; its JSON answer, which must be a 200."""
    answer = requests.request(
        method,
        f"{ws.url}/api/2.0/{path}",
        params=params if method == "GET" else None,
        json=params if method != "GET" else None,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=300,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def mlflow_get(ws: LocalWorkspace, path: str, **query: str) -> dict[str, Any]:
    return api(ws, "GET", f"mlflow/{path}", **query)


def run_before_exit(project: Path, code: str) -> None:
    """Make the sample's pytest notebook run ``code`` just before it exits."""
    notebook = project / "databricks" / "tests" / "run_pytest.py"
    text = notebook.read_text()
    exit_call = "\ndbutils.notebook.exit("
    assert exit_call in text
    notebook.write_text(text.replace(exit_call, code + exit_call))


# --- the decisions, without a workspace ----------------------------------------------------
def context(branch: str | None, pull_request: str | None = None) -> BuildContext:
    return BuildContext("local", "b1", "b1", "sample", branch, SHA, pull_request, None)


def config(tmp_path: Path, **register: Any) -> BuildConfig:
    data = {"name": "m", **register}
    return BuildConfig.model_validate(
        {"target": "t", "root": tmp_path, "models": {"register": data}},
        context={"root": tmp_path},
    )


@dataclass(frozen=True)
class Summary:
    """The tallies the decision reads (a ResultsSummary has them too)."""

    tests: int
    failures: int = 0
    errors: int = 0
    skipped: int = 0

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped

    @property
    def ok(self) -> bool:
        return self.failures == 0 and self.errors == 0


@pytest.mark.fast
def test_only_a_configured_branch_that_is_not_a_pull_request_may_register(
    tmp_path: Path,
) -> None:
    main_only = config(tmp_path)
    assert register_intent(main_only, context("main")).allowed  # type: ignore[union-attr]
    pr = register_intent(main_only, context("main", pull_request="12"))
    assert pr is not None and not pr.allowed and "pull request build (#12)" in pr.reason
    other = register_intent(main_only, context("feature/x"))
    assert other is not None and not other.allowed and "feature/x is not main" in other.reason
    detached = register_intent(main_only, context(None))
    assert detached is not None and not detached.allowed and "unknown" in detached.reason
    releases = config(tmp_path, branches=["main", "release/*"])
    assert register_intent(releases, context("release/2.1")).allowed  # type: ignore[union-attr]
    unset = BuildConfig.model_validate(
        {"target": "t", "root": tmp_path}, context={"root": tmp_path}
    )
    assert register_intent(unset, context("main")) is None


@pytest.mark.fast
def test_only_a_passed_build_registers() -> None:
    assert passed(0, Summary(23)) is None
    assert passed(1, Summary(23, failures=2)) == (
        "no model registered: the build did not pass (21 passed, 2 failed)"
    )
    assert passed(3, Summary(23)) is not None  # the platform ended the run
    assert passed(0, Summary(0)) is not None  # nothing was tested
    assert passed(0, None) is not None
    assert summary_line(Summary(5, skipped=1)) == "4 passed, 0 failed, 1 skipped"  # type: ignore[arg-type]


@pytest.mark.fast
@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--set", "models.register.source=file"], "models.register.name: Field required"),
        (
            [
                "--set",
                "models.register.name=two.parts",
                "--set",
                "models.register.registry=unity-catalog",
            ],
            "Unity Catalog needs <catalog>.<schema>.<model>",
        ),
        (["--set", "models.register.name=m", "--set", "models.register.alias=latest"], "alias"),
        (
            ["--set", "models.register.name=m", "--set", "models.register.source=file"],
            "source: file needs path",
        ),
        (
            [
                "--set",
                "models.register.name=m",
                "--set",
                "models.register.source=file",
                "--set",
                "models.register.path=databricks/features_spark.py",
            ],
            "models.register.path: must be a file inside paths.models",
        ),
    ],
)
def test_a_bad_register_section_is_one_line_naming_the_field(
    project: Path, capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    assert main(command(project, "plan", *flags)) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err, err
    assert len(err.splitlines()) == 1, err


@pytest.mark.fast
def test_plan_shows_whether_the_build_would_register(
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    github(monkeypatch, tmp_path, "refs/heads/main")
    assert main(command(project, "plan", *REGISTER)) == 0
    shown = json.loads(capsys.readouterr().out)["models"]["register"]
    assert shown["registers"] is True
    assert (shown["name"], shown["path"], shown["alias"]) == (
        "churn_model",
        "models/churn_model.rds",
        "candidate",
    )
    github(monkeypatch, tmp_path, "refs/pull/7/merge")
    assert main(command(project, "plan", *REGISTER)) == 0
    shown = json.loads(capsys.readouterr().out)["models"]["register"]
    assert shown["registers"] is False
    assert shown["reason"].startswith("no model registered: pull request build (#7)")


# --- builds against a local workspace with its MLflow ---------------------------------------
LOG_A_RUN = (
    "\n# COMMAND ----------\n\n"
    "import mlflow\n"
    'mlflow.set_experiment("/Shared/registration-test")\n'
    "with mlflow.start_run():\n"
    '    mlflow.log_metric("checked", 1.0)\n'
    "\n# COMMAND ----------\n"
)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_main_build_registers_a_version_with_its_lineage_and_cleanup_keeps_it(
    project: Path,
    server: LocalWorkspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    require_mlflow()
    run_before_exit(project, LOG_A_RUN)  # a task that logs an MLflow run before it exits
    files = github(monkeypatch, tmp_path, "refs/heads/main")
    code = build(project, "--build-id", "m1", "--json", *remote_args(server), *REGISTER)
    out = capsys.readouterr().out
    assert code == 0, out
    document = json_document(out)
    (version,) = document["models"]["registered"]
    assert (version["name"], version["version"], version["alias"]) == (
        "churn_model",
        "1",
        "candidate",
    )
    assert version["url"] == f"{server.url}/ml/models/churn_model/versions/1"
    outputs = files["output"].read_text()
    assert "registered_model=churn_model/1\n" in outputs
    assert f"registered_model_url={version['url']}\n" in outputs

    found = mlflow_get(server, "model-versions/get", name="churn_model", version="1")
    tags = {t["key"]: t["value"] for t in found["model_version"]["tags"]}
    assert tags["build_id"] == "m1"
    assert tags["commit"] == SHA
    assert tags["branch"] == "main"
    assert tags["tests"] == f"{document['passed']} passed, 0 failed"
    assert tags["run_url"] == document["run_url"]
    alias = mlflow_get(server, "registered-models/alias", name="churn_model", alias="candidate")
    assert alias["model_version"]["version"] == "1"
    source_run = found["model_version"]["run_id"]
    files_of_version = mlflow_get(
        server, "model-versions/list-artifacts", name="churn_model", version="1"
    )
    assert {f["path"] for f in files_of_version["files"]} >= {"churn_model.rds", "MLmodel"}

    # cleanup with models.cleanup_runs: the build's notebook run goes, the version stays
    experiment = mlflow_get(
        server, "experiments/get-by-name", experiment_name="/Shared/registration-test"
    )["experiment"]["experiment_id"]
    client = sdk_client(server)
    report = cleanup(
        tree=DatabricksWorkspace(client),
        storage=LocalFolderStorage(project / ".orchestrator" / "storage"),
        runs=DatabricksWorkspace(client),
        root=BUILD_ROOT,
        storage_root=str(project / ".orchestrator" / "storage"),
        options=CleanupOptions(Policy(keep_last=0), mlflow_runs=True),
        now=datetime.now(UTC) + timedelta(days=30),  # past the minimum age
        models=DatabricksWorkspace(client),
    )
    (deleted,) = report.deleted
    assert (deleted.build_id, deleted.job, deleted.mlflow_runs) == ("m1", True, 1)
    left = requests.post(
        f"{server.url}/api/2.0/mlflow/runs/search",
        json={"experiment_ids": [experiment]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=300,
    ).json()
    assert left.get("runs", []) == []
    assert (
        mlflow_get(server, "model-versions/get", name="churn_model", version="1")["model_version"][
            "run_id"
        ]
        == source_run
    )
    kept = mlflow_get(server, "runs/get", run_id=source_run)
    assert kept["run"]["info"]["lifecycle_stage"] == "active"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_pull_request_build_registers_nothing_and_starts_no_mlflow(
    project: Path,
    server: LocalWorkspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    github(monkeypatch, tmp_path, "refs/pull/7/merge")
    assert build(project, "--build-id", "p1", *remote_args(server), *REGISTER) == 0
    out = capsys.readouterr().out
    assert "no model registered: pull request build (#7)" in out
    assert "Registered model" not in out
    assert not server.mlflow.running


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_failed_build_registers_nothing(
    project: Path,
    server: LocalWorkspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    test_file = project / "databricks" / "tests" / "pytest" / "test_features.py"
    test_file.write_text(test_file.read_text() + "\n\ndef test_broken():\n    assert False\n")
    github(monkeypatch, tmp_path, "refs/heads/main")
    assert build(project, "--build-id", "f1", "--json", *remote_args(server), *REGISTER) == 1
    document = json_document(capsys.readouterr().out)
    assert document["models"] == {"registered": []}
    assert not server.mlflow.running


@pytest.mark.fast
def test_json_stdout_stays_one_document_when_github_actions_is_told_a_secret(
    project: Path,
    server: LocalWorkspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    github(monkeypatch, tmp_path, "refs/heads/main")
    # a token the workspace refuses: resolved (and announced to the CI), then the build stops
    monkeypatch.setenv("ORCH_TEST_TOKEN", "dapi-a-token-to-mask-0123")
    code = build(project, "--json", *remote_args(server), *REGISTER)
    out, err = capsys.readouterr()
    document = json.loads(out)  # stdout is the document and nothing else
    assert (document["status"], document["exit_code"]) == ("error", code)
    assert "::add-mask::dapi-a-token-to-mask-0123\n" in err  # GitHub reads stderr's commands


@pytest.mark.fast
def test_with_json_azure_devops_still_gets_the_output_variables_on_stderr() -> None:
    versions = [
        {"name": "main.default.churn", "version": "4", "alias": None, "url": "https://h/x/4"}
    ]
    environ = {"TF_BUILD": "True"}
    commands = io.StringIO()
    # --json: no lines on stdout (the document holds the versions), commands on stderr
    publish_models(versions, out=None, commands=commands, environ=environ)
    assert commands.getvalue().splitlines() == [
        "##vso[task.setvariable variable=registered_model;isoutput=true]main.default.churn/4",
        "##vso[task.setvariable variable=registered_model_url;isoutput=true]https://h/x/4",
    ]
    shown = io.StringIO()  # without --json: the line and the commands, on stdout
    publish_models(versions, out=shown, environ=environ)
    assert shown.getvalue().splitlines()[0] == (
        "Registered model main.default.churn version 4: https://h/x/4"
    )
    assert shown.getvalue().splitlines()[1:] == commands.getvalue().splitlines()
