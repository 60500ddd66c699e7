"""Notebooks that import a package at the repository's root, in real kernels: from a Git folder
and from a ``git_source`` snapshot they run with no ``sys.path`` edit (the root is on
``sys.path``, the working directory is the notebook's folder, ``%run ./helper`` finds the
helper beside it); the same files deployed as a plain workspace folder fail with
``ModuleNotFoundError``, as on Databricks Runtime 11.3 and above."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import ImportFormat

from orchestrator.local.server import LocalWorkspace, start_local_workspace
from tests.conftest import TOKEN, sdk_client
from tests.local.git_repos import commit_file, git, make_repo
from tests.serving import Serve

pytestmark = pytest.mark.slow  # real kernels (tests/tiers.py)

USER = "local@localhost"
WAIT = timedelta(seconds=180)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalWorkspace, Path]]:
    """One workspace with real kernels for the module, and the repository its runs use."""
    root = tmp_path_factory.mktemp("git-notebooks")
    repo = make_repo(root)
    ws = start_local_workspace(root / "state", token=TOKEN, cluster_start_delay=0.1)
    try:
        yield ws, repo
    finally:
        ws.stop()


def notebook(path: str) -> jobs.SubmitTask:
    return jobs.SubmitTask(task_key="t", notebook_task=jobs.NotebookTask(notebook_path=path))


def exit_value(w, run: jobs.Run) -> dict[str, object]:  # type: ignore[no-untyped-def]
    (task,) = run.tasks
    output = w.jobs.get_run_output(task.run_id)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, output.error_trace
    value: dict[str, object] = json.loads(output.notebook_output.result)
    return value


def test_a_notebook_in_a_git_folder_imports_the_package_at_the_root(
    served: tuple[LocalWorkspace, Path],
) -> None:
    ws, repo = served
    w = sdk_client(ws)
    folder = f"/Repos/{USER}/project"
    w.repos.create(url=str(repo), provider="gitHub", path=folder)
    run = w.jobs.submit(
        run_name="git folder", tasks=[notebook(f"{folder}/notebooks/use_package")]
    ).result(timeout=WAIT)
    assert exit_value(w, run) == {
        "value": 42,
        "helper": "from the helper",
        "cwd": f"/Workspace{folder}/notebooks",
    }


def test_a_git_source_notebook_imports_the_package_at_the_root(
    served: tuple[LocalWorkspace, Path],
) -> None:
    ws, repo = served
    w = sdk_client(ws)
    commit = git(repo, "rev-parse", "HEAD")
    job = w.jobs.create(
        name="git source",
        git_source=jobs.GitSource(
            git_url=str(repo), git_provider=jobs.GitProvider.GIT_HUB, git_commit=commit
        ),
        tasks=[
            jobs.Task(
                task_key="t",
                notebook_task=jobs.NotebookTask(notebook_path="notebooks/use_package"),
            )
        ],
    )
    run = w.jobs.run_now(job.job_id).result(timeout=WAIT)
    value = exit_value(w, run)
    assert (value["value"], value["helper"]) == (42, "from the helper")
    cwd = str(value["cwd"])
    assert cwd.startswith("/Workspace/Repos/.internal/"), cwd
    assert cwd.endswith(f"_commits/{commit}/notebooks"), cwd
    assert run.git_source.git_snapshot.used_commit == commit


def test_the_same_files_in_a_plain_folder_fail_with_module_not_found(
    served: tuple[LocalWorkspace, Path],
) -> None:
    ws, repo = served
    w = sdk_client(ws)
    folder = "/Shared/deployed/1"
    w.workspace.mkdirs(folder)
    for path in sorted(repo.rglob("*")):
        relative = path.relative_to(repo).as_posix()
        if relative.startswith(".git"):
            continue
        if path.is_dir():
            w.workspace.mkdirs(f"{folder}/{relative}")
            continue
        w.workspace.import_(
            f"{folder}/{relative}",
            content=base64.b64encode(path.read_bytes()).decode(),
            format=ImportFormat.AUTO,
        )
    run = w.jobs.submit(
        run_name="plain folder", tasks=[notebook(f"{folder}/notebooks/use_package")]
    ).result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.FAILED
    output = w.jobs.get_run_output(run.tasks[0].run_id)
    assert output.error == "ModuleNotFoundError: No module named 'my_package'"


def test_through_local_serve_with_a_registered_url(serve: Serve, tmp_path: Path) -> None:
    """What the issue asks of ``orchestrator local serve``, through databricks-sdk: repos
    create, update and delete; git credentials create and list; a ``git_source`` job run green
    at its commit; an unknown URL failing its task naming it."""
    repo = make_repo(tmp_path)
    url = "https://github.com/org/served.git"
    registered = requests.post(
        f"{serve.url}/local-admin/git-sources",
        json={"url": url, "path": str(repo)},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert registered.status_code == 200, registered.text
    w = serve.client()
    folder = w.repos.create(url=url, provider="gitHub", path=f"/Repos/{USER}/served")
    assert (folder.url, folder.branch) == (url, "main")
    git(repo, "checkout", "-q", "-b", "feature")
    newer = commit_file(repo, "feature.txt", "feature\n")
    w.repos.update(folder.id, branch="feature")
    assert (w.repos.get(folder.id).branch, w.repos.get(folder.id).head_commit_id) == (
        "feature",
        newer,
    )
    w.repos.delete(folder.id)
    assert list(w.repos.list()) == []
    credential = w.git_credentials.create(
        git_provider="gitHub", git_username="ci", personal_access_token="not-a-real-token"
    )
    listed = [c.as_dict() for c in w.git_credentials.list()]
    assert listed == [credential.as_dict()]
    assert "personal_access_token" not in str(listed)

    def git_job(git_url: str, **reference: str) -> jobs.Run:
        job = w.jobs.create(
            name=f"served {git_url}",
            git_source=jobs.GitSource(
                git_url=git_url, git_provider=jobs.GitProvider.GIT_HUB, **reference
            ),
            tasks=[
                jobs.Task(
                    task_key="t",
                    notebook_task=jobs.NotebookTask(notebook_path="notebooks/use_package"),
                )
            ],
        )
        return w.jobs.run_now(job.job_id).result(timeout=WAIT)

    run = git_job(url, git_commit=newer)
    assert exit_value(w, run)["value"] == 42
    assert run.git_source.git_snapshot.used_commit == newer
    unknown = "https://github.com/org/never-registered.git"
    failed = git_job(unknown, git_branch="main")
    assert failed.state.result_state == jobs.RunResultState.FAILED
    assert unknown in failed.tasks[0].state.state_message
