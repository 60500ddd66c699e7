"""The template's job settings as the settings of one build's own job: the conversions of
:mod:`orchestrator.job.build_job`."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import UsageError
from orchestrator.job.build_job import build_job

FOLDER = "/Users/ci@example.com/orchestrator-builds/repo/b-1"
ENTRY = "/Users/ci@example.com/orchestrator-builds/repo/_orchestrator/entry"


def settings(*tasks: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"name": "build-repo", "tasks": list(tasks), **more}


def notebook(key: str, path: str, **params: str) -> dict[str, Any]:
    task: dict[str, Any] = {"task_key": key, "notebook_task": {"notebook_path": path}}
    if params:
        task["notebook_task"]["base_parameters"] = params
    return task


def submit(value: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return build_job(
        value,
        name="build-repo b-1",
        tags={"repo": "repo", "build": "b-1"},
        build_folder=FOLDER,
        parameters=kwargs.pop("parameters", {"build_id": "b-1", "results_dir": "/r"}),
        **kwargs,
    )


def test_the_job_is_the_builds_and_never_starts_on_its_own() -> None:
    body = submit(
        settings(
            notebook("a", "tests/a"),
            tags={"repo": "other", "team": "data"},
            max_concurrent_runs=4,
            schedule={"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"},
            trigger={"periodic": {"interval": 1, "unit": "HOURS"}},
            continuous={"pause_status": "UNPAUSED"},
            timeout_seconds=600,
            queue={"enabled": True},
            parameters=[{"name": "x", "default": "1"}],
        )
    )
    assert set(body) == {"name", "tags", "tasks", "timeout_seconds", "queue", "max_concurrent_runs"}
    assert body["name"] == "build-repo b-1"
    assert body["tags"] == {"repo": "repo", "team": "data", "build": "b-1"}


def test_relative_notebooks_are_the_builds_and_absolute_ones_stay() -> None:
    body = submit(settings(notebook("a", "tests/a"), notebook("b", "/Shared/lib/b")))
    paths = [t["notebook_task"]["notebook_path"] for t in body["tasks"]]
    assert paths == [f"{FOLDER}/tests/a", "/Shared/lib/b"]


def test_build_parameters_reach_every_task_below_its_own_and_fill_references() -> None:
    task = notebook("a", "a", results_dir="{{job.parameters.results_dir}}/{{task.name}}", own="1")
    body = submit(settings(task, parameters=[{"name": "x", "default": "d"}]))
    params = body["tasks"][0]["notebook_task"]["base_parameters"]
    assert params == {"x": "d", "build_id": "b-1", "results_dir": "/r/{{task.name}}", "own": "1"}


def test_a_task_of_the_entry_notebook_runs_its_notebook_directly() -> None:
    legacy = notebook(
        "a",
        ENTRY,
        notebook="tests/run_pytest",
        notebook_timeout_seconds="900",
        **{"arg.data_dir": "{{job.parameters.build_id}}/data"},
    )
    (task,) = submit(settings(legacy), entry_notebook=ENTRY)["tasks"]
    assert task["notebook_task"]["notebook_path"] == f"{FOLDER}/tests/run_pytest"
    assert task["notebook_task"]["base_parameters"] == {
        "build_id": "b-1",
        "results_dir": "/r",
        "data_dir": "b-1/data",
    }
    assert task["timeout_seconds"] == 900
    without = notebook("b", ENTRY)
    with pytest.raises(UsageError, match=r"task b: .*names no notebook"):
        submit(settings(without), entry_notebook=ENTRY)


def test_job_clusters_stay_the_jobs() -> None:
    cluster = {"spark_version": "15.4.x-scala2.12", "num_workers": 1}
    task = notebook("a", "a") | {"job_cluster_key": "main"}
    clusters = [{"job_cluster_key": "main", "new_cluster": cluster}]
    body = submit(settings(task, job_clusters=clusters))
    assert body["job_clusters"] == clusters
    assert body["tasks"][0]["job_cluster_key"] == "main"


def test_selected_tasks_keep_only_dependencies_among_them() -> None:
    a, b = notebook("a", "a"), notebook("b", "b") | {"depends_on": [{"task_key": "a"}]}
    c = notebook("c", "c") | {"depends_on": [{"task_key": "a"}, {"task_key": "b"}]}
    body = submit(settings(a, b, c), tasks=["b", "c"])
    assert [t["task_key"] for t in body["tasks"]] == ["b", "c"]
    assert "depends_on" not in body["tasks"][0]
    assert body["tasks"][1]["depends_on"] == [{"task_key": "b"}]


def test_a_relative_path_that_leaves_the_build_is_refused() -> None:
    with pytest.raises(UsageError, match="leaves the build"):
        submit(settings(notebook("a", "../other/x")))
