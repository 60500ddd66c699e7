"""``git_source`` runs through databricks-sdk: one snapshot per run at the commit it resolves
(``git_snapshot.used_commit``), whatever is pushed meanwhile; the settings checked at create;
an unknown URL failing the task naming it. The tasks run on the fake executor here (what it
is handed is checked); the same runs with real kernels are in test_git_notebooks.py."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from databricks.sdk.errors.base import DatabricksError
from databricks.sdk.service import jobs

from orchestrator.local.server import LocalWorkspace
from tests.conftest import sdk_client
from tests.fakes import FakeExecutor
from tests.local.git_repos import commit_file, git, make_repo

WAIT = timedelta(seconds=60)


@pytest.fixture
def w(ws: LocalWorkspace):  # type: ignore[no-untyped-def]
    return sdk_client(ws)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def git_task(key: str, path: str = "notebooks/use_package", **params: str) -> jobs.Task:
    return jobs.Task(
        task_key=key,
        notebook_task=jobs.NotebookTask(notebook_path=path, base_parameters=params or None),
    )


def source(url: str, **reference: str) -> jobs.GitSource:
    return jobs.GitSource(git_url=url, git_provider=jobs.GitProvider.GIT_HUB, **reference)


def first_call(fake: FakeExecutor) -> None:
    """Until the fake has been handed a task (the run has started and has its snapshot)."""
    deadline = time.monotonic() + 60
    while not fake.calls:
        assert time.monotonic() < deadline, "no task started"
        time.sleep(0.02)


def test_a_run_pinned_to_a_commit_uses_it_even_when_the_branch_moves(
    w, ws: LocalWorkspace, fake: FakeExecutor, src: Path
) -> None:  # type: ignore[no-untyped-def]
    pinned = git(src, "rev-parse", "HEAD")
    job = w.jobs.create(
        name="git-build",
        git_source=source(str(src), git_commit=pinned),
        tasks=[git_task("first", sleep="1"), git_task("second")],
    )
    waiter = w.jobs.run_now(job.job_id)
    first_call(fake)
    snapshot = fake.calls[0].task["notebook_task"]["notebook_path"].rsplit("/notebooks/", 1)[0]
    assert snapshot.startswith("/Repos/.internal/") and snapshot.endswith(f"_commits/{pinned}")
    on_disk = ws.store.local_path(snapshot)
    assert (on_disk / "my_package" / "__init__.py").read_text() == "VALUE = 42\n"
    commit_file(src, "my_package/__init__.py", "VALUE = 43\n", "pushed during the run")
    run = waiter.result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert run.git_source.git_snapshot.used_commit == pinned
    assert run.git_source.git_commit == pinned
    paths = {c.task["notebook_task"]["notebook_path"] for c in fake.calls}
    assert paths == {f"{snapshot}/notebooks/use_package"}  # both tasks, one snapshot
    assert {c.task["notebook_task"]["source"] for c in fake.calls} == {"WORKSPACE"}
    # the run's record keeps the path as the job gave it; the snapshot went with the run
    assert {t.notebook_task.notebook_path for t in run.tasks} == {"notebooks/use_package"}
    assert not on_disk.exists()


def test_a_branch_is_resolved_once_when_the_run_starts(w, fake: FakeExecutor, src: Path) -> None:  # type: ignore[no-untyped-def]
    head = git(src, "rev-parse", "HEAD")
    run = w.jobs.submit(
        run_name="branch",
        git_source=source(f"file://{src}", git_branch="main"),
        tasks=[
            git_task("a", sleep="1"),
            jobs.SubmitTask(
                task_key="b",
                depends_on=[jobs.TaskDependency(task_key="a")],
                notebook_task=jobs.NotebookTask(notebook_path="notebooks/helper"),
            ),
        ],
    )
    first_call(fake)
    pushed = commit_file(src, "later.txt", "later\n", "pushed during the run")
    done = run.result(timeout=WAIT)
    assert done.state.result_state == jobs.RunResultState.SUCCESS
    assert done.git_source.git_snapshot.used_commit == head != pushed
    assert all(f"_commits/{head}/" in c.task["notebook_task"]["notebook_path"] for c in fake.calls)
    assert len(fake.calls) == 2


@pytest.mark.ws(max_workers=4)
def test_two_runs_at_different_commits_each_run_their_own(w, fake: FakeExecutor, src: Path) -> None:  # type: ignore[no-untyped-def]
    first = git(src, "rev-parse", "HEAD")
    second = commit_file(src, "my_package/__init__.py", "VALUE = 2\n")
    waiters = {
        commit: w.jobs.submit(
            run_name=commit,
            git_source=source(str(src), git_commit=commit),
            tasks=[git_task("t", sleep="0.5")],
        )
        for commit in (first, second)
    }
    # both submitted before either ends (each task sleeps): they run side by side
    runs = {commit: waiter.result(timeout=WAIT) for commit, waiter in waiters.items()}
    for commit, run in runs.items():
        assert run.git_source.git_snapshot.used_commit == commit
    paths = sorted(c.task["notebook_task"]["notebook_path"] for c in fake.calls)
    assert len({p.split("_commits/")[0] for p in paths}) == 2  # a snapshot each
    assert {p.split("_commits/")[1].split("/")[0] for p in paths} == {first, second}


def test_a_tag_and_a_workspace_task_in_one_run(w, fake: FakeExecutor, src: Path) -> None:  # type: ignore[no-untyped-def]
    git(src, "tag", "v1")
    tagged = git(src, "rev-parse", "v1")
    commit_file(src, "after.txt", "after\n")
    w.workspace.mkdirs("/Shared/plain")
    run = w.jobs.submit(
        run_name="tag",
        git_source=source(str(src), git_tag="v1"),
        tasks=[
            git_task("from_git"),
            jobs.SubmitTask(
                task_key="from_workspace",
                notebook_task=jobs.NotebookTask(
                    notebook_path="/Shared/plain/nb", source=jobs.Source.WORKSPACE
                ),
            ),
        ],
    ).result(timeout=WAIT)
    assert run.git_source.git_snapshot.used_commit == tagged
    paths = {c.task_key: c.task["notebook_task"]["notebook_path"] for c in fake.calls}
    assert paths["from_workspace"] == "/Shared/plain/nb"
    assert paths["from_git"].endswith(f"_commits/{tagged}/notebooks/use_package")


def test_an_unknown_git_url_fails_the_task_naming_it(w, fake: FakeExecutor) -> None:  # type: ignore[no-untyped-def]
    url = "https://github.com/org/not-registered.git"
    job = w.jobs.create(
        name="unknown", git_source=source(url, git_branch="main"), tasks=[git_task("t")]
    )
    run = w.jobs.run_now(job.job_id).result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.FAILED
    assert run.git_source.git_snapshot is None
    (task,) = run.tasks
    assert url in task.state.state_message
    output = w.jobs.get_run_output(task.run_id)
    assert url in output.error
    assert fake.calls == []  # nothing ran


def test_a_missing_branch_or_notebook_fails_the_task(w, fake: FakeExecutor, src: Path) -> None:  # type: ignore[no-untyped-def]
    run = w.jobs.submit(
        run_name="no branch",
        git_source=source(str(src), git_branch="nope"),
        tasks=[git_task("t")],
    ).result(timeout=WAIT)
    assert "branch nope does not exist" in run.tasks[0].state.state_message
    run = w.jobs.submit(
        run_name="no notebook",
        git_source=source(str(src), git_branch="main"),
        tasks=[git_task("t", path="notebooks/missing")],
    ).result(timeout=WAIT)
    assert "Notebook not found: notebooks/missing" in run.tasks[0].state.state_message
    assert fake.calls == []


def test_the_settings_are_checked_when_the_job_is_created(w, src: Path) -> None:  # type: ignore[no-untyped-def]
    bad = {
        "no reference": source(str(src)),
        "two references": source(str(src), git_branch="main", git_tag="v1"),
    }
    for name, git_source in bad.items():
        with pytest.raises(DatabricksError, match="exactly one of git_branch"):
            w.jobs.create(name=name, git_source=git_source, tasks=[git_task("t")])
    with pytest.raises(DatabricksError, match="must be relative"):
        w.jobs.create(
            name="absolute",
            git_source=source(str(src), git_branch="main"),
            tasks=[git_task("t", path="/Repos/x/notebooks/use_package")],
        )
    git_only = jobs.Task(
        task_key="t",
        notebook_task=jobs.NotebookTask(notebook_path="nb", source=jobs.Source.GIT),
    )
    with pytest.raises(DatabricksError, match="has no git_source"):
        w.jobs.create(name="no source", tasks=[git_only])
    with pytest.raises(DatabricksError, match="git_provider"):
        w.api_client.do(
            "POST",
            "/api/2.1/jobs/create",
            body={
                "name": "x",
                "git_source": {"git_url": str(src), "git_branch": "main"},
                "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "nb"}}],
            },
        )


def test_the_run_page_shows_the_source_reference_and_used_commit(
    w, ws: LocalWorkspace, src: Path
) -> None:  # type: ignore[no-untyped-def]
    head = git(src, "rev-parse", "HEAD")
    job = w.jobs.create(
        name="page", git_source=source(str(src), git_branch="main"), tasks=[git_task("t")]
    )
    run = w.jobs.run_now(job.job_id).result(timeout=WAIT)
    page = requests.get(run.run_page_url, timeout=10).text
    assert f'<dd id="git-used-commit" class="mono">{head}</dd>' in page
    assert '<dd id="git-reference" class="mono">branch main</dd>' in page
    assert str(src) in page and "gitHub" in page
