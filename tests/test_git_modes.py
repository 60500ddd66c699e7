"""The Git deploy modes as ``plan`` shows them: the build's commit, the repository from the CI
or ``origin``, the tasks' notebooks in the Git folder or on the Git source. (Builds of each
mode against the local workspace's Repos API and Git sources are in tests/local.)"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from orchestrator.cli import main
from tests.buildkit import command


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(project: Path) -> Path:
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "base")
    git(project, "remote", "add", "origin", "https://github.com/acme/churn.git")
    return project


def plan(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(command(root, "plan", "--build-id", "g1", *args)) == 0
    document: dict[str, object] = json.loads(capsys.readouterr().out)
    return document


def test_a_git_build_runs_its_commit_from_the_repository_and_uploads_no_notebook(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = plan(repo, capsys, "--deploy-mode", "git")
    head = git(repo, "rev-parse", "HEAD")
    job = doc["job"]
    assert isinstance(job, dict)
    assert job["git_source"] == {
        "git_url": "https://github.com/acme/churn.git",
        "git_provider": "gitHub",
        "git_commit": head,
    }
    paths = {t["notebook_task"]["notebook_path"] for t in job["tasks"]}
    assert paths == {f"databricks/tests/{k}" for k in doc["tasks"]}  # type: ignore[union-attr]
    assert {t["notebook_task"]["source"] for t in job["tasks"]} == {"GIT"}
    assert doc["deploy"] == [] and doc["deploy_mode"] == "git"


def test_a_git_folder_build_runs_the_notebooks_inside_the_repository(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = plan(
        repo, capsys, "--set", "deploy.mode=git-folder", "--set", "deploy.git_provider=gitLab"
    )
    job = doc["job"]
    assert isinstance(job, dict) and "git_source" not in job
    folder = "~/orchestrator-builds/sample/g1"
    paths = {t["notebook_task"]["notebook_path"] for t in job["tasks"]}
    assert paths == {f"{folder}/databricks/tests/{k}" for k in doc["tasks"]}  # type: ignore[union-attr]
    assert doc["git"] == {
        "url": "https://github.com/acme/churn.git",
        "provider": "gitLab",
        "commit": git(repo, "rev-parse", "HEAD"),
        "branch": "main",
    }


def test_the_ci_names_the_repository(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    head = git(repo, "rev-parse", "HEAD")
    for name, value in {
        "TF_BUILD": "True",
        "BUILD_BUILDID": "77",
        "BUILD_REPOSITORY_NAME": "sample",
        "BUILD_SOURCEVERSION": head,
        "BUILD_SOURCEBRANCH": "refs/heads/main",
        "BUILD_REPOSITORY_URI": "https://dev.azure.com/acme/data/_git/churn",
        "BUILD_REPOSITORY_PROVIDER": "TfsGit",
    }.items():
        monkeypatch.setenv(name, value)
    assert main(command(repo, "plan", "--deploy-mode", "git")) == 0
    source = json.loads(capsys.readouterr().out)["job"]["git_source"]
    assert source["git_url"] == "https://dev.azure.com/acme/data/_git/churn"
    assert source["git_provider"] == "azureDevOpsServices" and source["git_commit"] == head


def test_a_git_mode_outside_a_checkout_is_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command(project, "plan", "--deploy-mode", "git")) == 2
    assert "is not in a git checkout" in capsys.readouterr().err
