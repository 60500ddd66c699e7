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
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import ImportFormat

from orchestrator.local.server import LocalWorkspace, start_local_workspace
from tests.conftest import TOKEN, sdk_client
from tests.local.git_repos import git, make_repo

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
