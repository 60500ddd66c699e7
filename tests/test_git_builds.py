"""Builds in each deploy mode against the local workspace's Repos API and Git sources: a repo
whose notebook and tests import its root package passes in ``git-folder`` and ``git`` modes
with no ``sys.path`` edit and fails in ``workspace`` mode, as on Databricks; a build runs
exactly its commit, concurrent builds their own; Git folders are cleaned; a workspace without
Git credentials is exit 2 before anything is made."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from orchestrator.local.server import LocalWorkspace
from tests.buildkit import BUILD_ROOT, build_runs, in_subprocess, remote_args
from tests.conftest import TOKEN, sdk_client

pytestmark = pytest.mark.slow  # real kernels (tests/tiers.py)

URL = "https://github.com/acme/mypkg"

RUNNER = """# Databricks notebook source
from my_package import VERSION, double

print(f"my_package {VERSION}")
assert double(21) == 42

# COMMAND ----------

import os, sys
import pytest

sys.dont_write_bytecode = True
root = os.path.dirname(os.getcwd())  # the notebook's folder is its working directory
assert pytest.main([os.path.join(root, "tests"), "-q", "-p", "no:cacheprovider"]) == 0
"""


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def make_repo(root: Path, version: str = "1") -> Path:
    (root / "my_package").mkdir(parents=True)
    (root / "my_package" / "__init__.py").write_text(
        f"VERSION = {version!r}\n\n\ndef double(x):\n    return 2 * x\n"
    )
    (root / "notebooks").mkdir()
    (root / "notebooks" / "run_tests.py").write_text(RUNNER)
    (root / "tests").mkdir()
    (root / "tests" / "test_double.py").write_text(
        "from my_package import double\n\n\ndef test_double():\n    assert double(2) == 4\n"
    )
    (root / "orchestrator.yml").write_text("version: 1\n")
    task = {
        "task_key": "run_tests",
        "existing_cluster_id": "${cluster_id}",
        "notebook_task": {"notebook_path": "notebooks/run_tests"},
    }
    (root / "job-template.json").write_text(json.dumps({"name": "${job_name}", "tasks": [task]}))
    (root / ".gitignore").write_text(".orchestrator/\ntest-results/\nartifacts/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "first")
    git(root, "remote", "add", "origin", f"{URL}.git")
    return root


def add_credentials(server: LocalWorkspace) -> None:
    body = {"git_provider": "gitHub", "git_username": "ci", "personal_access_token": "x"}
    sdk_client(server).api_client.do("POST", "/api/2.0/git-credentials", body=body)


def build(root: Path, server: LocalWorkspace, *args: str) -> int:
    return main(["build", "--repo-name", "mypkg", *args, *remote_args(server)])


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_repo(tmp_path / "mypkg")
    monkeypatch.chdir(root)
    for name in ("TF_BUILD", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    return root


@pytest.mark.parametrize("mode", ["git-folder", "git"])
def test_a_repo_that_imports_its_root_package_passes_in_a_git_mode(
    repo: Path, server: LocalWorkspace, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    add_credentials(server)
    code = build(repo, server, "--build-id", "g1", "--deploy-mode", mode)
    out = capsys.readouterr().out
    assert code == 0, out
    (run,) = build_runs(sdk_client(server))
    if mode == "git":
        raw = sdk_client(server).api_client.do(
            "GET", "/api/2.2/jobs/runs/get", query={"run_id": run.run_id}
        )
        assert raw["git_source"]["git_snapshot"]["used_commit"] == git(repo, "rev-parse", "HEAD")
        assert raw["git_source"]["git_url"] == f"{URL}.git"
    else:  # the Git folder was the build folder, and the build's clean removed it
        listed = sdk_client(server).api_client.do(
            "GET", "/api/2.0/repos", query={"path_prefix": f"{BUILD_ROOT}/mypkg"}
        )
        assert listed.get("repos", []) == []


def test_the_same_repo_deployed_as_workspace_files_cannot_import_its_root(
    repo: Path, server: LocalWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build(repo, server, "--build-id", "w1") == 1
    out = capsys.readouterr().out
    assert "ModuleNotFoundError: No module named 'my_package'" in out


def test_a_workspace_without_git_credentials_is_exit_2_before_anything_is_made(
    repo: Path, server: LocalWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build(repo, server, "--build-id", "c1", "--deploy-mode", "git") == 2
    err = capsys.readouterr().err
    assert "the workspace has no Git credentials for gitHub" in err
    w = sdk_client(server)
    assert list(w.jobs.list()) == []
    assert [str(o.path) for o in w.workspace.list("/Users/local@localhost")] == []


def test_concurrent_builds_each_run_their_own_commit(repo: Path, server: LocalWorkspace) -> None:
    add_credentials(server)
    first = git(repo, "rev-parse", "HEAD")
    (repo / "my_package" / "__init__.py").write_text(
        "VERSION = '2'\n\n\ndef double(x):\n    return x + x\n"
    )
    git(repo, "commit", "-qam", "second")
    second = git(repo, "rev-parse", "HEAD")

    def start(build_id: str, commit: str) -> subprocess.Popen[str]:
        env = {
            **os.environ,
            "ORCH_TEST_TOKEN": TOKEN,
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_RUN_ID": build_id,
            "GITHUB_REPOSITORY": "acme/mypkg",
            "GITHUB_SHA": commit,
            "GITHUB_REF": "refs/heads/main",
        }
        argv = ["build", "--deploy-mode", "git", *remote_args(server)]
        return subprocess.Popen(
            in_subprocess(*argv),
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    builds = [start("101", first), start("102", second)]
    for proc in builds:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
    used: dict[str, Any] = {}
    for run in build_runs(sdk_client(server)):
        raw = sdk_client(server).api_client.do(
            "GET", "/api/2.2/jobs/runs/get", query={"run_id": run.run_id}
        )
        used[raw["run_name"]] = raw["git_source"]["git_snapshot"]["used_commit"]
    assert used == {"build-mypkg 101-1": first, "build-mypkg 102-1": second}


def test_cleanup_removes_a_git_folder_a_build_left(
    repo: Path, server: LocalWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime, timedelta

    from orchestrator.adapters.databricks import DatabricksWorkspace
    from orchestrator.cleanup.execute import cleanup
    from orchestrator.cleanup.model import CleanupOptions
    from orchestrator.cleanup.policy import Policy
    from orchestrator.storage.folder import LocalFolderStorage

    add_credentials(server)
    assert build(repo, server, "--build-id", "k1", "--deploy-mode", "git-folder", "--keep") == 0
    client = sdk_client(server)
    folder = f"{BUILD_ROOT}/mypkg/k1"
    listed = client.api_client.do("GET", "/api/2.0/repos", query={"path_prefix": folder})
    assert [r["path"] for r in listed["repos"]] == [folder]
    workspace = DatabricksWorkspace(client)
    report = cleanup(
        tree=workspace,
        storage=LocalFolderStorage(repo / ".orchestrator" / "storage"),
        runs=workspace,
        root=BUILD_ROOT,
        storage_root=str(repo / ".orchestrator" / "storage"),
        options=CleanupOptions(Policy(older_than=timedelta(days=1))),
        now=datetime.now(UTC) + timedelta(days=3),
    )
    assert [(d.build_id, d.folder, d.job) for d in report.deleted] == [("k1", True, True)]
    listed = client.api_client.do("GET", "/api/2.0/repos", query={"path_prefix": folder})
    assert listed.get("repos", []) == []
